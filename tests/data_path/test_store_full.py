"""A store that runs out of room, through a real glimpse-api: a file store on a small
filesystem of its own (a tmpfs mounted for the test).

The upload that does not fit gets 413 in Glance's error format; the image is queued
again; no temporary is left and the filesystem has as much room as before; the other
store, and the data already in the full one, are unaffected.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.data_path.conftest import Client, StartServer
from tests.data_path.wire import Upload

MiB = 1 << 20
SMALL_DISK = 8 * MiB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 8 MiB, mounted for the test and unmounted after it."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK},mode=0700", "tmpfs", mount_point],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        why = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        pytest.skip(f"cannot mount a small tmpfs (needs root or CAP_SYS_ADMIN): {why}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", mount_point], check=True, capture_output=True, timeout=30)


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def put(client: Client, image_id: str, store: str, data: bytes) -> int:
    response = client.http.put(
        f"/v2/images/{image_id}/file",
        content=data,
        headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store},
    )
    return response.status_code


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_full_file_store_answers_413_and_keeps_nothing(
    start_server: StartServer, small_disk: Path, chunked: bool
) -> None:
    folder = small_disk / "images"
    server = start_server(
        {
            "DEFAULT": {"enabled_backends": "small:file, roomy:file"},
            "glance_store": {"default_backend": "roomy"},
            "small": {"filesystem_store_datadir": folder},
        }
    )
    client = Client(server)
    resident = client.create_image()
    resident_data = os.urandom(MiB)
    assert put(client, resident, "small", resident_data) == 204
    room = free_bytes(small_disk)
    image_id = client.create_image()

    too_big = 2 * SMALL_DISK
    headers = {"X-Image-Meta-Store": "small", "Accept": "application/json"}
    upload = Upload(server.url, image_id, headers, content_length=None if chunked else too_big)
    answer = upload.send_until_answered(os.urandom(MiB) for _ in range(too_big // MiB))
    if answer is None:
        answer = upload.finish()
    upload.close()

    assert answer.status == 413, answer
    assert answer.headers["content-type"] == "application/json"
    body = json.loads(answer.body)
    assert set(body) == {"code", "title", "message"}
    assert body["code"] == "413 Request Entity Too Large"
    assert body["message"].startswith("Image storage media is full: ")
    image = client.image(image_id)
    assert image["status"] == "queued" and image["size"] is None
    assert sorted(os.listdir(folder)) == [resident]  # no temporary left
    assert free_bytes(small_disk) == room
    # The data already there and the other store are unaffected.
    assert client.http.get(f"/v2/images/{resident}/file").content == resident_data
    data = os.urandom(3 * MiB)
    assert put(client, image_id, "roomy", data) == 204
    assert client.image(image_id)["stores"] == "roomy"
    assert client.http.get(f"/v2/images/{image_id}/file").content == data
