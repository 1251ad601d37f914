"""glimpse-api's uvicorn protocol on a real socket: pathsend by sendfile, large body pieces.

A real uvicorn server runs in a thread with small ASGI applications that show what
the protocol gives an application (the messages it receives, the extension it is
offered) and what a client receives on the wire.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from glimpse.http.uvicorn_protocol import BODY_PIECE, PATHSEND, UvicornProtocol
from tests.support.server import free_port

MiB = 1 << 20
App = Callable[..., Any]


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Serve an ASGI app with UvicornProtocol in a thread; return its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: App, **options: Any) -> str:
        port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            http=UvicornProtocol,
            lifespan="off",
            log_level="warning",
            **options,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def file_app(path: Path, *, content_length: bool = True) -> App:
    """Answers with ``path`` through pathsend when offered, recording what it was offered."""
    offered: list[bool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        offered.append(PATHSEND in scope.get("extensions", {}))
        headers = [(b"content-type", b"application/octet-stream")]
        if content_length:
            headers.append((b"content-length", str(path.stat().st_size).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": PATHSEND, "path": str(path)})

    app.offered = offered  # type: ignore[attr-defined]
    return app


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "image"
    path.write_bytes(os.urandom(3 * MiB + 123))
    return path


def test_pathsend_is_offered_and_sends_the_file(
    serve: Callable[..., str], image_file: Path
) -> None:
    app = file_app(image_file)
    url = serve(app)
    with httpx.Client(base_url=url, trust_env=False) as client:
        for _ in range(3):  # one keep-alive connection: each response ends cleanly
            response = client.get("/")
            assert response.status_code == 200
            assert response.headers["content-length"] == str(image_file.stat().st_size)
            assert response.content == image_file.read_bytes()
    assert app.offered == [True, True, True]  # type: ignore[attr-defined]


def test_pathsend_without_content_length_is_one_chunk(
    serve: Callable[..., str], image_file: Path
) -> None:
    url = serve(file_app(image_file, content_length=False))
    with httpx.Client(base_url=url, trust_env=False) as client:
        first = client.get("/")
        second = client.get("/")
    for response in (first, second):
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.content == image_file.read_bytes()


def test_pathsend_to_a_head_request_sends_headers_only(
    serve: Callable[..., str], image_file: Path
) -> None:
    url = serve(file_app(image_file))
    with httpx.Client(base_url=url, trust_env=False) as client:
        head = client.head("/")
        after = client.get("/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(image_file.stat().st_size)
    assert after.content == image_file.read_bytes()


def test_a_client_hanging_up_mid_file_leaves_the_server_serving(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    big = tmp_path / "big"
    big.write_bytes(os.urandom(64 * MiB))
    url = serve(file_app(big))
    port = int(url.rsplit(":", 1)[1])
    fds_before = len(os.listdir("/proc/self/fd"))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    # The sender notices the hang-up and lets go of its descriptors.
    deadline = time.monotonic() + 10
    while len(os.listdir("/proc/self/fd")) > fds_before:
        assert time.monotonic() < deadline, "descriptors of the abandoned send were kept"
        time.sleep(0.05)
    with httpx.Client(base_url=url, trust_env=False) as client:
        assert client.get("/").content == big.read_bytes()


def body_app(record: list[tuple[int, bool]]) -> App:
    """Records each body message's size and more_body; answers with the body's MD5."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        md5 = hashlib.md5()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                record.append((-1, False))
                return
            md5.update(message["body"])
            record.append((len(message["body"]), message["more_body"]))
            if not message["more_body"]:
                break
        body = md5.hexdigest().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def test_request_bodies_arrive_whole_in_pieces_of_about_a_mib(
    serve: Callable[..., str],
) -> None:
    record: list[tuple[int, bool]] = []
    url = serve(body_app(record))
    data = os.urandom(20 * MiB + 7)

    def chunks() -> Iterator[bytes]:  # small chunked pieces on the wire
        for start in range(0, len(data), 100_000):
            yield data[start : start + 100_000]

    with httpx.Client(base_url=url, trust_env=False) as client:
        answer = client.post("/", content=chunks())
        assert answer.text == hashlib.md5(data).hexdigest()
        small = client.post("/", content=b'{"a": 1}')
        assert small.text == hashlib.md5(b'{"a": 1}').hexdigest()
    sizes = [size for size, _ in record]
    assert sum(sizes[:-1]) == len(data)
    # Every message but the last of the big body holds at least a piece.
    assert all(size >= BODY_PIECE for size in sizes[:-2])
    assert len(sizes) - 1 <= len(data) // BODY_PIECE + 1
    assert record[-1] == (len(b'{"a": 1}'), False)


def test_expect_100_continue_gets_its_interim_answer(serve: Callable[..., str]) -> None:
    record: list[tuple[int, bool]] = []
    url = serve(body_app(record))
    port = int(url.rsplit(":", 1)[1])
    data = os.urandom(3 * MiB)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data)
        )
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(data)
        answer = b""
        while not answer.endswith(hashlib.md5(data).hexdigest().encode()):
            piece = sock.recv(65536)
            assert piece, answer
            answer += piece
    assert answer.startswith(b"HTTP/1.1 200")


def test_a_client_hanging_up_mid_body_is_a_disconnect(serve: Callable[..., str]) -> None:
    record: list[tuple[int, bool]] = []
    url = serve(body_app(record))
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        sock.sendall(b"x" * 300_000)  # less than a piece: the application is still waiting
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while not record or record[-1] != (-1, False):
        assert time.monotonic() < deadline, record
        time.sleep(0.02)


def test_tls_connections_are_not_offered_pathsend(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    # The kernel cannot encrypt what sendfile sends: only plain TCP gets the extension.
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True)
    offered: list[bool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        offered.append(PATHSEND in scope.get("extensions", {}))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    url = serve(app, ssl_keyfile=str(key), ssl_certfile=str(cert))
    with httpx.Client(base_url=url.replace("http:", "https:"), verify=False) as client:
        assert client.get("/").status_code == 204
    assert offered == [False]
