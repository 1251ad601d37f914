"""``filesystem_store_direct_io``: whether an upload goes through the page cache.

With direct I/O (the default) the filesystem store hands the pipeline's aligned
blocks to the disk with O_DIRECT: a large upload does not evict what downloads are
reading from the page cache. fincore(1) shows what a user of the host would see.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.data_path.conftest import Client, StartServer, store_dir
from tests.support.page_cache import require_direct_io, resident_bytes

MiB = 1 << 20


@pytest.mark.parametrize("direct_io", [True, False])
def test_direct_io_decides_whether_an_upload_fills_the_page_cache(
    start_server: StartServer, tmp_path: Path, direct_io: bool
) -> None:
    require_direct_io(tmp_path)
    server = start_server({"glance_store": {"filesystem_store_direct_io": direct_io}})
    client = Client(server)
    data = os.urandom(16 * MiB + 100)
    image_id = client.upload(data)
    cached = resident_bytes(store_dir(server) / image_id)
    if direct_io:
        assert cached <= 4096  # the 100-byte tail, written after the aligned blocks
    else:
        assert cached >= len(data)  # whole pages
    assert client.http.get(f"/v2/images/{image_id}/file").content == data
    client.close()
