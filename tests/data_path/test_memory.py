"""A large image goes through the server in bounded memory, both ways.

The body is generated on the fly and checked as it comes back, so the test holds
a few MiB at a time too. The server's peak resident memory (VmHWM) may grow by
less than :data:`RSS_BUDGET` over what it reached before.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import urllib.parse

from tests.data_path.conftest import Client, StartServer, store_dir

MiB = 1 << 20
#: Four times the memory budget: buffering the body anywhere would show.
SIZE = 256 * MiB
RSS_BUDGET = 64 * MiB
_FILLER = bytes(range(256)) * (MiB // 256)


def block(index: int) -> bytes:
    """The ``index``-th MiB of the image: numbered, so a lost or repeated MiB shows."""
    return index.to_bytes(8, "big") + _FILLER[8:]


def peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def test_256_mib_round_trip_in_bounded_memory(start_server: StartServer) -> None:
    server = start_server()
    client = Client(server)
    url = urllib.parse.urlsplit(server.url)
    # Warm up: a small round trip loads every module and thread the big one uses.
    warm = client.create_image()
    client.http.put(
        f"/v2/images/{warm}/file",
        content=b"w" * MiB,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert client.http.get(f"/v2/images/{warm}/file").content == b"w" * MiB
    before = peak_rss(server.process.pid)

    image_id = client.create_image()
    md5 = hashlib.md5()
    with socket.create_connection((url.hostname, url.port), timeout=120) as sock:
        sock.sendall(
            f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {SIZE}\r\n\r\n".encode()
        )
        for index in range(SIZE // MiB):
            data = block(index)
            md5.update(data)
            sock.sendall(data)
        response = http.client.HTTPResponse(sock, method="PUT")
        response.begin()
        assert response.status == 204, response.read()
    image = client.image(image_id)
    assert image["status"] == "active" and image["size"] == SIZE
    assert image["checksum"] == md5.hexdigest()
    assert (store_dir(server) / image_id).stat().st_size == SIZE

    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    connection.request("GET", f"/v2/images/{image_id}/file")
    response = connection.getresponse()
    assert response.status == 200
    assert int(response.headers["Content-Length"]) == SIZE
    assert response.headers["Content-MD5"] == md5.hexdigest()
    buffer = bytearray(MiB)
    view = memoryview(buffer)
    for index in range(SIZE // MiB):
        got = 0
        while got < MiB:
            count = response.readinto(view[got:])
            assert count, f"the download ended after {index * MiB + got} bytes"
            got += count
        assert buffer == block(index), f"MiB {index} differs"
    assert response.read(1) == b""
    connection.close()

    growth = peak_rss(server.process.pid) - before
    assert growth < RSS_BUDGET, f"peak RSS grew by {growth / MiB:.1f} MiB"
