"""A server killed mid-upload: after the restart the image is queued and no temporary is left."""

from __future__ import annotations

import re

from tests.data_path.conftest import Client, StartServer, store_dir, stored, wait_for
from tests.data_path.wire import Upload

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
