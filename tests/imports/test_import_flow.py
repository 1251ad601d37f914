"""Interoperable import end to end: a real glimpse-api, real glimpse-worker processes,
python-glanceclient, and a local HTTP server as the web-download source."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import databases
from tests.support.glance_cli import runner
from tests.support.imports import Source, wait_for_status, worker
from tests.support.server import Server, running

ALICE = {"X-Project-Id": "projA", "X-User-Id": "alice", "X-Roles": "member"}
OCTET = {"Content-Type": "application/octet-stream"}


def _options(source: Source, **extra: dict[str, object]) -> dict[str, dict[str, object]]:
    options: dict[str, dict[str, object]] = {
        "import_filtering_opts": source.allowed(),
        "worker": worker(1),
    }
    for group, values in extra.items():
        options.setdefault(group, {}).update(values)
    return options


@pytest.fixture(scope="module")
def api_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, source: Source
) -> Iterator[Server]:
    with running(database_url, tmp_path_factory.mktemp("import"), _options(source)) as server:
        yield server


@pytest.fixture
def api(api_server: Server, database_url: str) -> Iterator[httpx.Client]:
    databases.empty_tables(database_url)
    with httpx.Client(
        base_url=api_server.url, headers=ALICE, timeout=30, trust_env=False
    ) as client:
        yield client


def _new_image(api: httpx.Client, **body: Any) -> str:
    body.setdefault("disk_format", "raw")
    body.setdefault("container_format", "bare")
    response = api.post("/v2/images", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["OpenStack-image-import-methods"] == "glance-direct,web-download"
    return str(response.json()["id"])


def _tasks(api: httpx.Client, image_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/v2/images/{image_id}/tasks")
    assert response.status_code == 200
    return list(response.json()["tasks"])


def test_info_import_lists_enabled_methods(api: httpx.Client) -> None:
    body = api.get("/v2/info/import").json()
    assert body["import-methods"]["value"] == ["glance-direct", "web-download"]
    assert body["import-methods"]["type"] == "array"


def test_glance_direct_stage_then_import(api: httpx.Client) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    image_id = _new_image(api)
    staged = api.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTET)
    assert staged.status_code == 204, staged.text
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "uploading"
    response = api.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    assert response.status_code == 202, response.text
    assert response.content == b""
    image = wait_for_status(api, image_id, ("active", "queued"))
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert api.get(f"/v2/images/{image_id}/file").content == data
    tasks = _tasks(api, image_id)
    assert [t["status"] for t in tasks] == ["success"]
    assert tasks[0]["type"] == "api_image_import"
    assert tasks[0]["result"] == {"image_id": image_id}
    assert tasks[0]["image_id"] == image_id and tasks[0]["user_id"] == "alice"
    assert "expires_at" in tasks[0]
    assert tasks[0]["input"]["import_req"] == {"method": {"name": "glance-direct"}}


def test_web_download_import(api: httpx.Client, source: Source) -> None:
    data = os.urandom(2 * 1024 * 1024)
    source.files["/disk.raw"] = data
    image_id = _new_image(api)
    response = api.post(
        f"/v2/images/{image_id}/import",
        json={"method": {"name": "web-download", "uri": source.url("/disk.raw")}},
    )
    assert response.status_code == 202, response.text
    image = wait_for_status(api, image_id, ("active", "queued"))
    assert image["status"] == "active"
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert api.get(f"/v2/images/{image_id}/file").content == data


def test_web_download_expected_digest_mismatch_fails_cleanly(
    api: httpx.Client, source: Source
) -> None:
    source.files["/digest.raw"] = os.urandom(100_000)
    image_id = _new_image(api)
    response = api.post(
        f"/v2/images/{image_id}/import",
        json={
            "method": {
                "name": "web-download",
                "uri": source.url("/digest.raw"),
                "expected_hash": {"algorithm": "sha512", "value": "ab" * 64},
            }
        },
    )
    assert response.status_code == 202
    image = wait_for_status(api, image_id, ("queued",))
    assert image["os_glance_failed_import"] == "file"
    task = _tasks(api, image_id)[0]
    assert task["status"] == "failure"
    assert "digest" in task["message"]


def test_web_download_source_missing_fails_task(api: httpx.Client, source: Source) -> None:
    image_id = _new_image(api)
    api.post(
        f"/v2/images/{image_id}/import",
        json={"method": {"name": "web-download", "uri": source.url("/nothing")}},
    )
    image = wait_for_status(api, image_id, ("queued",))
    assert image["size"] is None
    task = _tasks(api, image_id)[0]
    assert task["status"] == "failure" and "404" in task["message"]


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:22/",
        "http://10.0.0.1/disk",
        "ftp://127.0.0.1/disk",
        "http:///nohost",
    ],
)
def test_ssrf_uris_refused_at_request(api: httpx.Client, uri: str) -> None:
    image_id = _new_image(api)
    response = api.post(
        f"/v2/images/{image_id}/import", json={"method": {"name": "web-download", "uri": uri}}
    )
    assert response.status_code == 400, uri
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert _tasks(api, image_id) == []


def test_redirect_to_forbidden_address_fails_task(api: httpx.Client, source: Source) -> None:
    source.redirects["/hop"] = "http://169.254.169.254/latest/meta-data/"
    source.redirects["/hop2"] = "http://127.0.0.1:1/secret"
    for path in ("/hop", "/hop2"):
        image_id = _new_image(api)
        response = api.post(
            f"/v2/images/{image_id}/import",
            json={"method": {"name": "web-download", "uri": source.url(path)}},
        )
        assert response.status_code == 202
        image = wait_for_status(api, image_id, ("queued", "active"))
        assert image["status"] == "queued"
        assert _tasks(api, image_id)[0]["status"] == "failure"


def test_import_errors(api: httpx.Client) -> None:
    image_id = _new_image(api)
    path = f"/v2/images/{image_id}/import"
    assert api.post(path, json={}).status_code == 400
    assert api.post(path, json={"method": {"name": "sneakernet"}}).status_code == 400
    assert api.post(path, json={"method": {"name": "web-download"}}).status_code == 400
    rar = {"name": "web-download", "uri": "http://127.0.0.1:1/x", "decompress": "rar"}
    refused = api.post(path, json={"method": rar})
    assert refused.status_code == 400
    assert "must be one of gzip, xz, zstd, auto" in refused.text
    # glance-direct needs staged data
    assert api.post(path, json={"method": {"name": "glance-direct"}}).status_code == 409
    missing = "/v2/images/3c6b0a3e-2f4f-4d33-9d2c-1c2f1bb4c0de/import"
    assert api.post(missing, json={"method": {"name": "glance-direct"}}).status_code == 404
    no_formats = api.post("/v2/images", json={}).json()["id"]
    api.put(f"/v2/images/{no_formats}/stage", content=b"x" * 10, headers=OCTET)
    assert (
        api.post(
            f"/v2/images/{no_formats}/import", json={"method": {"name": "glance-direct"}}
        ).status_code
        == 409
    )
    other = api.post("/v2/images", json={}).json()["id"]
    bob = {"X-Project-Id": "projB", "X-User-Id": "bob", "X-Roles": "member"}
    assert (
        api.put(f"/v2/images/{other}/stage", content=b"x", headers={**OCTET, **bob}).status_code
        == 404
    )


def test_stage_rules(api: httpx.Client) -> None:
    image_id = _new_image(api)
    path = f"/v2/images/{image_id}/stage"
    assert api.put(path, content=b"abc", headers={"Content-Type": "text/plain"}).status_code == 415
    assert api.put(path, content=b"abc", headers=OCTET).status_code == 204
    assert api.put(path, content=b"abc", headers=OCTET).status_code == 409
    uploaded = _new_image(api)
    api.put(f"/v2/images/{uploaded}/file", content=b"abc", headers=OCTET)
    assert api.put(f"/v2/images/{uploaded}/stage", content=b"abc", headers=OCTET).status_code == 409
    # deleting a staged image removes its staged data; the id stays reserved
    assert api.delete(f"/v2/images/{image_id}").status_code == 204


def test_active_image_cannot_be_imported(api: httpx.Client) -> None:
    image_id = _new_image(api)
    api.put(f"/v2/images/{image_id}/file", content=b"data", headers=OCTET)
    response = api.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    assert response.status_code == 409


def test_tasks_api_is_admin_only_and_read_only(api: httpx.Client) -> None:
    image_id = _new_image(api)
    api.put(f"/v2/images/{image_id}/stage", content=b"z" * 1000, headers=OCTET)
    api.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    wait_for_status(api, image_id, ("active",))
    assert api.get("/v2/tasks").status_code == 403
    admin = {"X-Project-Id": "ops", "X-User-Id": "root", "X-Roles": "admin"}
    listing = api.get("/v2/tasks", headers=admin)
    assert listing.status_code == 200
    stubs = listing.json()["tasks"]
    assert len(stubs) == 1 and "input" not in stubs[0] and "result" not in stubs[0]
    task_id = stubs[0]["id"]
    shown = api.get(f"/v2/tasks/{task_id}", headers=admin).json()
    assert shown["status"] == "success" and shown["owner"] == "projA"
    deleted = api.delete(f"/v2/tasks/{task_id}", headers=admin)
    assert deleted.status_code == 405 and deleted.headers["Allow"] == "GET"
    assert api.get("/v2/tasks?status=bogus", headers=admin).status_code == 400
    assert api.get("/v2/tasks?marker=not-a-uuid", headers=admin).status_code == 400
    assert api.get("/v2/tasks?status=success", headers=admin).json()["tasks"][0]["id"] == task_id


def test_glanceclient_image_create_via_import(
    api_server: Server, api: httpx.Client, tmp_path: Path, source: Source
) -> None:
    data = os.urandom(1024 * 1024)
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    glance = runner(api_server.url, tmp_path)
    formats = ("--disk-format", "raw", "--container-format", "bare")
    token = "alice:projA:member"
    glance(
        token,
        "image-create-via-import",
        "--import-method",
        "glance-direct",
        "--file",
        str(path),
        *formats,
        "--name",
        "gd",
    )
    source.files["/cli.raw"] = data
    glance(
        token,
        "image-create-via-import",
        "--import-method",
        "web-download",
        "--uri",
        source.url("/cli.raw"),
        *formats,
        "--name",
        "wd",
    )
    images = {i["name"]: i for i in api.get("/v2/images").json()["images"]}
    for name in ("gd", "wd"):
        image = wait_for_status(api, images[name]["id"], ("active", "queued"))
        assert image["status"] == "active", name
        assert image["checksum"] == hashlib.md5(data).hexdigest()
    out = tmp_path / "out.raw"
    glance(token, "image-download", "--file", str(out), images["gd"]["id"])
    assert out.read_bytes() == data


def _qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


@pytest.fixture
def private_database(tmp_path: Path) -> Iterator[str]:
    """A SQLite database of its own, so no other test server's worker claims this test's
    jobs. These slow, process-level tests run once; the claim/lease SQL they rely on is
    exercised on every backend by the tests above."""
    url = databases.create_database("sqlite", str(tmp_path))
    yield url
    databases.drop_database(url)


@pytest.fixture
def converting_server(private_database: str, tmp_path: Path, source: Source) -> Iterator[Server]:
    options = _options(source, image_import_opts={"image_import_plugins": "['image_conversion']"})
    with running(private_database, tmp_path, options) as server:
        yield server


def test_qcow2_is_converted_to_raw_and_unsafe_qcow2_refused(
    converting_server: Server, tmp_path: Path
) -> None:
    _qemu_img("create", "-f", "qcow2", str(tmp_path / "base.qcow2"), "32M")
    _qemu_img(
        "create",
        "-f",
        "qcow2",
        "-b",
        str(tmp_path / "base.qcow2"),
        "-F",
        "qcow2",
        str(tmp_path / "child.qcow2"),
    )
    with httpx.Client(
        base_url=converting_server.url, headers=ALICE, timeout=30, trust_env=False
    ) as api:
        good = _new_image(api, disk_format="qcow2")
        api.put(
            f"/v2/images/{good}/stage",
            content=(tmp_path / "base.qcow2").read_bytes(),
            headers=OCTET,
        )
        api.post(f"/v2/images/{good}/import", json={"method": {"name": "glance-direct"}})
        image = wait_for_status(api, good, ("active", "queued"))
        assert image["status"] == "active", _tasks(api, good)
        assert image["disk_format"] == "raw" and image["container_format"] == "bare"
        assert image["virtual_size"] == 32 * 1024 * 1024 == image["size"]
        assert api.get(f"/v2/images/{good}/file").content == b"\0" * (32 * 1024 * 1024)

        bad = _new_image(api, disk_format="qcow2")
        api.put(
            f"/v2/images/{bad}/stage",
            content=(tmp_path / "child.qcow2").read_bytes(),
            headers=OCTET,
        )
        api.post(f"/v2/images/{bad}/import", json={"method": {"name": "glance-direct"}})
        image = wait_for_status(api, bad, ("active", "queued"))
        assert image["status"] == "queued"
        task = _tasks(api, bad)[0]
        assert task["status"] == "failure"
        assert "backing" in task["message"].lower()
        # the staged data is gone: staging again works
        again = api.put(f"/v2/images/{bad}/stage", content=b"\0" * 512, headers=OCTET)
        assert again.status_code == 204


def test_killed_worker_job_taken_over_by_another(
    private_database: str, tmp_path: Path, source: Source
) -> None:
    data = os.urandom(6 * 1024 * 1024)
    source.files["/slow.raw"] = data
    options = _options(source, worker={"embedded_workers": 0})
    with running(private_database, tmp_path, options) as server:
        conf = tmp_path / "glimpse-api.conf"
        worker_log = (tmp_path / "worker-a.log").open("wb")
        first = subprocess.Popen(
            [sys.executable, "-m", "glimpse.cmd.worker", "--config-file", str(conf)],
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        with httpx.Client(base_url=server.url, headers=ALICE, timeout=30, trust_env=False) as api:
            source.delay = 0.05  # ~5 s for the whole body
            try:
                image_id = _new_image(api)
                api.post(
                    f"/v2/images/{image_id}/import",
                    json={"method": {"name": "web-download", "uri": source.url("/slow.raw")}},
                )
                wait_for_status(api, image_id, ("importing",))
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    tasks = _tasks(api, image_id)
                    if tasks and tasks[0]["status"] == "processing":
                        break
                    time.sleep(0.05)
                time.sleep(1.0)
                first.send_signal(signal.SIGKILL)
                first.wait()
            finally:
                source.delay = 0.0
            assert api.get(f"/v2/images/{image_id}").json()["status"] == "importing"
            second = subprocess.Popen(
                [sys.executable, "-m", "glimpse.cmd.worker", "--config-file", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                image = wait_for_status(api, image_id, ("active", "queued"), timeout=90)
            finally:
                second.terminate()
                second.wait(timeout=30)
            assert image["status"] == "active"
            assert image["checksum"] == hashlib.md5(data).hexdigest()
            task = _tasks(api, image_id)[0]
            assert task["status"] == "success"
