"""What only the S3 store promises: multipart uploads, glance_store URIs, S3's errors.

The conformance suite covers the common contract; these tests look at the
bucket from the outside with boto3, on the shared swift-saio store (S3 API).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from oslo_config import cfg

from glimpse.store import StoreConflict, StoreFull, StoreNotFound, StoreUnavailable
from glimpse.store import s3 as s3_module
from glimpse.store.errors import StoreAuthError
from glimpse.store.s3 import S3Store, options, parse_location, public_uri
from tests.store.conftest import (
    remove_s3_bucket,
    s3_client,
    s3_contents,
    saio_settings,
    unique_name,
)

MiB = 1 << 20
PART = 5 * MiB

# --- locations (no store needed) ---------------------------------------------


@pytest.mark.parametrize(
    "secret", ["testing", "wJalr/K7MDENG+bPxRfiCY", "p@ss:w%rd", "%41%2F", "sp ace?#&=;", "clé"]
)
def test_keys_survive_the_uri_round_trip(secret: str) -> None:
    store = S3Store("http://s3.example.com:8080", "test:tester", secret, "images")

    uri = store.uri_for("image-1")
    location = parse_location(uri)

    assert (location.access_key, location.secret_key) == ("test:tester", secret)
    assert (location.endpoint, location.bucket, location.key) == (
        "http://s3.example.com:8080",
        "images",
        "image-1",
    )
    userinfo = uri.split("://", 1)[1].rpartition("@")[0]
    assert userinfo.count(":") == 1
    assert all(c.isascii() and (c.isalnum() or c in "%:-._~") for c in userinfo)


def test_uri_form_matches_glance_store() -> None:
    assert S3Store("https://s3.example.com", "AK", "SK", "b").uri_for("i") == (
        "s3+https://AK:SK@s3.example.com/b/i"
    )
    assert S3Store("http://h:9000/", "AK", "SK", "b").uri_for("i") == "s3://AK:SK@h:9000/b/i"
    # Glance's s3_store_host may omit the scheme: plain HTTP then.
    bare = S3Store("h:9000", "AK", "SK", "b")
    assert (bare.scheme, bare.endpoint) == ("s3", "http://h:9000")


@pytest.mark.parametrize(
    ("uri", "endpoint", "access", "secret"),
    [
        # Glance wrote keys unquoted, slashes in AWS secrets included.
        (
            "s3://AKIA:wJalr/K7MD+x@s3.amazonaws.com/bucket/key",
            "http://s3.amazonaws.com",
            "AKIA",
            "wJalr/K7MD+x",
        ),
        ("s3+https://a%3Ab:s%3Ac@h:443/bucket/key", "https://h:443", "a:b", "s:c"),
        ("s3+http://AK:SK@h/path/prefix/bucket/key", "http://h/path/prefix", "AK", "SK"),
        ("s3+https://h/bucket/key", "https://h", None, None),
    ],
)
def test_glance_written_locations_parse(
    uri: str, endpoint: str, access: str | None, secret: str | None
) -> None:
    location = parse_location(uri)

    assert (location.endpoint, location.access_key, location.secret_key) == (
        endpoint,
        access,
        secret,
    )
    assert (location.bucket, location.key) == ("bucket", "key")


@pytest.mark.parametrize(
    "uri",
    [
        "s3://AK:SK@https://s3.amazonaws.com/bucket/key",
        "s3://AK:SK@host/bucket",
        "s3://AKSK@host/bucket/key",
        "swift://AK:SK@host/bucket/key",
    ],
)
def test_malformed_locations_are_refused(uri: str) -> None:
    with pytest.raises(ValueError):
        parse_location(uri)


def test_public_uri_drops_the_keys() -> None:
    assert public_uri("s3://test%3Atester:testing@127.0.0.1:8080/b/k") == "s3://127.0.0.1:8080/b/k"
    assert "secret" not in public_uri("s3://odd:secret@")


def test_constructor_refuses_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="5 MiB"):
        S3Store("http://h", "AK", "SK", "b", large_object_chunk_size=PART - 1)
    with pytest.raises(ValueError):
        S3Store("http://h", "AK", "SK", "b", bucket_url_format="dns")
    with pytest.raises(ValueError):
        S3Store("http://h", "AK", "SK", "a/b")


def test_locations_of_another_endpoint_are_not_this_stores() -> None:
    store = S3Store("http://127.0.0.1:1", "AK", "SK", "b")

    for uri in ["s3://AK:SK@elsewhere/b/k", "s3+https://AK:SK@127.0.0.1:1/b/k", "s3://x/b"]:
        with pytest.raises(StoreNotFound):
            store.read(uri)
        with pytest.raises(StoreNotFound):
            store.stat(uri)
        with pytest.raises(StoreNotFound):
            store.delete(uri)


def test_options_carry_glances_names_and_help() -> None:
    opts = options()

    assert {
        "s3_store_host",
        "s3_store_access_key",
        "s3_store_secret_key",
        "s3_store_bucket",
        "s3_store_create_bucket_on_put",
        "s3_store_bucket_url_format",
        "s3_store_large_object_size",
        "s3_store_large_object_chunk_size",
    } <= {opt.name for opt in opts}
    assert all(opt.help for opt in opts)
    conf = cfg.ConfigOpts()
    conf.register_opts(opts, group="s3")
    conf([])
    assert (conf.s3.s3_store_large_object_size, conf.s3.s3_store_large_object_chunk_size) == (
        100,
        10,
    )


def client_error(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (403, "SignatureDoesNotMatch", StoreAuthError),
        (403, "InvalidAccessKeyId", StoreAuthError),
        (403, "403", StoreAuthError),
        (404, "NoSuchKey", StoreNotFound),
        (412, "PreconditionFailed", StoreConflict),
        (409, "ConditionalRequestConflict", StoreConflict),
        (400, "EntityTooLarge", StoreFull),
        (413, "RequestEntityTooLarge", StoreFull),
        (503, "SlowDown", StoreUnavailable),
        (500, "InternalError", StoreUnavailable),
    ],
)
def test_s3_errors_map_to_store_errors(status: int, code: str, error: type[Exception]) -> None:
    assert isinstance(s3_module._store_error(client_error(status, code), "test"), error)


# --- against the shared swift-saio store ----------------------------------------


@pytest.fixture
def settings() -> dict[str, str]:
    return saio_settings("S3_ENDPOINT")


@pytest.fixture
def outside(settings: dict[str, str]) -> Any:
    return s3_client(settings)


@pytest.fixture
def bucket(outside: Any) -> Iterator[str]:
    name = unique_name()
    outside.create_bucket(Bucket=name)
    yield name
    remove_s3_bucket(outside, name)


def make_store(settings: dict[str, str], bucket: str, **kwargs: Any) -> S3Store:
    arguments: dict[str, Any] = {
        "region_name": settings.get("S3_REGION", ""),
        "large_object_size": PART,
        "large_object_chunk_size": PART,
        **kwargs,
    }
    return S3Store(
        arguments.pop("host", settings["S3_ENDPOINT"]),
        arguments.pop("access_key", settings["S3_ACCESS_KEY"]),
        arguments.pop("secret_key", settings["S3_SECRET_KEY"]),
        bucket,
        **arguments,
    )


def write_all(writer: Any, data: bytes) -> None:
    for start in range(0, len(data), MiB):
        writer.write(data[start : start + MiB])


def test_large_image_goes_up_as_a_multipart_upload(
    settings: dict[str, str], outside: Any, bucket: str
) -> None:
    store = make_store(settings, bucket)
    data = os.urandom(3 * PART + 12345)
    writer = store.begin_write("big")  # size unknown: each part is buffered
    write_all(writer, data)

    # Two parts are up, the third may still be on its way (it is sent while the
    # next one fills); the rest waits in the buffer for commit.
    (upload,) = outside.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert upload["UploadId"] == writer.upload_id  # type: ignore[attr-defined]
    parts = outside.list_parts(Bucket=bucket, Key="big", UploadId=upload["UploadId"])["Parts"]
    assert [part["Size"] for part in parts][:2] == [PART, PART]

    stored = writer.commit()

    head = outside.head_object(Bucket=bucket, Key="big")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-4")  # S3's mark of a 4-part object
    assert s3_contents(outside, bucket) == ["big"]
    assert b"".join(store.read(stored.uri)) == data
    assert b"".join(store.read(stored.uri, offset=PART - 5, length=10)) == data[PART - 5 : PART + 5]


def test_small_image_is_one_put(settings: dict[str, str], outside: Any, bucket: str) -> None:
    store = make_store(settings, bucket)
    writer = store.begin_write("exact")
    write_all(writer, os.urandom(PART))  # exactly one part: still a plain object

    writer.commit()

    assert writer.upload_id is None  # type: ignore[attr-defined]
    assert "-" not in outside.head_object(Bucket=bucket, Key="exact")["ETag"]


def test_too_many_parts_is_store_full(
    settings: dict[str, str], outside: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "MAX_PARTS", 2)
    store = make_store(settings, bucket)
    writer = store.begin_write("huge")

    with pytest.raises(StoreFull, match="parts"):
        write_all(writer, os.urandom(3 * PART + 1))
    writer.abort()

    assert s3_contents(outside, bucket) == []


def test_bucket_is_created_on_put_only_when_allowed(settings: dict[str, str], outside: Any) -> None:
    name = unique_name()
    try:
        with pytest.raises(StoreUnavailable, match="create_bucket_on_put"):
            make_store(settings, name).begin_write("image").commit()

        creating = make_store(settings, name, create_bucket_on_put=True)
        writer = creating.begin_write("image")
        write_all(writer, os.urandom(PART + 1))  # the multipart upload is the first request
        assert creating.stat(writer.commit().uri) == PART + 1
    finally:
        remove_s3_bucket(outside, name)


def test_a_real_secret_in_the_uri_works(settings: dict[str, str], bucket: str) -> None:
    store = make_store(settings, bucket)
    writer = store.begin_write("image")
    writer.write(b"payload")

    uri = writer.commit().uri

    # swift-saio's access key is "account:user": its colon must be quoted.
    assert uri.startswith(f"s3://test%3Atester:{settings['S3_SECRET_KEY']}@")
    assert b"".join(make_store(settings, bucket).read(uri)) == b"payload"


def test_locations_with_other_keys_use_the_uris_keys(settings: dict[str, str], bucket: str) -> None:
    # test:tester2 is a second admin of the same account (a swift-saio user).
    store = make_store(settings, bucket)
    writer = store.begin_write("image")
    writer.write(b"shared")
    location = parse_location(writer.commit().uri)
    as_tester2 = dataclasses.replace(location, access_key="test:tester2", secret_key="testing2")
    wrong = dataclasses.replace(location, access_key="test:tester2", secret_key="nope")

    assert b"".join(store.read(as_tester2.uri())) == b"shared"
    with pytest.raises(StoreAuthError):
        store.stat(wrong.uri())


@pytest.mark.parametrize(("access", "secret"), [("test:tester", "wrong"), ("nobody:x", "x")])
def test_wrong_keys_raise_store_auth_error(
    settings: dict[str, str], bucket: str, access: str, secret: str
) -> None:
    store = make_store(settings, bucket, access_key=access, secret_key=secret, max_attempts=1)

    with pytest.raises(StoreAuthError):
        store.begin_write("image")
    with pytest.raises(StoreAuthError):
        store.read(store.uri_for("image"))
    with pytest.raises(StoreAuthError):
        store.stat(store.uri_for("image"))


def test_unreachable_endpoint_raises_store_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = S3Store(f"http://127.0.0.1:{port}", "AK", "SK", "b", max_attempts=1)

    with pytest.raises(StoreUnavailable):
        store.begin_write("image")
    with pytest.raises(StoreUnavailable):
        store.read(store.uri_for("image"))
    with pytest.raises(StoreUnavailable):
        store.stat(store.uri_for("image"))
