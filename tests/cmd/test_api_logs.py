"""What a real ``glimpse-api`` (and its embedded ``glimpse-worker``) writes to its log.

Every line logged while a request is handled carries its request id, and the caller's
user and project once known; each request gets one access line; lines a worker logs for
an import task carry the task id and the id of the request that queued it. JSON with
``use_json``, text otherwise; ``log_file``/``log_dir``; ``debug``, changed by SIGHUP.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import databases, polling
from tests.support.server import Server, running

ALICE = {"X-Project-Id": "projA", "X-User-Id": "alice", "X-Roles": "member"}
OCTET = {"Content-Type": "application/octet-stream"}
#: Lines reach the log after the response, a little later on a loaded machine.
wait_for = functools.partial(polling.wait_for, timeout=30.0)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text``, each of which must be one JSON object."""
    lines = []
    for line in text.splitlines():
        if line.strip():
            lines.append(json.loads(line))  # a line that is not JSON fails the test here
    return lines


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return databases.create_database("sqlite", str(tmp_path_factory.mktemp("db")))


@pytest.fixture(scope="module")
def json_server(sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """JSON logs on standard error, notifications to the log, one embedded worker."""
    options: dict[str, dict[str, object]] = {
        "DEFAULT": {"use_json": "true"},
        "oslo_messaging_notifications": {"driver": "log"},
        "worker": {"embedded_workers": 1, "poll_seconds": 0.2},
    }
    with running(sqlite_url, tmp_path_factory.mktemp("server"), options) as server:
        yield server


def lines_of(server: Server, request_id: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(server.log()) if line.get("request_id") == request_id]


def access_line(server: Server, request_id: str) -> dict[str, Any] | None:
    found = [line for line in lines_of(server, request_id) if line["logger"] == "glimpse.access"]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_each_request_gets_one_access_line(json_server: Server) -> None:
    headers = {**ALICE, "X-Openstack-Request-ID": "req-access-1"}
    response = httpx.get(json_server.url + "/v2/images?limit=2", headers=headers, trust_env=False)
    assert response.status_code == 200
    line = wait_for(lambda: access_line(json_server, "req-access-1"), "the access line")
    assert line["method"] == "GET"
    assert line["path"] == "/v2/images?limit=2"
    assert line["status"] == 200
    assert line["bytes"] == len(response.content)
    assert 0 <= line["duration"] < 30
    assert line["client"] == "127.0.0.1"
    assert line["user_id"] == "alice" and line["project_id"] == "projA"
    assert line["level"] == "INFO"
    assert line["message"].startswith(
        f'127.0.0.1 "GET /v2/images?limit=2 HTTP/1.1" status: 200 len: {len(response.content)}'
        " time: 0."
    )


def test_errors_and_generated_ids_are_logged_too(json_server: Server) -> None:
    missing = httpx.get(json_server.url + "/v2/images/nope", headers=ALICE, trust_env=False)
    assert missing.status_code == 404
    request_id = missing.headers["x-openstack-request-id"]
    line = wait_for(lambda: access_line(json_server, request_id), "the access line of a 404")
    assert line["status"] == 404 and line["bytes"] == len(missing.content)

    too_long = httpx.get(
        json_server.url + "/v2/images",
        headers={"X-Openstack-Request-ID": "x" * 65},
        trust_env=False,
    )
    assert too_long.status_code == 431
    generated = too_long.headers["x-openstack-request-id"]
    line = wait_for(lambda: access_line(json_server, generated), "the access line of a 431")
    assert line["status"] == 431
    assert "user_id" not in line


def test_lines_logged_while_handling_a_request_carry_its_id(json_server: Server) -> None:
    client = httpx.Client(base_url=json_server.url, headers=ALICE, trust_env=False)
    created = client.post(
        "/v2/images",
        json={"name": "logged", "disk_format": "raw", "container_format": "bare"},
        headers={"X-Openstack-Request-ID": "create-1"},  # gets the req- prefix
    )
    assert created.status_code == 201
    assert created.headers["x-openstack-request-id"] == "req-create-1"
    image_id = created.json()["id"]

    # The notification is logged by the notifier's thread, after the response.
    def notification() -> dict[str, Any] | None:
        for line in lines_of(json_server, "req-create-1"):
            if line["logger"] == "oslo.messaging.notification.image.create":
                return line
        return None

    line = wait_for(notification, "the image.create notification line")
    assert line["user_id"] == "alice" and line["project_id"] == "projA"
    assert image_id in line["message"]

    # A warning from a service function, run in a worker thread of the server.
    assert client.put(f"/v2/images/{image_id}/file", content=b"abc", headers=OCTET).is_success
    data_file = json_server.log_path.parent / "data" / "images" / image_id
    data_file.unlink()
    gone = client.get(f"/v2/images/{image_id}/file", headers={"X-Openstack-Request-ID": "dl-1"})
    assert gone.status_code == 204, gone.text  # as Glance, when the data is gone

    def warning() -> dict[str, Any] | None:
        for line in lines_of(json_server, "req-dl-1"):
            if line["level"] == "WARNING" and image_id in line["message"]:
                return line
        return None

    line = wait_for(warning, "the missing-data warning")
    assert line["logger"].startswith("glimpse.")
    assert line["project_id"] == "projA"
    client.close()


def test_worker_lines_carry_the_task_and_the_request_that_queued_it(
    json_server: Server,
) -> None:
    client = httpx.Client(base_url=json_server.url, headers=ALICE, trust_env=False)
    image_id = client.post(
        "/v2/images", json={"name": "imported", "disk_format": "raw", "container_format": "bare"}
    ).json()["id"]
    assert client.put(f"/v2/images/{image_id}/stage", content=b"x" * 4096, headers=OCTET).is_success
    started = client.post(
        f"/v2/images/{image_id}/import",
        json={"method": {"name": "glance-direct"}},
        headers={"X-Openstack-Request-ID": "req-import-7"},
    )
    assert started.status_code == 202, started.text
    wait_for(
        lambda: client.get(f"/v2/images/{image_id}").json()["status"] == "active",
        "the import to finish",
    )
    task_id = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]["id"]
    client.close()

    def worker_lines() -> list[dict[str, Any]]:
        return [
            line
            for line in lines_of(json_server, "req-import-7")
            if line["logger"] != "glimpse.access"
        ]

    lines = wait_for(
        lambda: [line for line in worker_lines() if line.get("task_id") == task_id],
        "a worker line about the task",
    )
    running_line = next(line for line in lines if line["message"].startswith("Running task"))
    assert running_line["logger"] == "glimpse.worker"
    assert running_line["user_id"] == "alice"
    server_pid = json_server.process.pid
    assert running_line["process"] != server_pid  # written by the worker process


@pytest.fixture
def text_server(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """Text logs in log_dir/log_file, at DEBUG level."""
    logs = tmp_path / "logs"
    logs.mkdir()
    options = {"DEFAULT": {"debug": "true", "log_dir": logs, "log_file": "api.log"}}
    with running(sqlite_url, tmp_path, options) as server:
        yield server, logs / "api.log"


def test_text_lines_in_the_log_file_and_debug_changed_by_sighup(
    text_server: tuple[Server, Path],
) -> None:
    server, log_file = text_server
    headers = {**ALICE, "X-Openstack-Request-ID": "req-text-1"}
    assert httpx.get(server.url + "/v2/images", headers=headers, trust_env=False).is_success

    def access() -> str | None:
        for line in log_file.read_text().splitlines():
            if "req-text-1" in line and " glimpse.access " in line:
                return line
        return None

    line = wait_for(access, "the access line in the log file")
    _date, _time, pid, level, logger, rest = line.split(" ", 5)
    assert (int(pid), level, logger) == (server.process.pid, "INFO", "glimpse.access")
    assert rest.startswith('[req-text-1 user=alice project=projA] 127.0.0.1 "GET /v2/images')
    assert "status: 200 len: " in rest
    # Nothing goes to standard error once the file is set up.
    assert "glimpse.access" not in server.log()

    # With debug, health checks (polled by load balancers) are logged at DEBUG.
    assert httpx.get(server.url + "/healthcheck", trust_env=False).text == "OK"
    wait_for(lambda: '"GET /healthcheck HTTP/1.1"' in log_file.read_text(), "a DEBUG line")

    conf = server.log_path.parent / "glimpse-api.conf"
    conf.write_text(conf.read_text().replace("debug = true", "debug = false"))
    mark = len(log_file.read_text())
    server.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "Configuration reloaded" in log_file.read_text()[mark:], "the reload")
    mark = len(log_file.read_text())
    assert httpx.get(server.url + "/healthcheck", trust_env=False).text == "OK"
    assert httpx.get(server.url + "/v2/images", headers=ALICE, trust_env=False).is_success
    wait_for(lambda: '"GET /v2/images HTTP/1.1"' in log_file.read_text()[mark:], "an INFO line")
    assert "/healthcheck" not in log_file.read_text()[mark:]


def test_unwritable_log_file_stops_the_server_with_a_message(tmp_path: Path) -> None:
    conf = tmp_path / "glimpse-api.conf"
    conf.write_text(
        f"[DEFAULT]\nlog_file = {tmp_path / 'no-such-folder' / 'api.log'}\n"
        f"data_dir = {tmp_path / 'data'}\n"
    )
    api = Path(sys.executable).with_name("glimpse-api")
    done = subprocess.run(
        [str(api), "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode != 0
    assert f"ERROR: cannot open log_file {tmp_path / 'no-such-folder' / 'api.log'}" in done.stderr
    assert "No such file or directory" in done.stderr
    assert "Traceback" not in done.stderr
