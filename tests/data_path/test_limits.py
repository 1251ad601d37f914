"""Size cap and storage quota on a real server: the 413 comes while the client still sends.

A chunked upload announces no size, so the limit can only be found by counting.
The server must answer as soon as the count crosses it, not after swallowing the
whole body: the tests count how much the client got to send before the answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.data_path.conftest import Client, store_dir, stored, wait_for
from tests.data_path.wire import Upload
from tests.support import databases
from tests.support.server import Server, running

MiB = 1 << 20
#: What a client offers to send in the early-413 tests; far more than any socket buffers.
OFFERED = 256 * MiB
#: What it may get through before the answer: the kernel's socket buffers and the
#: server's own read-ahead, a few MiB on loopback.
EARLY = 24 * MiB


@pytest.fixture(scope="module")
def capped(sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a 2 MiB size cap and a 3 MiB storage quota per owner."""
    options = {"DEFAULT": {"image_size_cap": 2 * MiB, "user_storage_quota": "3MB"}}
    with running(sqlite_url, tmp_path_factory.mktemp("capped"), options) as server:
        yield server


@pytest.fixture
def server(capped: Server, sqlite_url: str) -> Server:
    databases.empty_tables(sqlite_url)
    for name in stored(capped):
        (store_dir(capped) / name).unlink()
    return capped


def chunks(size: int = 64 << 10) -> Iterator[bytes]:
    block = b"z" * size
    return itertools.repeat(block, OFFERED // size)


def assert_refused_early(
    server: Server, client: Client, image_id: str, limit: int, shown: int
) -> None:
    """A chunked upload of ``image_id`` gets 413 (naming ``shown`` bytes) soon after ``limit``."""
    upload = Upload(server.url, image_id, headers=client.headers)
    answer = upload.send_until_answered(chunks())
    upload.close()
    assert answer is not None, "the whole body went through without an answer"
    assert answer.status == 413, answer
    assert str(shown).encode() in answer.body
    assert limit < upload.sent < EARLY, upload.sent
    wait_for(lambda: client.status(image_id) == "queued", "the image to be queued again")
    assert [name for name in stored(server) if image_id in name] == []


def test_size_cap_stops_a_chunked_upload_early(server: Server) -> None:
    alice = Client(server, "projA")
    image_id = alice.create_image()
    assert_refused_early(server, alice, image_id, 2 * MiB, 2 * MiB)
    # A body within the cap is taken afterwards.
    upload = Upload(server.url, image_id, headers=alice.headers)
    upload.send(b"a" * 2 * MiB)
    assert upload.finish().status == 204
    assert alice.image(image_id)["size"] == 2 * MiB


def test_content_length_over_the_cap_is_refused_before_the_body(server: Server) -> None:
    alice = Client(server, "projA")
    image_id = alice.create_image()
    upload = Upload(server.url, image_id, headers=alice.headers, content_length=OFFERED)
    answer = upload.send_until_answered(chunks())
    upload.close()
    assert answer is not None and answer.status == 413
    assert upload.sent < EARLY
    assert alice.status(image_id) == "queued"


def test_storage_quota_stops_a_chunked_upload_early(server: Server) -> None:
    alice, bob = Client(server, "projA"), Client(server, "projB")
    first = alice.create_image()
    upload = Upload(server.url, first, headers=alice.headers)
    upload.send(b"a" * 2 * MiB)
    assert upload.finish().status == 204
    # One MiB of the 3 MiB quota is left: less than the cap, so the quota speaks.
    second = alice.create_image()
    assert_refused_early(server, alice, second, MiB, 3 * MiB)
    # Bob's quota is his own.
    other = bob.create_image()
    upload = Upload(server.url, other, headers=bob.headers)
    upload.send(b"b" * 2 * MiB)
    assert upload.finish().status == 204
    # What is left still fits.
    upload = Upload(server.url, second, headers=alice.headers)
    upload.send(b"a" * MiB)
    assert upload.finish().status == 204
    assert sorted(stored(server)) == sorted([first, second, other])
