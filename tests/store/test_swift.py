"""What only the Swift store promises: SLO segments, glance_store URIs, Swift's errors.

The conformance suite covers the common contract; these tests look at the
store from the outside with swiftclient, on the shared swift-saio store.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
import swiftclient
from oslo_config import cfg
from swiftclient.exceptions import ClientException

from glimpse.store import StoreConflict, StoreFull, StoreNotFound, StoreUnavailable
from glimpse.store.errors import StoreAuthError
from glimpse.store.swift import SwiftStore, options, parse_location, public_uri
from tests.store.conftest import (
    remove_swift_container,
    saio_settings,
    swift_connection,
    swift_objects,
    unique_name,
)

MiB = 1 << 20

# --- locations (no store needed) ---------------------------------------------

AWKWARD_SECRETS = [
    "testing",
    "p@ss:word",
    "a/b/c",
    "100%",
    "%41%2F",  # looks quoted already (Launchpad bug 1695299)
    "sp ace?#&=+;",
    "clé-ключ",
]


@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
def test_credentials_survive_the_uri_round_trip(secret: str) -> None:
    store = SwiftStore(
        "http://swift.example.com:8080/auth/v1.0", f"acc:{secret}", secret, auth_version="1"
    )

    uri = store.uri_for("image-1")
    location = parse_location(uri)

    assert location.user == f"acc:{secret}"
    assert location.key == secret
    assert location.auth_address == "http://swift.example.com:8080/auth/v1.0"
    assert (location.container, location.obj) == ("glance", "image-1")
    userinfo = uri.split("://", 1)[1].rpartition("@")[0]
    # RFC 1738: nothing but unreserved characters and escapes in user and key.
    assert userinfo.count(":") == 1
    assert all(c.isascii() and (c.isalnum() or c in "%:-._~") for c in userinfo)


def test_uri_form_matches_glance_store() -> None:
    store = SwiftStore("https://keystone.example.com:5000/v3/", "project:user", "key", "images")

    assert store.scheme == "swift+https"
    assert store.uri_for("abc") == (
        "swift+https://project%3Auser:key@keystone.example.com:5000/v3/images/abc"
    )
    plain = SwiftStore("http://h:8080/auth/v1.0", "a:u", "k", auth_version="1")
    assert plain.scheme == "swift+http"


@pytest.mark.parametrize(
    ("uri", "auth_address", "user", "key"),
    [
        # Written by Glance: the unquoted account:user:key form...
        (
            "swift://account:user:pass@authurl.com/container/obj",
            "https://authurl.com",
            "account:user",
            "pass",
        ),
        # ...quote() with its default safe="/" leaves slashes in keys...
        (
            "swift+http://user:se/cret@h:8080/v1.0/container/obj",
            "http://h:8080/v1.0",
            "user",
            "se/cret",
        ),
        # ...and a quoted colon or percent must stay part of the key.
        ("swift+https://a%3Au:k%3Ae%25y@h/v3/container/obj", "https://h/v3", "a:u", "k:e%y"),
        ("swift+https://h/v3/container/obj", "https://h/v3", None, None),
    ],
)
def test_glance_written_locations_parse(
    uri: str, auth_address: str, user: str | None, key: str | None
) -> None:
    location = parse_location(uri)

    assert (location.auth_address, location.user, location.key) == (auth_address, user, key)
    assert (location.container, location.obj) == ("container", "obj")


@pytest.mark.parametrize(
    "uri",
    [
        "swift://user:pass@http://authurl.com/v1/container/obj",  # two schemes
        "swift+http://user:pass@host/container",  # no auth path or no object
        "swift+http://userpass@host/v1/container/obj",  # credentials without a colon
        "s3://user:pass@host/v1/container/obj",
        "file:///var/lib/glimpse/images/obj",
    ],
)
def test_malformed_locations_are_refused(uri: str) -> None:
    with pytest.raises(ValueError):
        parse_location(uri)


def test_public_uri_drops_the_credentials() -> None:
    uri = "swift+http://test%3Atester:s%40cret@127.0.0.1:8080/auth/v1.0/glance/abc"

    assert public_uri(uri) == "swift+http://127.0.0.1:8080/auth/v1.0/glance/abc"
    assert "cret" not in public_uri("swift+http://u:s@cret@odd")
    assert public_uri("swift+http://h/v1/c/o") == "swift+http://h/v1/c/o"


def test_locations_of_another_swift_are_not_this_stores() -> None:
    store = SwiftStore("http://127.0.0.1:1/auth/v1.0", "a:u", "k", auth_version="1")

    for uri in [
        "swift+http://a%3Au:k@elsewhere:8080/auth/v1.0/glance/abc",
        "swift+https://a%3Au:k@127.0.0.1:1/auth/v1.0/glance/abc",  # https, not http
        "swift+http://a%3Au:k@127.0.0.1:1/auth/v1.0/glance",
        "file:///etc/passwd",
    ]:
        with pytest.raises(StoreNotFound):
            store.read(uri)
        with pytest.raises(StoreNotFound):
            store.stat(uri)
        with pytest.raises(StoreNotFound):
            store.delete(uri)


def test_constructor_refuses_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="auth_version"):
        SwiftStore("http://h/v2.0", "p:u", "k", auth_version="2")
    with pytest.raises(ValueError, match="project:user"):
        SwiftStore("http://h/v3", "user", "k", auth_version="3")
    with pytest.raises(ValueError):
        SwiftStore("h/auth/v1.0", "a:u", "k", auth_version="1")
    with pytest.raises(ValueError):
        SwiftStore("http://h/auth/v1.0", "a:u", "k", "a/b", auth_version="1")
    store = SwiftStore("http://h/auth/v1.0", "a:u", "k", auth_version="1")
    with pytest.raises(ValueError):
        store.begin_write("a/b")


def test_options_carry_glances_names_and_help() -> None:
    opts = options()
    names = {opt.name for opt in opts}

    assert {
        "swift_store_auth_address",
        "swift_store_user",
        "swift_store_key",
        "swift_store_container",
        "swift_store_auth_version",
        "swift_store_large_object_size",
        "swift_store_large_object_chunk_size",
        "swift_store_create_container_on_put",
    } <= names
    assert all(opt.help for opt in opts)
    assert next(opt for opt in opts if opt.name == "swift_store_key").secret
    conf = cfg.ConfigOpts()
    conf.register_opts(opts, group="swift")
    conf([])
    assert conf.swift.swift_store_large_object_size == 5120
    assert conf.swift.swift_store_large_object_chunk_size == 200


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, StoreAuthError),
        (403, StoreAuthError),
        (404, StoreNotFound),
        (412, StoreConflict),
        (413, StoreFull),
        (507, StoreFull),
        (503, StoreUnavailable),
        (None, Exception),
    ],
)
def test_swift_statuses_map_to_store_errors(status: int | None, error: type[Exception]) -> None:
    from glimpse.store.swift import _store_error

    assert isinstance(_store_error(ClientException("x", http_status=status), "test"), error)


# --- against the shared swift-saio store ----------------------------------------


@pytest.fixture
def settings() -> dict[str, str]:
    return saio_settings("SWIFT_AUTH_URL")


@pytest.fixture
def outside(settings: dict[str, str]) -> swiftclient.Connection:
    return swift_connection(settings)


@pytest.fixture
def container(outside: swiftclient.Connection) -> Iterator[str]:
    name = unique_name()
    outside.put_container(name)
    yield name
    remove_swift_container(outside, name)


def make_store(settings: dict[str, str], container: str, **kwargs: Any) -> SwiftStore:
    arguments: dict[str, Any] = {
        "auth_version": "1",
        "large_object_size": MiB,
        "large_object_chunk_size": MiB,
        **kwargs,
    }
    return SwiftStore(
        arguments.pop("auth_address", settings["SWIFT_AUTH_URL"]),
        arguments.pop("user", settings["SWIFT_USER"]),
        arguments.pop("key", settings["SWIFT_KEY"]),
        container,
        **arguments,
    )


def upload(store: SwiftStore, image_id: str, data: bytes) -> str:
    writer = store.begin_write(image_id)
    for start in range(0, len(data), 100_000):
        writer.write(data[start : start + 100_000])
    return writer.commit().uri


def manifest_of(outside: swiftclient.Connection, container: str, name: str) -> list[Any]:
    _, body = outside.get_object(container, name, query_string="multipart-manifest=get")
    manifest: list[Any] = json.loads(body)
    return manifest


def test_large_image_is_a_static_large_object(
    settings: dict[str, str], outside: swiftclient.Connection, container: str
) -> None:
    store = make_store(settings, container)
    data = os.urandom(2 * MiB + 12345)

    uri = upload(store, "big", data)

    headers = outside.head_object(container, "big")
    assert headers["x-static-large-object"] == "True"
    assert int(headers["content-length"]) == len(data)
    segments = manifest_of(outside, container, "big")
    assert [segment["bytes"] for segment in segments] == [MiB, MiB, 12345]
    assert all(segment["name"].startswith(f"/{container}/big/") for segment in segments)
    assert len(swift_objects(outside, container)) == 4
    assert b"".join(store.read(uri)) == data
    # A range across a segment boundary is served by Swift from both segments.
    assert b"".join(store.read(uri, offset=MiB - 10, length=20)) == data[MiB - 10 : MiB + 10]

    store.delete(uri)

    assert swift_objects(outside, container) == []


def test_glance_written_dynamic_large_objects_are_read_and_deleted_whole(
    settings: dict[str, str], outside: swiftclient.Connection, container: str
) -> None:
    # glance_store uploads large images as DLOs: "<id>-00001"... plus a
    # zero-byte manifest naming the prefix.
    store = make_store(settings, container)
    pieces = [os.urandom(1000), os.urandom(2000), os.urandom(500)]
    for number, piece in enumerate(pieces, start=1):
        outside.put_object(container, f"glance-image-{number:05d}", piece)
    outside.put_object(
        container, "glance-image", b"", headers={"X-Object-Manifest": f"{container}/glance-image-"}
    )
    outside.put_object(container, "glance-imagery", b"not a segment")
    uri = store.uri_for("glance-image")
    data = b"".join(pieces)

    assert store.stat(uri) == len(data)
    assert b"".join(store.read(uri, offset=900, length=200)) == data[900:1100]

    store.delete(uri)

    assert swift_objects(outside, container) == ["glance-imagery"]


def test_small_image_is_one_plain_object(
    settings: dict[str, str], outside: swiftclient.Connection, container: str
) -> None:
    store = make_store(settings, container)

    upload(store, "exact", os.urandom(MiB))  # exactly one buffer: still plain

    assert "x-static-large-object" not in outside.head_object(container, "exact")
    assert swift_objects(outside, container) == ["exact"]


def test_large_object_size_below_the_chunk_size_still_makes_an_slo(
    settings: dict[str, str], outside: swiftclient.Connection, container: str
) -> None:
    store = make_store(settings, container, large_object_size=MiB, large_object_chunk_size=2 * MiB)
    data = os.urandom(MiB + MiB // 2)

    uri = upload(store, "one-segment", data)

    assert outside.head_object(container, "one-segment")["x-static-large-object"] == "True"
    assert [s["bytes"] for s in manifest_of(outside, container, "one-segment")] == [len(data)]
    assert b"".join(store.read(uri)) == data


def test_container_is_created_on_put_only_when_allowed(
    settings: dict[str, str], outside: swiftclient.Connection
) -> None:
    name = unique_name()
    try:
        refusing = make_store(settings, name)
        with pytest.raises(StoreUnavailable, match="create_container_on_put"):
            upload(refusing, "image", b"data")

        creating = make_store(settings, name, create_container_on_put=True)
        uri = upload(creating, "image", os.urandom(MiB + 1))  # a segment is the first PUT
        assert creating.stat(uri) == MiB + 1
        assert "image" in swift_objects(outside, name)
    finally:
        remove_swift_container(outside, name)


def test_a_real_password_in_the_uri_works(settings: dict[str, str], container: str) -> None:
    store = make_store(settings, container)

    uri = upload(store, "image", b"payload")

    assert f"{quote(settings['SWIFT_USER'], safe='')}:{settings['SWIFT_KEY']}@" in uri
    fresh = make_store(settings, container, key="not-the-key-any-more")
    # The store's own user: the configured key wins over the URI's (rotation).
    with pytest.raises(StoreAuthError):
        fresh.stat(uri)
    assert b"".join(make_store(settings, container).read(uri)) == b"payload"


def test_locations_of_another_user_use_the_uris_credentials(
    settings: dict[str, str], container: str
) -> None:
    # test:tester2 is a second admin of the same account (a swift-saio user).
    store = make_store(settings, container)
    uri = upload(store, "image", b"shared")
    location = parse_location(uri)
    as_tester2 = dataclasses.replace(location, user="test:tester2", key="testing2")
    wrong_key = dataclasses.replace(location, user="test:tester2", key="nope")

    assert b"".join(store.read(as_tester2.uri())) == b"shared"
    assert store.stat(as_tester2.uri()) == 6
    with pytest.raises(StoreAuthError):
        store.read(wrong_key.uri())


@pytest.mark.parametrize(("user", "key"), [("test:tester", "wrong"), ("nobody:nobody", "x")])
def test_wrong_credentials_raise_store_auth_error(
    settings: dict[str, str], container: str, user: str, key: str
) -> None:
    store = make_store(settings, container, user=user, key=key, retries=0)

    with pytest.raises(StoreAuthError):
        store.begin_write("image")
    with pytest.raises(StoreAuthError):
        store.stat(store.uri_for("image"))
    with pytest.raises(StoreAuthError):
        store.read(store.uri_for("image"))


def test_user_without_rights_raises_store_auth_error(
    settings: dict[str, str], container: str
) -> None:
    # test:tester3 authenticates but has no role on the account.
    store = make_store(settings, container, user="test:tester3", key="testing3", retries=0)

    with pytest.raises(StoreAuthError):
        store.begin_write("image")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_swift_raises_store_unavailable() -> None:
    store = SwiftStore(
        f"http://127.0.0.1:{closed_port()}/auth/v1.0", "a:u", "k", auth_version="1", retries=0
    )

    with pytest.raises(StoreUnavailable):
        store.begin_write("image")
    with pytest.raises(StoreUnavailable):
        store.read(store.uri_for("image"))
    with pytest.raises(StoreUnavailable):
        store.stat(store.uri_for("image"))
    with pytest.raises(StoreUnavailable):
        store.delete(store.uri_for("image"))


# --- fake services, for what swift-saio cannot do -------------------------------


class FakeService(ThreadingHTTPServer):
    """A loopback server whose handler answers from ``respond``; records requests."""

    daemon_threads = True

    def __init__(self, respond: Any) -> None:
        self.respond = respond
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Transfer-Encoding") == "chunked":
                    body = _read_chunked(self.rfile)
                server.requests.append((self.command, self.path, dict(self.headers), body))
                status, headers, reply = server.respond(self.command, self.path, body)
                self.send_response(status)
                for name, value in {"Content-Length": str(len(reply)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        server = self
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def _read_chunked(stream: Any) -> bytes:
    body = b""
    while True:
        size = int(stream.readline().strip(), 16)
        body += stream.read(size)
        stream.readline()
        if size == 0:
            return body


def test_quota_or_full_disk_raises_store_full() -> None:
    # swift-saio has no quota middleware: a fake proxy answers like one.
    def respond(method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if path == "/auth/v1.0":
            return 200, {"X-Storage-Url": fake.url + "/v1/AUTH_a", "X-Auth-Token": "t"}, b""
        if method == "HEAD":
            return 404, {}, b""
        return 413, {}, b"Upload exceeds quota."

    fake = FakeService(respond)
    try:
        store = SwiftStore(fake.url + "/auth/v1.0", "a:u", "k", auth_version="1", retries=0)
        writer = store.begin_write("image")
        writer.write(b"x" * 100)
        with pytest.raises(StoreFull):
            writer.commit()
    finally:
        fake.stop()


def test_keystone_v3_credentials(settings: dict[str, str], container: str) -> None:
    # swift-saio runs tempauth only, so a fake Keystone hands out a real
    # tempauth token with a catalog pointing at swift-saio: the store then
    # goes through the whole Keystone v3 path against a real Swift.
    storage_url, token = swiftclient.get_auth(
        settings["SWIFT_AUTH_URL"], settings["SWIFT_USER"], settings["SWIFT_KEY"]
    )

    def respond(method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        request = json.loads(body)
        password = request["auth"]["identity"]["password"]["user"]
        if password["password"] != "sekrit":
            return 401, {"Content-Type": "application/json"}, b'{"error": {"code": 401}}'
        catalog = [
            {
                "type": "object-store",
                "name": "swift",
                "id": "swift",
                "endpoints": [
                    {"id": "1", "interface": "public", "region": "RegionOne", "url": storage_url}
                ],
            }
        ]
        reply = {
            "token": {
                "methods": ["password"],
                "expires_at": "2999-01-01T00:00:00.000000Z",
                "issued_at": "2000-01-01T00:00:00.000000Z",
                "user": {"id": "u", "name": password["name"], "domain": {"id": "default"}},
                "project": {"id": "p", "name": "glance", "domain": {"id": "default"}},
                "catalog": catalog,
            }
        }
        headers = {"X-Subject-Token": token, "Content-Type": "application/json"}
        return 201, headers, json.dumps(reply).encode()

    keystone = FakeService(respond)
    try:
        store = SwiftStore(
            keystone.url + "/v3",
            "glance:glance-user",
            "sekrit",
            container,
            auth_version="3",
            user_domain_name="Users",
            large_object_size=MiB,
            large_object_chunk_size=MiB,
        )
        data = os.urandom(MiB + 7)
        uri = upload(store, "image", data)

        assert uri.startswith(
            f"swift+http://glance%3Aglance-user:sekrit@127.0.0.1:{keystone.server_address[1]}/v3/"
        )
        assert b"".join(store.read(uri)) == data
        _, path, _, body = keystone.requests[0]
        assert path == "/v3/auth/tokens"
        identity = json.loads(body)["auth"]
        assert identity["identity"]["password"]["user"] == {
            "name": "glance-user",
            "password": "sekrit",
            "domain": {"name": "Users"},
        }
        assert identity["scope"]["project"] == {"name": "glance", "domain": {"id": "default"}}

        wrong = SwiftStore(keystone.url + "/v3", "glance:glance-user", "nope", container, retries=0)
        with pytest.raises(StoreAuthError):
            wrong.stat(uri)
    finally:
        keystone.stop()
