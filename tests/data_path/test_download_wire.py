"""Downloads from a real server: the filesystem store's files go out by sendfile(2).

glimpse-api runs uvicorn with Glimpse's protocol, which offers the ASGI pathsend
extension: a whole-image download of the filesystem store is handed to the kernel
instead of being copied through Python. strace(1) shows the system calls a user of the
host would see; the bytes the client receives are checked too.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.data_path.conftest import Client, wait_for
from tests.support.server import Server

MiB = 1 << 20
#: A successful call in strace output: ``sendfile(18, 19, [0] => [65536], 8388625) = 65536``.
SENDFILE = re.compile(r"sendfile\(.*\) = (\d+)$", re.MULTILINE)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_whole_image_is_sent_by_sendfile(admin: Client, server: Server, tmp_path: Path) -> None:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace(1) is not installed")
    data = os.urandom(8 * MiB + 17)
    image_id = admin.upload(data)
    trace = tmp_path / "trace"
    tracer = subprocess.Popen(
        [
            strace,
            "-f",
            "-qq",
            "-e",
            "trace=sendfile",
            "-o",
            str(trace),
            "-p",
            str(server.process.pid),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)  # strace attaches to every thread of the process
        response = admin.http.get(f"/v2/images/{image_id}/file")
    finally:
        tracer.terminate()
        tracer.wait(10)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-md5"] == hashlib.md5(data).hexdigest()
    sent = sum(int(n) for n in SENDFILE.findall(trace.read_text()))
    assert sent == len(data), trace.read_text()[-2000:]


def test_ranges_and_keep_alive_around_sendfile_downloads(admin: Client) -> None:
    data = os.urandom(3 * MiB)
    image_id = admin.upload(data)
    for _ in range(2):  # one connection: each response must end exactly
        assert admin.http.get(f"/v2/images/{image_id}/file").content == data
        ranged = admin.http.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=1000-2999"})
        assert ranged.status_code == 206 and ranged.content == data[1000:3000]
        assert admin.http.get(f"/v2/images/{image_id}").json()["size"] == len(data)


def test_a_client_hanging_up_mid_download_leaves_nothing_open(
    admin: Client, server: Server
) -> None:
    data = os.urandom(64 * MiB)
    image_id = admin.upload(data)
    pid = server.process.pid
    assert admin.http.get(f"/v2/images/{image_id}/file").content == data
    baseline = open_fds(pid)
    url = urllib.parse.urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(f"GET /v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    wait_for(lambda: open_fds(pid) <= baseline, "the abandoned download to release its files")
    assert admin.http.get(f"/v2/images/{image_id}/file").content == data


def test_an_image_deleted_while_it_downloads_is_sent_whole(admin: Client, server: Server) -> None:
    data = os.urandom(32 * MiB)
    image_id = admin.upload(data)
    url = urllib.parse.urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET /v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200")
        assert admin.http.delete(f"/v2/images/{image_id}").status_code == 204
        _, _, body = received.partition(b"\r\n\r\n")
        while len(body) < len(data):
            piece = sock.recv(1 << 20)
            assert piece, f"the download stopped after {len(body)} bytes"
            body += piece
    assert body == data
