"""A server killed mid-upload: after the restart the image is queued and nothing the write
left is kept, in a folder (temporaries), in Swift (segments) or in S3 (a multipart upload)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.data_path.conftest import Client, StartServer, store_dir, stored, wait_for
from tests.data_path.wire import Upload
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

MiB = 1 << 20


def test_kill_9_mid_upload_is_undone_at_restart(start_server: StartServer) -> None:
    first = start_server()
    workdir = first.log_path.parent
    client = Client(first)
    image_id = client.create_image()
    upload = Upload(first.url, image_id, content_length=8 * MiB)
    upload.send(b"k" * 3 * MiB)
    wait_for(lambda: client.status(image_id) == "saving", "status saving")
    temporary = re.compile(rf"^\.{image_id}\.[0-9a-f]{{16}}\.tmp$")
    wait_for(lambda: any(temporary.match(name) for name in stored(first)), "a temporary")

    first.process.kill()
    first.process.wait()  # reaped: its pid is really gone, as under an init system
    upload.close()
    client.close()
    # The crash left the image saving and its temporary behind...
    assert any(temporary.match(name) for name in stored(first))

    # ...until a server starts on the same data and database.
    second = start_server(workdir=workdir)
    assert store_dir(second) == store_dir(first)
    client = Client(second)
    image = client.image(image_id)
    assert image["status"] == "queued"
    assert image["size"] is None and image["checksum"] is None
    assert stored(second) == []
    assert "an interrupted data write was undone" in second.log()
    assert client.http.get(f"/v2/images/{image_id}/file").status_code == 204

    # And the image takes its data normally afterwards.
    retry = Upload(second.url, image_id, content_length=MiB)
    retry.send(b"r" * MiB)
    assert retry.finish().status == 204
    assert client.image(image_id)["status"] == "active"
    assert stored(second) == [image_id]


# --- object stores: what a killed writer leaves in Swift and S3 ---------------------------


@pytest.fixture
def places() -> Iterator[dict[str, str]]:
    """The test Swift/S3 settings, with a container and a bucket of the test's own."""
    settings = saio_settings("SWIFT_AUTH_URL")
    if not settings.get("S3_ENDPOINT"):
        pytest.skip("S3_ENDPOINT is not set")
    swift, s3 = swift_connection(settings), s3_client(settings)
    container, bucket = unique_name(), unique_name()
    swift.put_container(container)
    s3.create_bucket(Bucket=bucket)
    yield {**settings, "container": container, "bucket": bucket}
    remove_swift_container(swift, container)
    remove_s3_bucket(s3, bucket)


def object_stores(places: dict[str, str]) -> dict[str, dict[str, object]]:
    """A file store (the default), a Swift store with 1 MiB segments, an S3 store with 5 MiB
    parts: small enough that a few MiB of an upload are in the store as it runs."""
    return {
        "DEFAULT": {"enabled_backends": "local:file, objects:swift, buckets:s3"},
        "glance_store": {"default_backend": "local"},
        "objects": {
            "swift_store_auth_address": places["SWIFT_AUTH_URL"],
            "swift_store_user": places["SWIFT_USER"],
            "swift_store_key": places["SWIFT_KEY"],
            "swift_store_auth_version": 1,
            "swift_store_container": places["container"],
            "swift_store_large_object_size": 1,
            "swift_store_large_object_chunk_size": 1,
        },
        "buckets": {
            "s3_store_host": places["S3_ENDPOINT"],
            "s3_store_access_key": places["S3_ACCESS_KEY"],
            "s3_store_secret_key": places["S3_SECRET_KEY"],
            "s3_store_bucket": places["bucket"],
            "s3_store_large_object_size": 5,
            "s3_store_large_object_chunk_size": 5,
        },
    }


def in_store(places: dict[str, str], store: str, image_id: str) -> list[str]:
    """Everything of ``image_id`` in the Swift container or the S3 bucket (uploads too)."""
    if store == "objects":
        names = swift_objects(swift_connection(places), places["container"])
    else:
        names = s3_contents(s3_client(places), places["bucket"])
    return [name for name in names if image_id in name]


def send_until(upload: Upload, condition: Callable[[], Any], what: str, limit: int) -> None:
    """Send the body a MiB at a time until ``condition`` holds (the server writes in blocks)."""
    while upload.sent < limit:
        upload.send(os.urandom(MiB))
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
    raise AssertionError(f"{what} never appeared")


@pytest.mark.parametrize(("store", "what"), [("objects", "SLO segments"), ("buckets", "an upload")])
def test_kill_9_mid_upload_to_an_object_store_is_undone_at_restart(
    start_server: StartServer, places: dict[str, str], store: str, what: str
) -> None:
    options = object_stores(places)
    first = start_server(options)
    client = Client(first)
    image_id = client.create_image()
    to_store = {"X-Image-Meta-Store": store}
    upload = Upload(first.url, image_id, to_store, content_length=32 * MiB)
    send_until(upload, lambda: in_store(places, store, image_id), what, limit=31 * MiB)

    first.process.kill()
    first.process.wait()
    upload.close()
    client.close()
    # The crash left the image saving and its pieces in the store...
    left = in_store(places, store, image_id)
    assert left and image_id not in left  # pieces, not a committed object

    # ...until a server starts on the same database and stores.
    second = start_server(options, workdir=first.log_path.parent)
    client = Client(second)
    image = client.image(image_id)
    assert image["status"] == "queued" and image["size"] is None
    assert in_store(places, store, image_id) == []
    assert "an interrupted data write was undone" in second.log()

    # And the image takes its data in that store afterwards.
    data = os.urandom(MiB // 2)
    retry = Upload(second.url, image_id, to_store, content_length=len(data))
    retry.send(data)
    assert retry.finish().status == 204
    assert client.image(image_id)["stores"] == store
    assert client.http.get(f"/v2/images/{image_id}/file").content == data
    assert in_store(places, store, image_id) == [image_id]
