"""The staging area in an object store, end to end through real processes.

Two ``glimpse-api`` processes with different data folders act as two nodes: they share
one database (PostgreSQL when the suite has one, else one SQLite file), one Swift
container as the staging area (``[os_glance_staging_store] store_type = swift``) and
their image stores (an S3 bucket, the default, and a shared folder). Node A runs no
import worker, so every import staged or asked for through A is run by node B's. A
third deployment stages in an S3 bucket and converts with qemu-img; a fourth has a
staging area whose key Swift refuses. The object store is swift-saio's real Swift and
S3; web-download sources are served by a local HTTP server the tests allow.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.store.conftest import (
    remove_s3_bucket,
    remove_swift_container,
    s3_client,
    s3_contents,
    saio_settings,
    swift_connection,
    swift_objects,
    unique_name,
)
from tests.support import databases
from tests.support.glance_cli import runner
from tests.support.imports import Source, finished_task, wait_for_status, worker
from tests.support.server import Server, running

ALICE = {"X-Project-Id": "projA", "X-User-Id": "alice", "X-Roles": "member"}
OCTET = {"Content-Type": "application/octet-stream"}
MiB = 1 << 20
CAP = 4 * MiB
#: Past one staging segment (1 MiB here), so staging goes through a Swift large object.
DATA = os.urandom(MiB + 4321)
BAD_KEY = "not-the-staging-key"


@pytest.fixture(scope="module")
def saio() -> dict[str, str]:
    settings = saio_settings("SWIFT_AUTH_URL")
    if not settings.get("S3_ENDPOINT"):
        pytest.skip("S3_ENDPOINT is not set")
    return settings


@pytest.fixture(scope="module")
def places(saio: dict[str, str]) -> Iterator[dict[str, str]]:
    """The staging container, a staging bucket and an image bucket of this module."""
    swift, s3 = swift_connection(saio), s3_client(saio)
    names = {"staging": unique_name(), "staging_bucket": unique_name(), "images": unique_name()}
    swift.put_container(names["staging"])
    s3.create_bucket(Bucket=names["staging_bucket"])
    s3.create_bucket(Bucket=names["images"])
    yield names
    remove_swift_container(swift, names["staging"])
    remove_s3_bucket(s3, names["staging_bucket"])
    remove_s3_bucket(s3, names["images"])


def _database(tmp: Path) -> str:
    backend = "postgresql" if os.environ.get(databases.ENV["postgresql"]) else "sqlite"
    return databases.create_database(backend, str(tmp))


@contextmanager
def _alone(
    workdir: Path, source: Source, options: dict[str, dict[str, object]]
) -> Iterator[Server]:
    """One node with one worker, on a SQLite database of its own, fetching from ``source``."""
    database = databases.create_database("sqlite", str(workdir))
    try:
        settings = {"import_filtering_opts": source.allowed(), "worker": worker(1), **options}
        with running(database, workdir, settings) as server:
            yield server
    finally:
        databases.drop_database(database)


def _swift_staging(saio: dict[str, str], container: str) -> dict[str, object]:
    return {
        "store_type": "swift",
        "swift_store_auth_address": saio["SWIFT_AUTH_URL"],
        "swift_store_user": saio["SWIFT_USER"],
        "swift_store_key": saio["SWIFT_KEY"],
        "swift_store_auth_version": 1,
        "swift_store_container": container,
        "swift_store_large_object_size": 1,
        "swift_store_large_object_chunk_size": 1,
    }


def _s3(saio: dict[str, str], bucket: str) -> dict[str, object]:
    return {
        "s3_store_host": saio["S3_ENDPOINT"],
        "s3_store_access_key": saio["S3_ACCESS_KEY"],
        "s3_store_secret_key": saio["S3_SECRET_KEY"],
        "s3_store_bucket": bucket,
    }


@pytest.fixture(scope="module")
def nodes(
    saio: dict[str, str],
    places: dict[str, str],
    source: Source,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, Server]]:
    """Node A (no worker) and node B (one worker) of one deployment."""
    shared = tmp_path_factory.mktemp("shared")
    database = _database(shared)
    options: dict[str, dict[str, object]] = {
        "DEFAULT": {
            "enabled_backends": "buckets:s3, shelf:file",
            "enabled_import_methods": "glance-direct,web-download,copy-image",
            "image_size_cap": CAP,
        },
        "glance_store": {"default_backend": "buckets"},
        "buckets": _s3(saio, places["images"]),
        "shelf": {"filesystem_store_datadir": shared / "shelf"},
        "os_glance_staging_store": _swift_staging(saio, places["staging"]),
        "import_filtering_opts": source.allowed(),
    }
    try:
        with (
            running(
                database, tmp_path_factory.mktemp("node-a"), {**options, "worker": worker(0)}
            ) as a,
            running(
                database, tmp_path_factory.mktemp("node-b"), {**options, "worker": worker(1)}
            ) as b,
        ):
            yield a, b
    finally:
        databases.drop_database(database)


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=ALICE, timeout=30, trust_env=False)


@pytest.fixture
def node_a(nodes: tuple[Server, Server]) -> Iterator[httpx.Client]:
    with _client(nodes[0]) as client:
        yield client


@pytest.fixture
def node_b(nodes: tuple[Server, Server]) -> Iterator[httpx.Client]:
    with _client(nodes[1]) as client:
        yield client


def _emptied(listing: Any) -> list[str]:
    """``listing()`` once it is empty, or as it stands after 10 s: a worker discards the
    staged data just after it records the task's end."""
    deadline = time.monotonic() + 10
    while (found := listing()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return list(found)


@pytest.fixture
def staged(saio: dict[str, str], places: dict[str, str]) -> Iterator[Any]:
    """What the staging container holds, seen from outside; it must be empty after each test."""
    swift = swift_connection(saio)

    def listing() -> list[str]:
        return swift_objects(swift, places["staging"])

    yield listing
    assert _emptied(listing) == []


def _new_image(api: httpx.Client, disk_format: str = "raw") -> str:
    response = api.post("/v2/images", json={"disk_format": disk_format, "container_format": "bare"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_staged_on_one_node_imported_by_the_other_nodes_worker(
    nodes: tuple[Server, Server], node_a: httpx.Client, node_b: httpx.Client, staged: Any
) -> None:
    image_id = _new_image(node_a)
    response = node_a.put(f"/v2/images/{image_id}/stage", content=DATA, headers=OCTET)
    assert response.status_code == 204, response.text
    # In the container, not in node A's data folder: a large object and its segments.
    assert image_id in staged() and len(staged()) > 1
    assert not any((Path(nodes[0].log_path).parent / "data" / "staging").glob("*"))
    assert node_b.get(f"/v2/images/{image_id}").json()["status"] == "uploading"

    response = node_b.post(
        f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
    )
    assert response.status_code == 202, response.text
    image = wait_for_status(node_a, image_id, ("active", "queued"))
    assert image["status"] == "active", finished_task(node_a, image_id)
    assert image["size"] == len(DATA)
    assert image["checksum"] == hashlib.md5(DATA).hexdigest()
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert image["stores"] == "buckets"
    assert finished_task(node_a, image_id)["status"] == "success"
    assert node_a.get(f"/v2/images/{image_id}/file").content == DATA
    assert _emptied(staged) == []


def test_stage_rules_hold_with_the_staging_area_in_swift(
    saio: dict[str, str],
    places: dict[str, str],
    node_a: httpx.Client,
    node_b: httpx.Client,
    staged: Any,
) -> None:
    # Data already staged for the image (left by someone else): 409, and it is kept.
    image_id = _new_image(node_a)
    swift_connection(saio).put_object(places["staging"], image_id, b"already here")
    refused = node_a.put(f"/v2/images/{image_id}/stage", content=DATA, headers=OCTET)
    assert refused.status_code == 409, refused.text
    assert "already has data on staging" in refused.text
    assert node_b.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert staged() == [image_id]
    swift_connection(saio).delete_object(places["staging"], image_id)

    # Past image_size_cap, sent chunked so the cap bites mid-stream after whole segments
    # went up: 413, back to queued, and not one segment left.
    def too_big() -> Iterator[bytes]:
        for _ in range(CAP // MiB + 1):
            yield os.urandom(MiB)

    capped = node_a.put(f"/v2/images/{image_id}/stage", content=too_big(), headers=OCTET)
    assert capped.status_code == 413, capped.text
    assert node_b.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert staged() == []

    # Staged through A, deleted through B: the staged object goes with the image.
    assert (
        node_a.put(f"/v2/images/{image_id}/stage", content=DATA, headers=OCTET).status_code == 204
    )
    assert image_id in staged()
    assert node_b.delete(f"/v2/images/{image_id}").status_code == 204
    assert staged() == []


def test_web_download_and_copy_image_stage_in_swift(
    source: Source, node_a: httpx.Client, node_b: httpx.Client, staged: Any
) -> None:
    source.files["/disk.raw"] = DATA
    image_id = _new_image(node_a)
    response = node_a.post(
        f"/v2/images/{image_id}/import",
        json={"method": {"name": "web-download", "uri": source.url("/disk.raw")}},
    )
    assert response.status_code == 202, response.text
    image = wait_for_status(node_b, image_id, ("active", "queued"))
    assert image["status"] == "active", finished_task(node_a, image_id)
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert _emptied(staged) == []

    copied = _new_image(node_a)
    upload = node_a.put(
        f"/v2/images/{copied}/file", content=DATA, headers={**OCTET, "X-Image-Meta-Store": "shelf"}
    )
    assert upload.status_code == 204, upload.text
    response = node_a.post(
        f"/v2/images/{copied}/import",
        json={"method": {"name": "copy-image"}, "stores": ["buckets"]},
    )
    assert response.status_code == 202, response.text
    assert finished_task(node_a, copied)["status"] == "success"
    image = node_b.get(f"/v2/images/{copied}").json()
    assert sorted(image["stores"].split(",")) == ["buckets", "shelf"]
    assert _emptied(staged) == []


def test_data_refused_on_inspection_fails_the_import_and_leaves_nothing_staged(
    node_a: httpx.Client, tmp_path: Path, staged: Any
) -> None:
    # A qcow2 declared raw: inspected from the head of the staged object, never copied.
    qcow2 = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(qcow2), "16M"], check=True)
    image_id = _new_image(node_a)
    assert (
        node_a.put(f"/v2/images/{image_id}/stage", content=qcow2.read_bytes(), headers=OCTET)
    ).status_code == 204
    node_a.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    task = finished_task(node_a, image_id)
    assert task["status"] == "failure"
    assert "qcow2" in task["message"] and "raw" in task["message"]
    assert node_a.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert _emptied(staged) == []


def test_glanceclient_image_create_via_import(
    nodes: tuple[Server, Server], tmp_path: Path, staged: Any
) -> None:
    path = tmp_path / "disk.raw"
    path.write_bytes(DATA)
    glance = runner(nodes[1].url, tmp_path)
    created = glance(
        "alice:projA:member",
        "image-create-via-import",
        "--import-method",
        "glance-direct",
        "--file",
        str(path),
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--name",
        "via-swift-staging",
    ).properties()
    with _client(nodes[1]) as api:
        image = wait_for_status(api, created["id"], ("active", "queued"))
    assert image["status"] == "active"
    assert image["checksum"] == hashlib.md5(DATA).hexdigest()
    out = tmp_path / "out.raw"
    glance("alice:projA:member", "image-download", "--file", str(out), created["id"])
    assert out.read_bytes() == DATA
    assert _emptied(staged) == []


# --- qemu-img conversion with the staging area in S3 --------------------------------


@pytest.fixture(scope="module")
def converting(
    saio: dict[str, str],
    places: dict[str, str],
    source: Source,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, Path]]:
    workdir = tmp_path_factory.mktemp("converting")
    work = workdir / "work"
    options: dict[str, dict[str, object]] = {
        "os_glance_staging_store": {"store_type": "s3", **_s3(saio, places["staging_bucket"])},
        "task": {"work_dir": work},
        "image_import_opts": {"image_import_plugins": "['image_conversion']"},
    }
    with _alone(workdir, source, options) as server:
        yield server, work


def test_conversion_copies_the_staged_object_to_the_worker_and_back_into_a_store(
    saio: dict[str, str], places: dict[str, str], converting: tuple[Server, Path], tmp_path: Path
) -> None:
    server, work = converting
    bucket = s3_client(saio)
    base, child = tmp_path / "base.qcow2", tmp_path / "child.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(base), "8M"], check=True)
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(child)],
        check=True,
    )
    with _client(server) as api:
        good = _new_image(api, "qcow2")
        assert (
            api.put(
                f"/v2/images/{good}/stage", content=base.read_bytes(), headers=OCTET
            ).status_code
            == 204
        )
        assert s3_contents(bucket, places["staging_bucket"]) == [good]
        api.post(f"/v2/images/{good}/import", json={"method": {"name": "glance-direct"}})
        image = wait_for_status(api, good, ("active", "queued"))
        assert image["status"] == "active", finished_task(api, good)
        assert (image["disk_format"], image["container_format"]) == ("raw", "bare")
        assert image["size"] == image["virtual_size"] == 8 * MiB
        raw = b"\0" * (8 * MiB)
        assert image["os_hash_value"] == hashlib.sha512(raw).hexdigest()
        assert api.get(f"/v2/images/{good}/file").content == raw

        bad = _new_image(api, "qcow2")
        api.put(f"/v2/images/{bad}/stage", content=child.read_bytes(), headers=OCTET)
        api.post(f"/v2/images/{bad}/import", json={"method": {"name": "glance-direct"}})
        task = finished_task(api, bad)
        assert task["status"] == "failure"
        assert "backing" in task["message"].lower()
        assert api.get(f"/v2/images/{bad}").json()["status"] == "queued"
    assert _emptied(lambda: s3_contents(bucket, places["staging_bucket"])) == []
    # The worker's copies are gone too.
    assert _emptied(lambda: list(work.iterdir())) == []


# --- a staging area whose credentials Swift refuses -----------------------------------


@pytest.fixture(scope="module")
def refused(
    saio: dict[str, str],
    places: dict[str, str],
    source: Source,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    staging = {**_swift_staging(saio, places["staging"]), "swift_store_key": BAD_KEY}
    with _alone(
        tmp_path_factory.mktemp("refused"), source, {"os_glance_staging_store": staging}
    ) as server:
        yield server


def test_a_staging_area_refusing_its_credentials_gives_503_and_failed_tasks(
    refused: Server, source: Source, staged: Any
) -> None:
    with _client(refused) as api:
        image_id = _new_image(api)
        response = api.put(f"/v2/images/{image_id}/stage", content=DATA, headers=OCTET)
        assert response.status_code == 503, response.text
        message = response.text
        assert "The staging area refused its credentials" in message
        assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"

        source.files["/refused.raw"] = DATA
        api.post(
            f"/v2/images/{image_id}/import",
            json={"method": {"name": "web-download", "uri": source.url("/refused.raw")}},
        )
        task = finished_task(api, image_id)
        assert task["status"] == "failure"
        assert task["message"].startswith("The staging area refused its credentials")
        assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    for shown in (message, task["message"], str(task["result"]), refused.log()):
        assert BAD_KEY not in shown
    assert staged() == []
