"""Uploads over a real socket: chunk boundaries, short bodies, hang-ups, races, deletes.

Runs against one server per database backend: what happens to the image row when
a connection goes wrong, or when two requests fight over it, is the database's
business as much as the server's.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections.abc import Iterator

import pytest

from tests.data_path.conftest import Client, store_dir, stored, wait_for
from tests.data_path.wire import Answer, Upload
from tests.support.server import Server

MiB = 1 << 20
TEMPORARY = re.compile(r"^\.[0-9a-f-]{36}\.[0-9a-f]{16}\.tmp$")


def pattern(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ at every offset modulo a prime, so shifts show."""
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (size // 251 + 1))[:size]


def split(data: bytes, sizes: Iterator[int]) -> Iterator[bytes]:
    start = 0
    while start < len(data):
        size = next(sizes)
        yield data[start : start + size]
        start += size


def temporaries(server: Server) -> list[str]:
    return [name for name in stored(server) if TEMPORARY.match(name)]


def assert_active_with(admin: Client, server: Server, image_id: str, data: bytes) -> None:
    image = admin.image(image_id)
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert stored(server) == [image_id]
    assert (store_dir(server) / image_id).read_bytes() == data


def assert_queued_and_nothing_stored(admin: Client, server: Server, image_id: str) -> None:
    # The server notices a vanished client asynchronously: poll for the outcome.
    wait_for(lambda: admin.status(image_id) == "queued", "the image to be queued again")
    image = admin.image(image_id)
    assert image["size"] is None and image["checksum"] is None
    wait_for(lambda: stored(server) == [], f"an empty store folder, not {stored(server)}")


def test_content_length_upload_goes_queued_saving_active(admin: Client, server: Server) -> None:
    data = pattern(3 * MiB + 17)
    image_id = admin.create_image()
    assert admin.status(image_id) == "queued"
    upload = Upload(server.url, image_id, content_length=len(data))
    upload.send(data[: 2 * MiB])
    wait_for(lambda: admin.status(image_id) == "saving", "status saving")
    # While saving, the bytes live in a temporary, never under the image's name.
    wait_for(lambda: temporaries(server), "a temporary in the store folder")
    assert image_id not in stored(server)
    assert admin.http.get(f"/v2/images/{image_id}/file").status_code == 204
    upload.send(data[2 * MiB :])
    answer = upload.finish()
    assert answer.status == 204, answer
    assert_active_with(admin, server, image_id, data)


@pytest.mark.parametrize(
    ("size", "chunk_sizes"),
    [
        (4099, itertools.repeat(1)),
        (1 * MiB + 12345, itertools.cycle([1, 7, 4095, 65537, 3, 1 << 16, 999_983])),
        (9 * MiB + 3, itertools.cycle([4 * MiB + 1, 5 * MiB - 7])),
    ],
    ids=["1-byte-chunks", "odd-chunks", "4MiB+-chunks"],
)
def test_chunked_upload_with_any_chunk_sizes(
    admin: Client, server: Server, size: int, chunk_sizes: Iterator[int]
) -> None:
    data = pattern(size, seed=size % 251)
    image_id = admin.create_image()
    upload = Upload(server.url, image_id)
    for chunk in split(data, chunk_sizes):
        upload.send(chunk)
    answer = upload.finish()
    assert answer.status == 204, answer
    assert_active_with(admin, server, image_id, data)


def test_body_shorter_than_content_length_keeps_nothing(admin: Client, server: Server) -> None:
    image_id = admin.create_image()
    upload = Upload(server.url, image_id, content_length=4 * MiB)
    upload.send(pattern(MiB + 5))
    wait_for(lambda: admin.status(image_id) == "saving", "status saving")
    upload.close()
    assert_queued_and_nothing_stored(admin, server, image_id)
    # The image takes a proper upload afterwards.
    retry = Upload(server.url, image_id, content_length=100)
    retry.send(pattern(100))
    assert retry.finish().status == 204


def test_client_hanging_up_mid_upload_keeps_nothing(admin: Client, server: Server) -> None:
    image_id = admin.create_image()
    upload = Upload(server.url, image_id)
    for _ in range(3):
        upload.send(pattern(MiB))
    wait_for(lambda: temporaries(server), "a temporary in the store folder")
    upload.hang_up()
    assert_queued_and_nothing_stored(admin, server, image_id)
    assert temporaries(server) == []


def race(server: Server, image_id: str, bodies: list[bytes]) -> list[Answer]:
    """Send ``bodies`` to ``image_id`` at the same time, slowly; return both answers."""
    answers: list[Answer | None] = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def send(index: int) -> None:
        start.wait()
        upload = Upload(server.url, image_id, content_length=len(bodies[index]))
        pieces = split(bodies[index], itertools.repeat(256 << 10))
        early = upload.send_until_answered(pieces)
        answers[index] = early if early is not None else upload.answer()
        upload.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(answer is not None for answer in answers), answers
    return [answer for answer in answers if answer is not None]


def test_two_racing_uploads_exactly_one_wins(admin: Client, server: Server) -> None:
    for round_ in range(3):
        image_id = admin.create_image()
        bodies = [pattern(2 * MiB, seed=1), pattern(2 * MiB, seed=2)]
        answers = race(server, image_id, bodies)
        assert sorted(answer.status for answer in answers) == [204, 409], (round_, answers)
        winner = next(i for i, answer in enumerate(answers) if answer.status == 204)
        assert b"saving" in answers[1 - winner].body
        assert_active_with(admin, server, image_id, bodies[winner])
        for name in stored(server):
            (store_dir(server) / name).unlink()


def test_upload_while_another_is_saving_is_409(admin: Client, server: Server) -> None:
    image_id = admin.create_image()
    first = Upload(server.url, image_id, content_length=2 * MiB)
    first.send(pattern(MiB))
    wait_for(lambda: admin.status(image_id) == "saving", "status saving")
    second = Upload(server.url, image_id, content_length=10)
    answer = second.send_until_answered([b"0123456789"]) or second.answer()
    assert answer.status == 409
    first.send(pattern(MiB))
    assert first.finish().status == 204
    assert admin.image(image_id)["size"] == 2 * MiB


def test_image_deleted_during_upload_is_410_and_data_removed(admin: Client, server: Server) -> None:
    image_id = admin.create_image()
    upload = Upload(server.url, image_id)
    upload.send(pattern(2 * MiB))
    wait_for(lambda: admin.status(image_id) == "saving", "status saving")
    assert admin.http.delete(f"/v2/images/{image_id}").status_code == 204
    upload.send(pattern(MiB))
    answer = upload.finish()
    assert answer.status == 410, answer
    assert b"deleted during the upload" in answer.body
    assert admin.http.get(f"/v2/images/{image_id}").status_code == 404
    assert stored(server) == []


def test_wrong_content_type_is_refused_before_the_body(admin: Client, server: Server) -> None:
    image_id = admin.create_image()
    for content_type in ("application/json", None):
        upload = Upload(server.url, image_id, content_type=content_type)
        answer = upload.send_until_answered([pattern(MiB)] * 64)
        upload.close()
        assert answer is not None and answer.status == 415
        # Answered long before the 64 MiB body was through.
        assert upload.sent < 32 * MiB
    assert admin.status(image_id) == "queued"
    assert stored(server) == []
