"""``glimpse-api`` as a production service: several worker processes under uvicorn or
granian (``http_server``), graceful shutdown and SIGHUP reload.

Each test starts its own real server with two API workers and JSON logs, whose
access lines say which worker process served each request.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from tests.data_path.wire import Upload
from tests.support import databases, polling
from tests.support.server import Server, running

SERVERS = ["uvicorn", "granian"]
OCTET = {"Content-Type": "application/octet-stream"}
DATA = os.urandom(2 << 20)
#: Starting, draining and replacing two workers takes longer than most waits.
wait_for = functools.partial(polling.wait_for, timeout=60.0)

StartServer = Callable[[str, dict[str, dict[str, object]]], Server]


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return databases.create_database("sqlite", str(tmp_path_factory.mktemp("db")))


@pytest.fixture
def start_server(sqlite_url: str, tmp_path: Path) -> Iterator[StartServer]:
    databases.empty_tables(sqlite_url)
    with ExitStack() as stack:

        def start(http_server: str, options: dict[str, dict[str, object]]) -> Server:
            merged = {group: dict(values) for group, values in options.items()}
            merged.setdefault("DEFAULT", {}).update(
                http_server=http_server, workers=2, use_json="true"
            )
            return stack.enter_context(running(sqlite_url, tmp_path, merged))

        yield start


def log_lines(server: Server) -> list[dict[str, Any]]:
    lines = []
    for text in server.log().splitlines():
        if text.startswith("{"):
            lines.append(json.loads(text))
    return lines


def serving_pid(server: Server, request_id: str) -> int:
    """The process that served the request ``request_id``, from its access line."""

    def find() -> int | None:
        for line in log_lines(server):
            if line["logger"] == "glimpse.access" and line.get("request_id") == request_id:
                return int(line["process"])
        return None

    pid: int = wait_for(find, f"the access line of {request_id}")
    return pid


def create_image(server: Server) -> str:
    response = httpx.post(
        server.url + "/v2/images",
        json={"disk_format": "raw", "container_format": "bare"},
        trust_env=False,
    )
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def image(server: Server, image_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v2/images/{image_id}", trust_env=False)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def upload(server: Server, data: bytes, request_id: str) -> tuple[dict[str, Any], int]:
    """Upload ``data`` to a new image on a new connection; the image and the serving pid."""
    image_id = create_image(server)
    response = httpx.put(
        f"{server.url}/v2/images/{image_id}/file",
        content=data,
        headers={**OCTET, "X-Openstack-Request-ID": request_id},
        trust_env=False,
    )
    assert response.status_code == 204, response.text
    return image(server, image_id), serving_pid(server, "req-" + request_id)


def start_slow_upload(server: Server) -> tuple[str, Upload]:
    """An upload whose first half is sent and being written: the image is 'saving'."""
    image_id = create_image(server)
    slow = Upload(server.url, image_id)
    slow.send(DATA[: len(DATA) // 2])
    wait_for(lambda: image(server, image_id)["status"] == "saving", "the upload to start")
    return image_id, slow


def writer_pid(sqlite_url: str, image_id: str) -> int:
    """The process writing ``image_id``'s data, as it recorded itself in the database."""
    engine = sqlalchemy.create_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            pid = conn.execute(
                sqlalchemy.text("SELECT pid FROM image_uploads WHERE image_id = :id"),
                {"id": image_id},
            ).scalar_one()
    finally:
        engine.dispose()
    return int(pid)


def wait_until_stopping(server: Server, pid: int) -> None:
    """Until worker ``pid`` logged that it was told to stop (and now drains its requests)."""

    def stopping() -> bool:
        return any(
            line["process"] == pid
            and line["message"].startswith(("Shutting down", "Stopping worker"))
            for line in log_lines(server)
        )

    wait_for(stopping, f"worker {pid} to be told to stop")


def rewrite_config(server: Server, **values: str) -> None:
    path = server.log_path.parent / "glimpse-api.conf"
    lines = [
        line
        for line in path.read_text().splitlines()
        if not any(line.startswith(f"{name} =") for name in values)
    ]
    at = lines.index("[DEFAULT]") + 1
    lines[at:at] = [f"{name} = {value}" for name, value in values.items()]
    path.write_text("\n".join(lines) + "\n")


def worker_pids(server: Server) -> set[int]:
    """The server's child processes now (its API workers; no embedded workers here)."""
    pids: set[int] = set()
    task_dir = Path(f"/proc/{server.process.pid}/task")
    for task in task_dir.iterdir():
        children = (task / "children").read_text().split()
        pids.update(int(pid) for pid in children)
    named = set()
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"resource_tracker" not in cmdline:  # multiprocessing's helper
            named.add(pid)
    return named


@pytest.mark.parametrize("http_server", SERVERS)
def test_sighup_replaces_every_worker_and_lets_uploads_finish(
    start_server: StartServer, http_server: str, sqlite_url: str
) -> None:
    server = start_server(http_server, {"DEFAULT": {"hashing_algorithm": "sha256"}})
    before = wait_for(lambda: len(worker_pids(server)) == 2 and worker_pids(server), "2 workers")

    in_flight, slow = start_slow_upload(server)
    holder = writer_pid(sqlite_url, in_flight)
    rewrite_config(server, hashing_algorithm="sha384")
    server.process.send_signal(signal.SIGHUP)
    # The worker holding the upload is told to stop; it finishes the upload first.
    wait_until_stopping(server, holder)
    slow.send(DATA[len(DATA) // 2 :])
    assert slow.finish().status == 204
    finished = image(server, in_flight)
    assert finished["status"] == "active"
    assert finished["os_hash_algo"] == "sha256"
    assert finished["os_hash_value"] == hashlib.sha256(DATA).hexdigest()

    after = wait_for(
        lambda: (pids := worker_pids(server)) and len(pids) == 2 and not pids & before and pids,
        "both workers to be replaced",
    )
    assert server.process.poll() is None

    # Every new worker hashes with the reloaded algorithm.
    served: set[int] = set()
    for attempt in range(40):
        found, pid = upload(server, b"%d" % attempt, f"after-hup-{attempt}")
        assert pid in after
        assert found["os_hash_algo"] == "sha384", pid
        served.add(pid)
        if served == after:
            break
    assert served == after

    # A configuration that cannot start replaces nothing: the workers keep serving.
    rewrite_config(server, hashing_algorithm="no-such-hash")
    mark = len(server.log())
    server.process.send_signal(signal.SIGHUP)
    if http_server == "granian":
        wait_for(lambda: "Not reloading" in server.log()[mark:], "the refusal")
        assert "invalid hashing_algorithm" in server.log()[mark:]
    else:
        wait_for(lambda: "aborting the restart" in server.log()[mark:], "uvicorn to give up")
    assert server.process.poll() is None
    assert worker_pids(server) == after
    found, _pid = upload(server, b"still here", "after-broken-hup")
    assert found["os_hash_algo"] == "sha384"


@pytest.mark.parametrize("http_server", SERVERS)
def test_sigterm_finishes_uploads_in_flight_then_stops(
    start_server: StartServer, http_server: str, sqlite_url: str
) -> None:
    server = start_server(
        http_server,
        {"DEFAULT": {"graceful_shutdown_timeout": 30}, "worker": {"embedded_workers": 1}},
    )
    # Uploads, downloads and an import (run by the embedded glimpse-worker) work.
    stored, _pid = upload(server, DATA, "before-term")
    downloaded = httpx.get(f"{server.url}/v2/images/{stored['id']}/file", trust_env=False)
    assert downloaded.status_code == 200 and downloaded.content == DATA
    imported = create_image(server)
    staged = httpx.put(
        f"{server.url}/v2/images/{imported}/stage",
        content=b"s" * 1000,
        headers=OCTET,
        trust_env=False,
    )
    assert staged.status_code == 204
    started = httpx.post(
        f"{server.url}/v2/images/{imported}/import",
        json={"method": {"name": "glance-direct"}},
        trust_env=False,
    )
    assert started.status_code == 202
    wait_for(lambda: image(server, imported)["status"] == "active", "the import")
    children = worker_pids(server)
    assert len(children) == 3  # two API workers, one glimpse-worker

    first, slow_a = start_slow_upload(server)
    second, slow_b = start_slow_upload(server)
    holders = {writer_pid(sqlite_url, first), writer_pid(sqlite_url, second)}
    server.process.send_signal(signal.SIGTERM)
    for pid in holders:
        wait_until_stopping(server, pid)
    assert server.process.poll() is None
    for slow in (slow_a, slow_b):
        slow.send(DATA[len(DATA) // 2 :])
        assert slow.finish().status == 204
    server.process.wait(timeout=30)
    assert server.process.returncode == 0
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]

    engine = sqlalchemy.create_engine(sqlite_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.text("SELECT id, status, checksum FROM images WHERE id IN (:a, :b)"),
            {"a": first, "b": second},
        ).all()
    engine.dispose()
    md5 = hashlib.md5(DATA).hexdigest()
    assert sorted(rows) == sorted([(first, "active", md5), (second, "active", md5)])


def test_granian_chosen_but_not_installed_is_a_clear_error(tmp_path: Path) -> None:
    conf = tmp_path / "glimpse-api.conf"
    conf.write_text(f"[DEFAULT]\nhttp_server = granian\ndata_dir = {tmp_path / 'data'}\n")
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_GRANIAN, "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "ERROR: http_server = granian, but granian is not installed" in done.stderr
    assert "pip install 'glimpse[granian]'" in done.stderr
    assert "Traceback" not in done.stderr


# glimpse-api in an interpreter where granian cannot be imported, as if not installed.
_WITHOUT_GRANIAN = """
import sys
sys.modules["granian"] = None
sys.argv[0] = "glimpse-api"
from glimpse.cmd.api import main
main()
"""
