"""How the Swift and S3 writers send an image, on the real swift-saio store.

Both stream every request's body as the image is written: one plain object up to
``large_object_size``, pieces beyond it, decided up front when ``begin_write`` is
told the size and on the way when it is not. These tests look at the result from
the outside (Swift's manifests, S3's parts) and at what a failing or aborted write
leaves behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import swiftclient

from glimpse.store import StoreDriver, StoreError, StoreUnavailable, StoreWriter
from glimpse.store.s3 import S3Store
from glimpse.store.swift import SwiftStore
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
from tests.support import nginx

MiB = 1 << 20
#: Writes of an odd size, so that pieces end in the middle of them.
WRITE = 777_777


@dataclasses.dataclass
class ObjectStore:
    """A Swift or S3 store on a fresh container or bucket, and views of it from outside."""

    kind: str
    #: The store's piece size; its large_object_size is two pieces.
    piece: int
    driver: StoreDriver
    #: Every object and unfinished upload in the container or bucket.
    leftovers: Callable[[], list[str]]
    #: The sizes of an object's pieces; [] for a plain object.
    pieces_of: Callable[[str], list[int]]
    #: Whether the image's object can be read from outside (HEAD).
    visible: Callable[[str], bool]
    #: Remove the container or bucket and everything in it, as an operator might.
    remove_place: Callable[[], None]


def _swift(through: Callable[[str], str]) -> Iterator[ObjectStore]:
    settings = saio_settings("SWIFT_AUTH_URL")
    outside, container = swift_connection(settings), unique_name()
    outside.put_container(container)
    driver = SwiftStore(
        through(settings["SWIFT_AUTH_URL"]),
        settings["SWIFT_USER"],
        settings["SWIFT_KEY"],
        container,
        auth_version="1",
        large_object_size=2 * MiB,
        large_object_chunk_size=MiB,
        retries=0,
    )

    def pieces_of(name: str) -> list[int]:
        headers = outside.head_object(container, name)
        if headers.get("x-static-large-object") != "True":
            return []
        _, body = outside.get_object(container, name, query_string="multipart-manifest=get")
        return [segment["bytes"] for segment in json.loads(body)]

    def visible(name: str) -> bool:
        try:
            outside.head_object(container, name)
        except swiftclient.ClientException as exc:
            assert exc.http_status == 404
            return False
        return True

    yield ObjectStore(
        "swift",
        MiB,
        driver,
        lambda: swift_objects(outside, container),
        pieces_of,
        visible,
        lambda: remove_swift_container(outside, container),
    )
    remove_swift_container(outside, container)


def _s3(through: Callable[[str], str], cacert: str | None = None) -> Iterator[ObjectStore]:
    settings = saio_settings("S3_ENDPOINT")
    outside, bucket = s3_client(settings), unique_name()
    outside.create_bucket(Bucket=bucket)
    piece = 5 * MiB  # the S3 minimum
    driver = S3Store(
        through(settings["S3_ENDPOINT"]),
        settings["S3_ACCESS_KEY"],
        settings["S3_SECRET_KEY"],
        bucket,
        region_name=settings.get("S3_REGION", ""),
        large_object_size=2 * piece,
        large_object_chunk_size=piece,
        max_attempts=1,
        cacert=cacert,
    )

    def pieces_of(name: str) -> list[int]:
        first = outside.head_object(Bucket=bucket, Key=name, PartNumber=1)
        count = first.get("PartsCount")
        if not count:
            return []
        return [
            outside.head_object(Bucket=bucket, Key=name, PartNumber=n)["ContentLength"]
            for n in range(1, count + 1)
        ]

    def visible(name: str) -> bool:
        try:
            outside.head_object(Bucket=bucket, Key=name)
        except outside.exceptions.ClientError as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404
            return False
        return True

    yield ObjectStore(
        "s3",
        piece,
        driver,
        lambda: s3_contents(outside, bucket),
        pieces_of,
        visible,
        lambda: remove_s3_bucket(outside, bucket),
    )
    remove_s3_bucket(outside, bucket)


def _direct(url: str) -> str:
    return url


@pytest.fixture(params=["swift", "s3"])
def store(request: pytest.FixtureRequest) -> Iterator[ObjectStore]:
    yield from (_swift if request.param == "swift" else _s3)(_direct)


class CorruptingProxy(socketserver.ThreadingTCPServer):
    """A TCP proxy to swift-saio that flips one byte of each streamed request body.

    The wire, or a middlebox, going wrong: the store then holds other bytes than
    the writer sent, which only the ETag check can notice. Only requests sent
    with ``Expect: 100-continue`` (the writers' streamed PUTs) are touched.
    """

    daemon_threads = True
    allow_reuse_address = True
    #: The body byte flipped.
    OFFSET = 1000

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        super().__init__(("127.0.0.1", 0), _CorruptingHandler)
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def through(self, url: str) -> str:
        parts = urlsplit(url)
        return url.replace(parts.netloc, f"127.0.0.1:{self.server_address[1]}", 1)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _CorruptingHandler(socketserver.BaseRequestHandler):
    server: CorruptingProxy

    def handle(self) -> None:
        upstream = socket.create_connection(self.server.target)
        back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
        back.start()
        head, body_seen, corrupt = b"", -1, False
        try:
            while data := self.request.recv(1 << 16):
                if body_seen < 0:
                    head += data
                    if b"\r\n\r\n" not in head:
                        continue
                    headers, _, data = head.partition(b"\r\n\r\n")
                    corrupt = b"expect: 100-continue" in headers.lower()
                    upstream.sendall(headers + b"\r\n\r\n")
                    body_seen = 0
                offset = CorruptingProxy.OFFSET - body_seen
                if corrupt and 0 <= offset < len(data):
                    data = data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1 :]
                body_seen += len(data)
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)
            back.join(timeout=30)
            upstream.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(1 << 16):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@pytest.fixture(params=["swift", "s3"])
def corrupted_store(request: pytest.FixtureRequest) -> Iterator[ObjectStore]:
    variable = "SWIFT_AUTH_URL" if request.param == "swift" else "S3_ENDPOINT"
    target = urlsplit(saio_settings(variable)[variable])
    proxy = CorruptingProxy((target.hostname or "127.0.0.1", target.port or 80))
    try:
        yield from (_swift if request.param == "swift" else _s3)(proxy.through)
    finally:
        proxy.stop()


def write_in_odd_sizes(writer: StoreWriter, data: bytes) -> None:
    for start in range(0, len(data), WRITE):
        writer.write(data[start : start + WRITE])


def read_all(driver: StoreDriver, uri: str) -> bytes:
    return b"".join(driver.read(uri))


# Sizes in pieces (P) and bytes; large_object_size is 2P. Without a size, Swift holds
# back at most one piece here (its 4 MiB hold, capped by the piece size) and S3 one
# part before choosing pieces.
LAYOUTS = [
    # (size given, size in P, extra bytes, pieces in P and bytes; [] for a plain object)
    pytest.param(True, 0, 0, [], id="sized-empty"),
    pytest.param(True, 0, 1000, [], id="sized-small"),
    pytest.param(True, 2, 0, [], id="sized-exactly-large-object-size"),
    pytest.param(True, 2, 1, [(1, 0), (1, 0), (0, 1)], id="sized-piece-plus-one-byte"),
    pytest.param(True, 3, 0, [(1, 0), (1, 0), (1, 0)], id="sized-on-a-piece-boundary"),
    pytest.param(False, 0, 0, [], id="unsized-empty"),
    pytest.param(False, 1, 0, [], id="unsized-exactly-one-piece"),
    pytest.param(False, 1, 1, [(1, 0), (0, 1)], id="unsized-piece-plus-one-byte"),
    pytest.param(False, 3, 0, [(1, 0), (1, 0), (1, 0)], id="unsized-on-a-piece-boundary"),
]


@pytest.mark.parametrize(("sized", "pieces", "extra", "layout"), LAYOUTS)
def test_the_size_decides_plain_object_or_pieces(
    store: ObjectStore, sized: bool, pieces: int, extra: int, layout: list[tuple[int, int]]
) -> None:
    data = os.urandom(pieces * store.piece + extra)
    writer = store.driver.begin_write("image", len(data) if sized else None)

    write_in_odd_sizes(writer, data)
    stored = writer.commit()

    assert stored.size == len(data)
    assert read_all(store.driver, stored.uri) == data
    assert store.pieces_of("image") == [p * store.piece + b for p, b in layout]
    # Nothing else: no empty last piece, no segment or upload of the write left over.
    assert [name for name in store.leftovers() if not name.startswith("image/")] == ["image"]
    store.driver.delete(stored.uri)
    assert store.leftovers() == []


@pytest.mark.parametrize("sized", [True, False], ids=["sized", "unsized"])
def test_a_plain_object_appears_only_at_commit(store: ObjectStore, sized: bool) -> None:
    data = os.urandom(store.piece)
    writer = store.driver.begin_write("image", len(data) if sized else None)
    write_in_odd_sizes(writer, data)

    # Every byte was handed over, yet the image has no object until commit.
    assert not store.visible("image")

    stored = writer.commit()
    assert store.visible("image")
    assert read_all(store.driver, stored.uri) == data


def test_the_size_given_is_a_promise(store: ObjectStore) -> None:
    driver = store.driver
    writer = driver.begin_write("image", 3 * store.piece)
    write_in_odd_sizes(writer, os.urandom(2 * store.piece))

    with pytest.raises(ValueError, match="announced"):
        writer.write(os.urandom(store.piece + 1))
    with pytest.raises(ValueError, match="announced"):
        writer.commit()

    # Short by a piece: the pieces sent are gone, and nothing was stored.
    assert store.leftovers() == []
    assert not store.visible("image")


@pytest.mark.parametrize(
    ("sized", "written"),
    [
        # A piece streaming (and with S3, the one before it finishing in the background).
        pytest.param(True, 1.5, id="sized-mid-piece"),
        # S3: the first part being sent from its buffer in the background.
        pytest.param(False, 1.2, id="unsized-mid-piece"),
    ],
)
def test_abort_with_a_piece_in_flight_leaves_nothing(
    store: ObjectStore, sized: bool, written: float
) -> None:
    driver = store.driver
    writer = driver.begin_write("image", 4 * store.piece if sized else None)
    write_in_odd_sizes(writer, os.urandom(int(written * store.piece)))
    assert store.leftovers(), "the write has reached the store"

    writer.abort()

    assert store.leftovers() == []
    # The image can be written again at once.
    again = driver.begin_write("image", 10)
    again.write(b"0123456789")
    assert read_all(driver, again.commit().uri) == b"0123456789"


@pytest.mark.parametrize("sized", [True, False], ids=["sized", "unsized"])
def test_the_store_losing_its_place_mid_upload_fails_the_next_write(
    store: ObjectStore, sized: bool
) -> None:
    """An operator removes the container or bucket between two pieces of an upload.

    (Not in the middle of a piece: Swift would store that piece all the same, and
    its container update would bring the container back.)
    """
    data = os.urandom(4 * store.piece)
    writer = store.driver.begin_write("image", len(data) if sized else None)
    half = 2 * store.piece
    write_in_odd_sizes(writer, data[:half])

    store.remove_place()

    # The next piece's request is refused before its body: the error comes from a
    # write, not at the end of the upload. (S3: the upload went with the bucket.)
    with pytest.raises(StoreUnavailable, match=r"does not exist|aborted meanwhile"):
        write_in_odd_sizes(writer, data[half:])
    writer.abort()
    with pytest.raises(ValueError):
        writer.commit()
    assert not store.visible("image")


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_an_s3_upload_aborted_by_someone_else_fails_the_next_write(store: ObjectStore) -> None:
    """Another node's purge_uploads (or a lifecycle rule) aborts a multipart upload."""
    outside = s3_client(saio_settings("S3_ENDPOINT"))
    bucket = store.driver.bucket  # type: ignore[attr-defined]
    data = os.urandom(4 * store.piece)
    writer = store.driver.begin_write("image", len(data))
    write_in_odd_sizes(writer, data[: store.piece + 1])
    (upload,) = outside.list_multipart_uploads(Bucket=bucket)["Uploads"]

    outside.abort_multipart_upload(Bucket=bucket, Key="image", UploadId=upload["UploadId"])

    with pytest.raises(StoreUnavailable, match="aborted meanwhile"):
        write_in_odd_sizes(writer, data[store.piece + 1 :])
    writer.abort()
    assert store.leftovers() == []


@pytest.mark.parametrize("sized", [True, False], ids=["sized", "unsized"])
def test_a_piece_the_store_got_wrong_fails_the_write(
    corrupted_store: ObjectStore, sized: bool
) -> None:
    store = corrupted_store
    data = os.urandom(3 * store.piece)
    writer = store.driver.begin_write("image", len(data) if sized else None)

    with pytest.raises(StoreError, match="MD5"):
        write_in_odd_sizes(writer, data)
        writer.commit()
    writer.abort()

    assert store.leftovers() == []


def test_a_plain_object_that_differs_from_the_callers_md5_is_not_kept(
    corrupted_store: ObjectStore,
) -> None:
    store = corrupted_store
    data = os.urandom(store.piece)
    writer = store.driver.begin_write("image", len(data))
    write_in_odd_sizes(writer, data)

    with pytest.raises(StoreError, match="MD5"):
        writer.commit_with_md5(hashlib.md5(data).hexdigest())

    assert store.leftovers() == []
    assert not store.visible("image")


def test_a_plain_object_matching_the_callers_md5_is_kept(store: ObjectStore) -> None:
    data = os.urandom(store.piece)
    writer = store.driver.begin_write("image", len(data))
    write_in_odd_sizes(writer, data)

    stored = writer.commit_with_md5(hashlib.md5(data).hexdigest())

    assert read_all(store.driver, stored.uri) == data


# --- over TLS -------------------------------------------------------------------------

_PASS_TO = """
        location / {{
            proxy_pass http://{target};
            proxy_set_header Host $http_host;
        }}
"""


@pytest.fixture
def s3_over_tls(tmp_path: Path) -> Iterator[ObjectStore]:
    """The S3 store reached over HTTPS: a real nginx terminating TLS in front of swift-saio."""

    endpoint = urlsplit(saio_settings("S3_ENDPOINT")["S3_ENDPOINT"])
    certificate = nginx.self_signed(tmp_path)
    with nginx.tls_proxy(tmp_path, _PASS_TO.format(target=endpoint.netloc)) as port:

        def through(url: str) -> str:
            return f"https://127.0.0.1:{port}"

        yield from _s3(through, str(certificate))


@pytest.mark.parametrize("sized", [True, False], ids=["sized", "unsized"])
def test_streamed_requests_over_tls(s3_over_tls: ObjectStore, sized: bool) -> None:
    store = s3_over_tls
    data = os.urandom(2 * store.piece + 12345)
    writer = store.driver.begin_write("image", len(data) if sized else None)
    write_in_odd_sizes(writer, data)

    stored = writer.commit()

    assert stored.uri.startswith("s3+https://")
    assert read_all(store.driver, stored.uri) == data
    assert store.pieces_of("image") == [store.piece, store.piece, 12345]
    # Cancelling a request on a TLS connection stores nothing either.
    other = store.driver.begin_write("other", 4 * store.piece if sized else None)
    write_in_odd_sizes(other, os.urandom(store.piece + store.piece // 2))
    other.abort()
    assert store.leftovers() == ["image"]
