"""``filesystem_store_direct_io``: whether an upload goes through the page cache.

With direct I/O (the default) the filesystem store hands the pipeline's aligned
blocks to the disk with O_DIRECT: a large upload does not evict what downloads are
reading from the page cache. fincore(1) shows what a user of the host would see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.data_path.conftest import Client, StartServer, store_dir

MiB = 1 << 20


def page_cached_bytes(path: Path) -> int:
    fincore = shutil.which("fincore")
    if fincore is None:
        pytest.skip("fincore(1) (util-linux) is not installed")
    out = subprocess.run(
        [fincore, "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip())


@pytest.mark.parametrize("direct_io", [True, False])
def test_direct_io_decides_whether_an_upload_fills_the_page_cache(
    start_server: StartServer, tmp_path: Path, direct_io: bool
) -> None:
    probe = tmp_path / "probe"
    probe.touch()
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_DIRECT))
    except OSError:
        pytest.skip(f"{tmp_path} is on a filesystem without O_DIRECT")
    server = start_server({"glance_store": {"filesystem_store_direct_io": direct_io}})
    client = Client(server)
    data = os.urandom(16 * MiB + 100)
    image_id = client.create_image()
    response = client.http.put(
        f"/v2/images/{image_id}/file",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 204, response.text
    cached = page_cached_bytes(store_dir(server) / image_id)
    if direct_io:
        assert cached <= 4096  # the 100-byte tail, written after the aligned blocks
    else:
        assert cached >= len(data)  # whole pages
    assert client.http.get(f"/v2/images/{image_id}/file").content == data
    client.close()
