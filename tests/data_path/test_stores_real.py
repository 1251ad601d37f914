"""Multi-store against a real Swift and S3 (swift-saio), through a real glimpse-api with
its embedded glimpse-worker, driven by python-glanceclient's ``glance`` command.

The deployment has a file store, a Swift store and an S3 store, plus stores that cannot
work: a Swift store pointed at a closed port and Swift and S3 stores with wrong keys.
Those must fail their own requests cleanly and leave the other stores alone.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
from tests.support.glance_cli import Glance, runner
from tests.support.server import Server, running

ALICE = "alice:projA:member"
ALICE_HEADERS = {"X-Project-Id": "projA", "X-User-Id": "alice", "X-Roles": "member"}
#: Past one Swift segment and one S3 part (1 MiB and 5 MiB here), so both go up in pieces.
DATA = os.urandom((6 << 20) + 321)
SMALL = os.urandom(4096)


@pytest.fixture(scope="module")
def saio() -> dict[str, str]:
    settings = saio_settings("SWIFT_AUTH_URL")
    if not settings.get("S3_ENDPOINT"):
        pytest.skip("S3_ENDPOINT is not set")
    return settings


@pytest.fixture(scope="module")
def places(saio: dict[str, str]) -> Iterator[dict[str, str]]:
    """A container and a bucket of this module's own, removed at the end."""
    swift, s3 = swift_connection(saio), s3_client(saio)
    container, bucket = unique_name(), unique_name()
    swift.put_container(container)
    s3.create_bucket(Bucket=bucket)
    yield {"container": container, "bucket": bucket}
    remove_swift_container(swift, container)
    remove_s3_bucket(s3, bucket)


def _options(saio: dict[str, str], places: dict[str, str]) -> dict[str, dict[str, object]]:
    swift = {
        "swift_store_auth_address": saio["SWIFT_AUTH_URL"],
        "swift_store_user": saio["SWIFT_USER"],
        "swift_store_key": saio["SWIFT_KEY"],
        "swift_store_auth_version": 1,
        "swift_store_container": places["container"],
        "swift_store_large_object_size": 1,
        "swift_store_large_object_chunk_size": 1,
    }
    s3 = {
        "s3_store_host": saio["S3_ENDPOINT"],
        "s3_store_access_key": saio["S3_ACCESS_KEY"],
        "s3_store_secret_key": saio["S3_SECRET_KEY"],
        "s3_store_bucket": places["bucket"],
        "s3_store_large_object_size": 5,
        "s3_store_large_object_chunk_size": 5,
    }
    # The discard port: nothing listens there (a free port could be taken meanwhile).
    closed = "http://127.0.0.1:9/auth/v1.0"
    return {
        "DEFAULT": {
            "enabled_backends": (
                "local:file, objects:swift, buckets:s3, closed:swift, badkey:swift, bads3:s3"
            ),
            "enabled_import_methods": "glance-direct,copy-image",
            "show_multiple_locations": True,
        },
        "glance_store": {"default_backend": "local"},
        # copy-image runs in a glimpse-worker beside the API.
        "worker": {"embedded_workers": 1, "poll_seconds": 0.2, "heartbeat_seconds": 1},
        "local": {"store_description": "Local disks"},
        "objects": {**swift, "store_description": "Swift objects"},
        "buckets": {**s3, "store_description": "S3 buckets"},
        "closed": {**swift, "swift_store_auth_address": closed},
        "badkey": {**swift, "swift_store_key": "not-the-key"},
        "bads3": {**s3, "s3_store_secret_key": "not-the-secret"},
    }


@pytest.fixture(scope="module")
def server(
    database_url: str,
    saio: dict[str, str],
    places: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    with running(database_url, tmp_path_factory.mktemp("stores"), _options(saio, places)) as srv:
        yield srv


@pytest.fixture
def glance(server: Server, tmp_path: Path) -> Glance:
    return runner(server.url, tmp_path)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers=ALICE_HEADERS, timeout=60.0, trust_env=False
    ) as client:
        yield client


def _image(http: httpx.Client, image_id: str) -> dict[str, Any]:
    response = http.get(f"/v2/images/{image_id}")
    assert response.status_code == 200, response.text
    image: dict[str, Any] = response.json()
    return image


def _create(glance: Glance) -> str:
    created = glance(
        ALICE,
        "image-create",
        "--name",
        "multi",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
    ).properties()
    return created["id"]


def _upload(glance: Glance, tmp_path: Path, store: str, data: bytes = DATA) -> str:
    source = tmp_path / f"upload-{store}.raw"
    source.write_bytes(data)
    image_id = _create(glance)
    glance(ALICE, "image-upload", "--store", store, "--file", str(source), image_id)
    return image_id


def _download(glance: Glance, tmp_path: Path, image_id: str) -> bytes:
    target = tmp_path / f"{image_id}.out"
    glance(ALICE, "image-download", "--file", str(target), image_id)
    return target.read_bytes()


def _swift_names(saio: dict[str, str], places: dict[str, str], image_id: str) -> list[str]:
    names = swift_objects(swift_connection(saio), places["container"])
    return [name for name in names if name.startswith(image_id)]


def _s3_names(saio: dict[str, str], places: dict[str, str], image_id: str) -> list[str]:
    names = s3_contents(s3_client(saio), places["bucket"])
    return [name for name in names if image_id in name]


def _wait_until_copied(http: httpx.Client, image_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        tasks = http.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        if tasks and all(t["status"] in ("success", "failure") for t in tasks):
            return _image(http, image_id)
        assert time.monotonic() < deadline, tasks
        time.sleep(0.1)


def test_stores_info(glance: Glance) -> None:
    rows = glance(ALICE, "stores-info").out
    for store in ("local", "objects", "buckets", "closed", "badkey", "bads3"):
        assert store in rows
    assert "Swift objects" in rows


def test_stores_info_detail_with_glance_cli(
    glance: Glance, saio: dict[str, str], places: dict[str, str]
) -> None:
    shown = glance("admin:ops:admin", "stores-info", "--detail").properties()["stores"]

    # The client prints the JSON wrapped in a table: compare it without whitespace.
    def squeezed(text: str) -> str:
        return re.sub(r"\s+", "", text)

    swift = {
        "id": "objects",
        "description": "Swift objects",
        "type": "swift",
        "weight": 0,
        "properties": {
            "container": places["container"],
            "large_object_size": 1 << 20,
            "large_object_chunk_size": 1 << 20,
        },
    }
    s3 = {
        "id": "buckets",
        "description": "S3 buckets",
        "type": "s3",
        "weight": 0,
        "properties": {
            "bucket": places["bucket"],
            "s3_store_large_object_size": 5 << 20,
            "s3_store_large_object_chunk_size": 5 << 20,
        },
    }
    for store in (swift, s3):
        assert squeezed(json.dumps(store)) in squeezed(shown)
    assert squeezed(
        '{"id": "local", "description": "Local disks", "default": "true", "type": "file"'
    ) in squeezed(shown)
    for secret in (saio["SWIFT_KEY"], saio["S3_SECRET_KEY"], "not-the-key", "not-the-secret"):
        assert secret not in shown
    # Members are refused; the client says so.
    refused = glance(ALICE, "stores-info", "--detail", expect=None)
    assert refused.code != 0 and "403" in refused.err + refused.out


@pytest.mark.parametrize("store", ["local", "objects", "buckets"])
def test_upload_to_a_store_and_download_back(
    glance: Glance,
    http: httpx.Client,
    tmp_path: Path,
    saio: dict[str, str],
    places: dict[str, str],
    store: str,
) -> None:
    image_id = _upload(glance, tmp_path, store)
    image = _image(http, image_id)
    assert image["status"] == "active" and image["stores"] == store
    assert image["size"] == len(DATA)
    assert _download(glance, tmp_path, image_id) == DATA
    # The data is in that store, and only there.
    in_swift, in_s3 = _swift_names(saio, places, image_id), _s3_names(saio, places, image_id)
    assert bool(in_swift) == (store == "objects")
    assert bool(in_s3) == (store == "buckets")
    # Nobody sees the store's credentials.
    shown = str(image)
    assert saio["SWIFT_KEY"] not in shown.replace(image_id, "")
    assert quote(saio["S3_ACCESS_KEY"], safe="") not in shown
    # Deleting the image removes its data, segments included.
    glance(ALICE, "image-delete", image_id)
    assert _swift_names(saio, places, image_id) == []
    assert _s3_names(saio, places, image_id) == []


def _pieces(saio: dict[str, str], places: dict[str, str], store: str, name: str) -> list[int]:
    """Sizes of the pieces of an object seen from outside; [] for a plain object."""
    if store == "objects":
        manifest = swift_connection(saio).get_object(
            places["container"], name, query_string="multipart-manifest=get"
        )[1]
        return [segment["bytes"] for segment in json.loads(manifest)]
    s3, bucket = s3_client(saio), places["bucket"]
    count = s3.head_object(Bucket=bucket, Key=name, PartNumber=1).get("PartsCount") or 0
    return [
        s3.head_object(Bucket=bucket, Key=name, PartNumber=n)["ContentLength"]
        for n in range(1, count + 1)
    ]


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    ("store", "pieces"),
    [("objects", [1 << 20] * 6 + [321]), ("buckets", [5 << 20, (1 << 20) + 321])],
)
def test_uploads_with_and_without_a_size_go_up_in_the_same_pieces(
    http: httpx.Client,
    saio: dict[str, str],
    places: dict[str, str],
    store: str,
    pieces: list[int],
    sized: bool,
) -> None:
    # With Content-Length the store knows the size up front and streams each piece's
    # request; chunked, Swift streams pieces of unknown length and S3 buffers its parts.
    image_id = http.post(
        "/v2/images", json={"disk_format": "raw", "container_format": "bare"}
    ).json()["id"]
    headers = {"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store}
    odd = 100_003
    content = DATA if sized else (DATA[i : i + odd] for i in range(0, len(DATA), odd))

    response = http.put(f"/v2/images/{image_id}/file", content=content, headers=headers)

    assert response.status_code == 204, response.text
    image = _image(http, image_id)
    assert image["status"] == "active" and image["size"] == len(DATA)
    assert _pieces(saio, places, store, image_id) == pieces
    assert http.get(f"/v2/images/{image_id}/file").content == DATA
    assert http.delete(f"/v2/images/{image_id}").status_code == 204
    assert _swift_names(saio, places, image_id) == _s3_names(saio, places, image_id) == []


def test_copy_image_from_file_to_swift_and_s3(
    glance: Glance,
    http: httpx.Client,
    tmp_path: Path,
    saio: dict[str, str],
    places: dict[str, str],
) -> None:
    image_id = _upload(glance, tmp_path, "local")
    before = _image(http, image_id)
    glance(
        ALICE,
        "image-import",
        image_id,
        "--import-method",
        "copy-image",
        "--stores",
        "objects,buckets",
    )
    image = _wait_until_copied(http, image_id)
    assert image["status"] == "active"
    assert image["stores"] == "local,objects,buckets"
    assert image["os_glance_importing_to_stores"] == ""
    assert image["os_glance_failed_import"] == ""
    assert image["os_hash_value"] == before["os_hash_value"]
    assert _swift_names(saio, places, image_id) and _s3_names(saio, places, image_id)
    # Take the file copy away: downloads now come from Swift or S3.
    glance(ALICE, "stores-delete", "--store", "local", image_id)
    assert _image(http, image_id)["stores"] == "objects,buckets"
    assert _download(glance, tmp_path, image_id) == DATA
    glance(ALICE, "stores-delete", "--store", "objects", image_id)
    assert _swift_names(saio, places, image_id) == []
    assert _download(glance, tmp_path, image_id) == DATA
    # The last copy stays.
    last = glance(ALICE, "stores-delete", "--store", "buckets", image_id, expect=None)
    assert last.code != 0
    assert _s3_names(saio, places, image_id)


@pytest.mark.parametrize(
    ("store", "says"),
    [
        ("closed", "unavailable"),
        ("badkey", "credentials"),
        ("bads3", "credentials"),
    ],
)
def test_a_broken_store_fails_cleanly_without_affecting_the_others(
    http: httpx.Client,
    saio: dict[str, str],
    places: dict[str, str],
    store: str,
    says: str,
) -> None:
    response = http.post(
        "/v2/images", json={"name": "b", "disk_format": "raw", "container_format": "bare"}
    )
    image_id = response.json()["id"]
    headers = {"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store}
    started = time.monotonic()
    response = http.put(f"/v2/images/{image_id}/file", content=SMALL, headers=headers)
    assert response.status_code == 503, response.text
    assert says in response.text
    assert time.monotonic() - started < 30
    # Nothing half-written anywhere, and the image can still get its data elsewhere.
    assert _image(http, image_id)["status"] == "queued"
    assert _swift_names(saio, places, image_id) == []
    assert _s3_names(saio, places, image_id) == []
    headers["X-Image-Meta-Store"] = "objects"
    response = http.put(f"/v2/images/{image_id}/file", content=SMALL, headers=headers)
    assert response.status_code == 204, response.text
    assert http.get(f"/v2/images/{image_id}/file").content == SMALL


def test_copy_to_a_broken_store_records_it_and_keeps_the_good_copies(
    http: httpx.Client,
    glance: Glance,
    tmp_path: Path,
    saio: dict[str, str],
    places: dict[str, str],
) -> None:
    image_id = _upload(glance, tmp_path, "local", SMALL)
    body = {
        "method": {"name": "copy-image"},
        "stores": ["closed", "buckets"],
        "all_stores_must_succeed": False,
    }
    assert http.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    image = _wait_until_copied(http, image_id)
    tasks = http.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    assert image["status"] == "active", (image, tasks)
    assert image["stores"] == "local,buckets", (image, tasks)
    assert image["os_glance_failed_import"] == "closed", (image, tasks)
    assert image["os_glance_importing_to_stores"] == "", (image, tasks)
    assert _s3_names(saio, places, image_id)


def test_external_swift_and_s3_locations_with_quoted_credentials(
    http: httpx.Client, saio: dict[str, str], places: dict[str, str]
) -> None:
    """Locations in another user's name: user ``test:tester2`` must be quoted, and the
    key is sent with a needlessly quoted character, which must be decoded too."""
    name = unique_name()
    swift_connection(saio).put_object(places["container"], name, SMALL)
    s3_client(saio).put_object(Bucket=places["bucket"], Key=name, Body=SMALL)
    auth = saio["SWIFT_AUTH_URL"].split("://", 1)[1]
    s3_host = saio["S3_ENDPOINT"].split("://", 1)[1]
    user, key = quote("test:tester2", safe=""), "testing%32"  # %32 is "2"
    swift_url = f"swift+http://{user}:{key}@{auth}/{places['container']}/{name}"
    s3_url = f"s3://{user}:{key}@{s3_host}/{places['bucket']}/{name}"
    patch_type = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
    for url, store, public in (
        (swift_url, "objects", f"swift+http://{auth}/{places['container']}/{name}"),
        (s3_url, "buckets", f"s3://{s3_host}/{places['bucket']}/{name}"),
    ):
        image_id = http.post(
            "/v2/images", json={"disk_format": "raw", "container_format": "bare"}
        ).json()["id"]
        ops = [{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}]
        response = http.patch(f"/v2/images/{image_id}", json=ops, headers=patch_type)
        assert response.status_code == 200, response.text
        image = response.json()
        assert image["status"] == "active" and image["size"] == len(SMALL)
        assert image["locations"] == [{"url": public, "metadata": {"store": store}}]
        assert "testing" not in response.text
        assert http.get(f"/v2/images/{image_id}/file").content == SMALL
        # A wrong key is no location at all; and the store never lends its own key to a
        # location without one, or with a guess for the store's own user.
        store_user = quote(saio["SWIFT_USER"], safe="")
        other = http.post(
            "/v2/images", json={"disk_format": "raw", "container_format": "bare"}
        ).json()["id"]
        for refused in (
            url.replace(key, "wrong"),
            public,
            url.replace(f"{user}:{key}", f"{store_user}:guess"),
        ):
            value = {"url": refused, "metadata": {}}
            ops = [{"op": "add", "path": "/locations/-", "value": value}]
            response = http.patch(f"/v2/images/{other}", json=ops, headers=patch_type)
            assert response.status_code == 400, refused
            assert "Invalid location" in response.text
