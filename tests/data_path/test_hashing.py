"""``hashing_algorithm`` on a real process: chosen at start-up, checked, changed by SIGHUP."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.data_path.conftest import Client, StartServer, config_path, wait_for
from tests.data_path.wire import Upload
from tests.support.server import Server

DATA = os.urandom(3 << 20)


def upload(server: Server, client: Client, data: bytes = DATA) -> dict[str, object]:
    image_id = client.create_image()
    request = Upload(server.url, image_id)
    request.send(data)
    answer = request.finish()
    assert answer.status == 204, answer
    return client.image(image_id)


def reload_with(server: Server, algorithm: str) -> None:
    """Rewrite the server's configuration file with ``algorithm`` and send SIGHUP."""
    path = config_path(server)
    text = path.read_text()
    lines = [line for line in text.splitlines() if not line.startswith("hashing_algorithm")]
    at = lines.index("[DEFAULT]") + 1
    lines.insert(at, f"hashing_algorithm = {algorithm}")
    path.write_text("\n".join(lines) + "\n")
    mark = len(server.log())
    server.process.send_signal(signal.SIGHUP)
    wait_for(
        lambda: algorithm in server.log()[mark:], f"the server to log the reload of {algorithm}"
    )


def test_sighup_changes_the_algorithm_without_a_restart(start_server: StartServer) -> None:
    server = start_server({"DEFAULT": {"hashing_algorithm": "sha256"}})
    client = Client(server)
    image = upload(server, client)
    assert image["os_hash_algo"] == "sha256"
    assert image["os_hash_value"] == hashlib.sha256(DATA).hexdigest()

    # An upload under way when the signal comes keeps the algorithm it started with.
    in_flight = client.create_image()
    slow = Upload(server.url, in_flight)
    slow.send(DATA[: 1 << 20])
    wait_for(lambda: client.status(in_flight) == "saving", "the slow upload to start")

    pid = server.process.pid
    reload_with(server, "sha384")
    assert server.process.poll() is None and server.process.pid == pid
    image = upload(server, client)
    assert image["os_hash_algo"] == "sha384"
    assert image["os_hash_value"] == hashlib.sha384(DATA).hexdigest()

    slow.send(DATA[1 << 20 :])
    assert slow.finish().status == 204
    finished = client.image(in_flight)
    assert finished["os_hash_algo"] == "sha256"
    assert finished["os_hash_value"] == hashlib.sha256(DATA).hexdigest()

    # A name that would break uploads is refused by the reload; the last good one stays.
    reload_with(server, "no-such-hash")
    assert "Ignoring hashing_algorithm 'no-such-hash'" in server.log()
    image = upload(server, client)
    assert image["os_hash_algo"] == "sha384"


def test_unknown_algorithm_is_refused_at_start_up(tmp_path: Path, sqlite_url: str) -> None:
    conf = tmp_path / "glimpse-api.conf"
    conf.write_text(
        "[DEFAULT]\nhashing_algorithm = sha-513\nbind_port = 1\n"
        f"data_dir = {tmp_path / 'data'}\n[database]\nconnection = {sqlite_url}\n"
    )
    api = Path(sys.executable).with_name("glimpse-api")
    done = subprocess.run(
        [str(api), "--config-file", str(conf)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "invalid hashing_algorithm" in done.stderr
    assert "'sha-513'" in done.stderr
    assert "Traceback" not in done.stderr
