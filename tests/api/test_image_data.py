"""Uploading and downloading image data (``/v2/images/{id}/file``), in process.

Wire-level behaviour (chunk sizes, early 413 while the client is still sending,
disconnects, concurrent uploads, crashes) needs a real server and lives in
``tests/data_path``.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from glimpse import config
from glimpse.db.models import Image, ImageUpload, utcnow
from glimpse.http.app import ASGIApp, create_app
from glimpse.runtime import Runtime
from glimpse.services import image_data
from tests.support.client import Api

OCTETS = {"Content-Type": "application/octet-stream"}
DATA = bytes(range(256)) * 40 + b"tail"  # 10244 bytes, every byte value


def store_dir(tmp_path: Path) -> Path:
    """The filesystem store of the in-process API (``images/`` in its data folder)."""
    return tmp_path / "data" / "images"


def stored_names(tmp_path: Path) -> list[str]:
    """Everything in the store folder, temporaries included."""
    folder = store_dir(tmp_path)
    return sorted(os.listdir(folder)) if folder.exists() else []


def new_image(api: Api, **body: Any) -> str:
    body.setdefault("disk_format", "raw")
    body.setdefault("container_format", "bare")
    image_id: str = api.create_image(**body)["id"]
    return image_id


def put(api: Api, image_id: str, data: Any, **headers: str) -> Any:
    return api.put(f"/v2/images/{image_id}/file", content=data, headers={**OCTETS, **headers})


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    """A body without Content-Length: httpx sends it with Transfer-Encoding: chunked."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def status_of(api: Api, image_id: str) -> str:
    status: str = api.get(f"/v2/images/{image_id}").json()["status"]
    return status


def assert_queued_without_data(api: Api, image_id: str, tmp_path: Path) -> None:
    image = api.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "queued"
    for attr in ("size", "checksum", "os_hash_algo", "os_hash_value", "virtual_size"):
        assert image[attr] is None, attr
    assert stored_names(tmp_path) == []


# Upload


def test_upload_makes_the_image_active_with_size_and_digests(api: Api, tmp_path: Path) -> None:
    image_id = new_image(api)
    response = put(api, image_id, DATA)
    assert response.status_code == 204, response.text
    assert response.content == b""

    image = api.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "active"
    assert image["size"] == len(DATA)
    assert image["virtual_size"] == len(DATA)  # raw: the data is the disk
    assert image["checksum"] == hashlib.md5(DATA).hexdigest()
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    # One file under the image's id, holding exactly the bytes; no temporary left.
    assert stored_names(tmp_path) == [image_id]
    assert (store_dir(tmp_path) / image_id).read_bytes() == DATA


def test_chunked_upload_without_content_length(api: Api, tmp_path: Path) -> None:
    image_id = new_image(api)
    response = put(api, image_id, chunked(DATA, 1000))
    assert response.status_code == 204, response.text
    image = api.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "active" and image["size"] == len(DATA)
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert (store_dir(tmp_path) / image_id).read_bytes() == DATA


def test_empty_upload_gives_an_active_zero_byte_image(api: Api) -> None:
    image_id = new_image(api)
    assert put(api, image_id, b"").status_code == 204
    image = api.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "active" and image["size"] == 0
    assert image["checksum"] == hashlib.md5(b"").hexdigest()
    download = api.get(f"/v2/images/{image_id}/file")
    assert download.status_code == 200
    assert download.content == b"" and download.headers["content-length"] == "0"


def test_data_not_in_the_declared_format_is_400_and_keeps_nothing(api: Api, tmp_path: Path) -> None:
    image_id = new_image(api, disk_format="qcow2")
    assert put(api, image_id, DATA).status_code == 400
    assert_queued_without_data(api, image_id, tmp_path)


def test_second_upload_is_409_and_keeps_the_first(api: Api, tmp_path: Path) -> None:
    image_id = new_image(api)
    assert put(api, image_id, DATA).status_code == 204
    again = put(api, image_id, b"other data")
    assert again.status_code == 409
    assert "active" in again.text
    image = api.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "active" and image["size"] == len(DATA)
    assert (store_dir(tmp_path) / image_id).read_bytes() == DATA


def test_upload_to_a_deactivated_image_is_409(api: Api) -> None:
    image_id = new_image(api)
    assert put(api, image_id, DATA).status_code == 204
    assert api.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    assert put(api, image_id, DATA).status_code == 409


def test_upload_needs_octet_stream(api: Api, tmp_path: Path) -> None:
    image_id = new_image(api)
    for headers in ({"Content-Type": "application/json"}, {"Content-Type": "text/plain"}, {}):
        response = api.put(f"/v2/images/{image_id}/file", content=DATA, headers=headers)
        assert response.status_code == 415, headers
        assert_queued_without_data(api, image_id, tmp_path)


def test_octet_stream_with_parameters_is_accepted(api: Api) -> None:
    image_id = new_image(api)
    response = put(api, image_id, DATA, **{"Content-Type": "Application/Octet-Stream; x=1"})
    assert response.status_code == 204


def test_upload_needs_both_formats(api: Api, tmp_path: Path) -> None:
    for formats in ({}, {"disk_format": "raw"}, {"container_format": "bare"}):
        image_id: str = api.create_image(**formats)["id"]
        response = put(api, image_id, DATA)
        assert response.status_code == 400, formats
        assert "disk_format, container_format must be set" in response.text
        assert_queued_without_data(api, image_id, tmp_path)


def test_non_owner_gets_403_and_invisible_image_404(api: Api, tmp_path: Path) -> None:
    public = new_image(api.as_("ops", roles="admin"), owner="projA", visibility="public")
    private = new_image(api.as_("projA"), visibility="private")
    bob = api.as_("projB")
    assert put(bob, public, DATA).status_code == 403
    assert put(bob, private, DATA).status_code == 404
    assert put(bob, "00000000-0000-0000-0000-000000000000", DATA).status_code == 404
    assert status_of(api, public) == "queued" and status_of(api, private) == "queued"
    assert stored_names(tmp_path) == []
    # The owner may.
    assert put(api.as_("projA"), private, DATA).status_code == 204


# Multihash


def test_configured_hashing_algorithm_is_used(make_api: Callable[..., Api]) -> None:
    api = make_api(hashing_algorithm="sha256")
    image_id = new_image(api)
    assert put(api, image_id, DATA).status_code == 204
    image = api.get(f"/v2/images/{image_id}").json()
    assert image["os_hash_algo"] == "sha256"
    assert image["os_hash_value"] == hashlib.sha256(DATA).hexdigest()
    assert image["checksum"] == hashlib.md5(DATA).hexdigest()


def test_queued_images_have_no_digests_and_list_filters_find_uploaded_ones(api: Api) -> None:
    queued = new_image(api)
    uploaded = new_image(api)
    assert put(api, uploaded, DATA).status_code == 204
    by_hash = api.get("/v2/images", params={"os_hash_value": hashlib.sha512(DATA).hexdigest()})
    assert [image["id"] for image in by_hash.json()["images"]] == [uploaded]
    by_md5 = api.get("/v2/images", params={"checksum": hashlib.md5(DATA).hexdigest()})
    assert [image["id"] for image in by_md5.json()["images"]] == [uploaded]
    assert api.get(f"/v2/images/{queued}").json()["os_hash_value"] is None


# Expected digest (X-Image-Meta-Expected-Hash)


def test_matching_expected_hash_makes_the_image_active(api: Api) -> None:
    for header in (
        f"md5:{hashlib.md5(DATA).hexdigest()}",
        f"sha512:{hashlib.sha512(DATA).hexdigest()}",
        f"SHA512:{hashlib.sha512(DATA).hexdigest().upper()}",
    ):
        image_id = new_image(api)
        response = put(api, image_id, DATA, **{"X-Image-Meta-Expected-Hash": header})
        assert response.status_code == 204, (header, response.text)
        assert status_of(api, image_id) == "active"


def test_mismatching_expected_hash_is_400_and_keeps_nothing(api: Api, tmp_path: Path) -> None:
    image_id = new_image(api)
    for algo in ("md5", "sha512"):
        wrong = hashlib.new(algo, b"something else").hexdigest()
        response = put(api, image_id, DATA, **{"X-Image-Meta-Expected-Hash": f"{algo}:{wrong}"})
        assert response.status_code == 400, algo
        assert wrong in response.text
        assert_queued_without_data(api, image_id, tmp_path)
    # The image can still receive the right data.
    assert put(api, image_id, DATA).status_code == 204


def test_unusable_expected_hash_header_is_400(api: Api, tmp_path: Path) -> None:
    image_id = new_image(api)
    for header in (
        "sha512",
        "sha512:not-hex",
        "md5 deadbeef",
        # A digest this deployment does not compute cannot be checked.
        f"sha256:{hashlib.sha256(DATA).hexdigest()}",
    ):
        response = put(api, image_id, DATA, **{"X-Image-Meta-Expected-Hash": header})
        assert response.status_code == 400, header
        assert_queued_without_data(api, image_id, tmp_path)


# Declared sizes


def test_declared_image_size_must_match_the_data(api: Api, tmp_path: Path) -> None:
    image_id = new_image(api)
    for declared in (len(DATA) - 1, len(DATA) + 1):
        response = put(
            api, image_id, chunked(DATA, 4096), **{"x-openstack-image-size": str(declared)}
        )
        assert response.status_code == 400, declared
        assert_queued_without_data(api, image_id, tmp_path)
    response = put(api, image_id, DATA, **{"x-openstack-image-size": str(len(DATA) + 5)})
    assert response.status_code == 400
    assert_queued_without_data(api, image_id, tmp_path)
    assert put(api, image_id, DATA, **{"x-openstack-image-size": "abc"}).status_code == 400
    response = put(api, image_id, DATA, **{"x-openstack-image-size": str(len(DATA))})
    assert response.status_code == 204


# Size cap and storage quota


def test_image_size_cap_gives_413_and_keeps_nothing(
    make_api: Callable[..., Api], tmp_path: Path
) -> None:
    api = make_api(image_size_cap=100)
    image_id = new_image(api)
    for body in (b"x" * 101, chunked(b"x" * 1000, 7)):
        response = put(api, image_id, body)
        assert response.status_code == 413
        assert "100" in response.text
        assert_queued_without_data(api, image_id, tmp_path)
    assert put(api, image_id, b"x" * 100).status_code == 204
    assert api.get(f"/v2/images/{image_id}").json()["size"] == 100


@pytest.mark.parametrize(
    ("quota", "limit"),
    [("10B", 10), ("1KB", 1024), ("2MB", 2 << 20), ("3000", 3000)],
)
def test_user_storage_quota_formats(
    make_api: Callable[..., Api], tmp_path: Path, quota: str, limit: int
) -> None:
    api = make_api(user_storage_quota=quota).as_("projA")
    image_id = new_image(api)
    too_big = put(api, image_id, chunked(b"q" * (limit + 1), 64 << 10))
    assert too_big.status_code == 413
    assert str(limit) in too_big.text
    assert_queued_without_data(api, image_id, tmp_path)
    assert put(api, image_id, b"q" * limit).status_code == 204


def test_user_storage_quota_counts_the_owners_other_images(
    make_api: Callable[..., Api], tmp_path: Path
) -> None:
    admin = make_api(user_storage_quota="1KB")
    alice, bob = admin.as_("projA"), admin.as_("projB")
    first = new_image(alice)
    assert put(alice, first, b"a" * 600).status_code == 204
    second = new_image(alice)
    # Known in advance from Content-Length, and found while counting a chunked body.
    assert put(alice, second, b"a" * 500).status_code == 413
    assert put(alice, second, chunked(b"a" * 500, 100)).status_code == 413
    assert status_of(alice, second) == "queued"
    assert stored_names(tmp_path) == [first]
    # Another owner has its own quota.
    other = new_image(bob)
    assert put(bob, other, b"b" * 1000).status_code == 204
    # What is left of alice's quota still fits; then nothing is left.
    assert put(alice, second, b"a" * 424).status_code == 204
    third = new_image(alice)
    assert put(alice, third, b"a").status_code == 413
    # Deleting an image gives its share back.
    assert alice.delete(f"/v2/images/{first}").status_code == 204
    assert put(alice, third, b"a" * 600).status_code == 204


# Download


def uploaded(api: Api, data: bytes = DATA) -> str:
    image_id = new_image(api)
    assert put(api, image_id, data).status_code == 204
    return image_id


def test_download_returns_the_data_with_length_and_md5(api: Api) -> None:
    image_id = uploaded(api)
    response = api.get(f"/v2/images/{image_id}/file")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["content-md5"] == hashlib.md5(DATA).hexdigest()
    assert "content-range" not in response.headers


class PathsendServer:
    """An ASGI app behind a server offering ``http.response.pathsend`` (as granian does).

    Records the paths the app asks to send, and sends their bytes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sent: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            extensions = {**scope.get("extensions", {}), "http.response.pathsend": {}}
            scope = {**scope, "extensions": extensions}

        async def send_file(message: Any) -> None:
            if message["type"] == "http.response.pathsend":
                self.sent.append(message["path"])
                body = Path(message["path"]).read_bytes()
                message = {"type": "http.response.body", "body": body}
            await send(message)

        await self.app(scope, receive, send_file)


def test_download_is_sent_by_path_where_the_server_can(
    make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    app = PathsendServer(create_app(make_runtime()))
    with TestClient(app) as client:
        api = Api(client)
        image_id = uploaded(api)
        response = api.get(f"/v2/images/{image_id}/file")
        assert response.status_code == 200 and response.content == DATA
        assert response.headers["content-length"] == str(len(DATA))
        assert response.headers["content-md5"] == hashlib.md5(DATA).hexdigest()
        assert response.headers["content-type"] == "application/octet-stream"
        assert app.sent == [str(store_dir(tmp_path) / image_id)]
        # Ranges are still read and cut by us.
        ranged = api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=1-2"})
        assert ranged.status_code == 206 and ranged.content == DATA[1:3]
        assert len(app.sent) == 1
        # A file gone from the store is found missing before the headers go out.
        (store_dir(tmp_path) / image_id).unlink()
        assert api.get(f"/v2/images/{image_id}/file").status_code == 204


def test_download_without_data_is_204(api: Api) -> None:
    image_id = new_image(api)
    response = api.get(f"/v2/images/{image_id}/file")
    assert response.status_code == 204
    assert response.content == b""


def test_download_of_invisible_or_missing_image_is_404(api: Api) -> None:
    image_id = uploaded(api.as_("projA"))
    assert api.as_("projB").get(f"/v2/images/{image_id}/file").status_code == 404
    missing = api.get("/v2/images/00000000-0000-0000-0000-000000000000/file")
    assert missing.status_code == 404


def test_ranged_download_is_206(api: Api) -> None:
    image_id = uploaded(api)
    last = len(DATA) - 1
    for range_header, start, end in (
        ("bytes=0-0", 0, 0),
        ("bytes=10-99", 10, 99),
        ("bytes=10000-", 10000, last),
        ("bytes=-4", last - 3, last),
        ("bytes=-999999", 0, last),  # a suffix longer than the data is all of it
        ("bytes=100-999999", 100, last),  # an end past the data is cut short
        ("bytes=5-5", 5, 5),
    ):
        response = api.get(f"/v2/images/{image_id}/file", headers={"Range": range_header})
        assert response.status_code == 206, (range_header, response.text)
        assert response.content == DATA[start : end + 1], range_header
        assert response.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
        assert response.headers["content-length"] == str(end - start + 1)
        # Glance sends the checksum of the whole image even on a partial answer.
        assert response.headers["content-md5"] == hashlib.md5(DATA).hexdigest()


def test_legacy_content_range_request_header_is_honoured(api: Api) -> None:
    image_id = uploaded(api)
    response = api.get(f"/v2/images/{image_id}/file", headers={"Content-Range": "bytes 3-9/*"})
    assert response.status_code == 206
    assert response.content == DATA[3:10]
    assert response.headers["content-range"] == f"bytes 3-9/{len(DATA)}"


def test_multiple_ranges_are_400(api: Api) -> None:
    image_id = uploaded(api)
    response = api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=0-1,5-6"})
    assert response.status_code == 400


def test_unparseable_range_is_416(api: Api) -> None:
    image_id = uploaded(api)
    for range_header in (
        "bytes=abc",
        "bytes=9-3",
        "items=0-1",
        "bytes=-0",
        "bytes",
        "bytes=-",
        "bytes=-1-2",
    ):
        response = api.get(f"/v2/images/{image_id}/file", headers={"Range": range_header})
        assert response.status_code == 416, range_header
        assert response.headers["content-range"] == f"bytes */{len(DATA)}"


def test_range_starting_at_or_past_the_end_is_416(api: Api) -> None:
    image_id = uploaded(api)
    for start in (len(DATA), len(DATA) + 1, 10**12):
        response = api.get(f"/v2/images/{image_id}/file", headers={"Range": f"bytes={start}-"})
        assert response.status_code == 416, start


def test_range_on_a_zero_byte_image_is_416(api: Api) -> None:
    image_id = uploaded(api, b"")
    response = api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=0-"})
    assert response.status_code == 416


def test_deactivated_image_downloads_for_admin_only(api: Api) -> None:
    alice = api.as_("projA")
    image_id = uploaded(alice)
    assert api.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    refused = alice.get(f"/v2/images/{image_id}/file")
    assert refused.status_code == 403
    assert "deactivated" in refused.text
    assert (
        alice.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=0-1"}).status_code == 403
    )
    admin = api.get(f"/v2/images/{image_id}/file")
    assert admin.status_code == 200 and admin.content == DATA
    assert api.post(f"/v2/images/{image_id}/actions/reactivate").status_code == 204
    assert alice.get(f"/v2/images/{image_id}/file").content == DATA


def test_download_with_a_body_is_400(api: Api) -> None:
    image_id = uploaded(api)
    response = api.request("GET", f"/v2/images/{image_id}/file", content=b"x")
    assert response.status_code == 400


def test_data_missing_from_the_store_reads_as_no_data(api: Api, tmp_path: Path) -> None:
    # Glance answers 204 when the store no longer has the data (glance_store.NotFound).
    image_id = uploaded(api)
    (store_dir(tmp_path) / image_id).unlink()
    assert api.get(f"/v2/images/{image_id}/file").status_code == 204
    ranged = api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=0-1"})
    assert ranged.status_code == 204


# Delete


def test_deleting_an_active_image_removes_its_file(api: Api, tmp_path: Path) -> None:
    keep = uploaded(api)
    doomed = uploaded(api)
    assert stored_names(tmp_path) == sorted([keep, doomed])
    assert api.delete(f"/v2/images/{doomed}").status_code == 204
    assert stored_names(tmp_path) == [keep]
    assert api.get(f"/v2/images/{doomed}/file").status_code == 404


# Crash recovery (the kill -9 test in tests/data_path/test_crash.py drives it for real)


def interrupted_write(rt: Runtime, image_id: str, pid: int, node: str, age: int = 0) -> Path:
    """Leave ``image_id`` as a write that stopped: saving, tracked, with a temporary."""
    beat = utcnow() - datetime.timedelta(seconds=age)
    with rt.db.transaction() as session:
        session.get_one(Image, image_id).status = "saving"
        session.add(
            ImageUpload(
                image_id=image_id,
                kind="upload",
                node=node,
                pid=pid,
                store_id="file",
                started_at=beat,
                heartbeat_at=beat,
            )
        )
    folder = Path(config.filesystem_datadir(rt.conf))
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{image_id}.{os.urandom(8).hex()}.tmp"
    temporary.write_bytes(b"partial")
    return temporary


def test_recovery_undoes_writes_of_dead_processes_only(
    api: Api, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime()
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead, mine, remote_fresh, remote_stale = (new_image(api) for _ in range(4))
    leftovers = {
        dead: interrupted_write(rt, dead, gone.pid, image_data.NODE),
        mine: interrupted_write(rt, mine, os.getpid(), image_data.NODE),
        remote_fresh: interrupted_write(rt, remote_fresh, 1, "another-node"),
        remote_stale: interrupted_write(
            rt, remote_stale, 1, "another-node", age=image_data.STALE_AFTER_SECONDS + 5
        ),
    }
    assert sorted(image_data.recover_interrupted_writes(rt)) == sorted([dead, remote_stale])
    for image_id, temporary in leftovers.items():
        undone = image_id in (dead, remote_stale)
        assert status_of(api, image_id) == ("queued" if undone else "saving")
        assert temporary.exists() is not undone

    # A restarted process may get the pid its previous incarnation had (containers):
    # at start-up a row with our own pid cannot be one of our writes.
    assert image_data.recover_interrupted_writes(rt, at_startup=True) == [mine]
    assert status_of(api, mine) == "queued" and not leftovers[mine].exists()
    assert status_of(api, remote_fresh) == "saving"


def test_recovery_removes_data_committed_just_before_the_crash(
    api: Api, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    # Killed between the store's commit and the database's: the file has its final
    # name but no location points at it. Kept, it would make every new upload 409.
    rt = make_runtime()
    image_id = new_image(api)
    interrupted_write(rt, image_id, os.getpid(), image_data.NODE).unlink()
    (store_dir(tmp_path) / image_id).write_bytes(b"committed, never recorded")
    keep = uploaded(api)
    assert image_data.recover_interrupted_writes(rt, at_startup=True) == [image_id]
    assert stored_names(tmp_path) == [keep]
    assert put(api, image_id, DATA).status_code == 204
    assert api.get(f"/v2/images/{image_id}/file").content == DATA
