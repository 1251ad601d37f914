"""What only the http store promises: read-only, Range with a fallback, HTTP's errors.

Each test serves files from a real web server on loopback (``WebServer``).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from glimpse.store import StoreNotFound, StoreUnavailable, StoreUnsupported
from glimpse.store.errors import StoreAuthError, StoreError, StoreRefused
from glimpse.store.http import HttpStore, options, public_uri
from tests.store.conftest import RangeRequestHandler, WebServer, loopback_filter, uri_filter
from tests.support.nginx import self_signed

DATA = os.urandom(10_000)


@pytest.fixture
def served(tmp_path: Path) -> Path:
    directory = tmp_path / "served"
    directory.mkdir()
    (directory / "image").write_bytes(DATA)
    (directory / "empty").write_bytes(b"")
    return directory


@pytest.fixture
def server(served: Path) -> Iterator[WebServer]:
    web = WebServer(served)
    yield web
    web.stop()


@pytest.fixture
def store() -> HttpStore:
    return HttpStore(uri_filter=loopback_filter())


def read_all(store: HttpStore, uri: str, **kwargs: Any) -> bytes:
    chunks = list(store.read(uri, **kwargs))
    assert all(chunks)
    return b"".join(chunks)


def test_is_read_only(store: HttpStore, server: WebServer) -> None:
    assert store.read_only

    with pytest.raises(StoreUnsupported):
        store.begin_write("image")
    with pytest.raises(StoreUnsupported):
        store.delete(server.url("image"))
    assert read_all(store, server.url("image")) == DATA


def test_reads_stats_and_ranges(store: HttpStore, server: WebServer) -> None:
    uri = server.url("image")

    assert store.stat(uri) == len(DATA)
    assert read_all(store, uri, chunk_size=999) == DATA
    assert read_all(store, uri, offset=1234, length=4321, chunk_size=1000) == DATA[1234:5555]
    assert read_all(store, uri, offset=9999) == DATA[9999:]
    assert read_all(store, uri, offset=10_000) == b""
    assert read_all(store, uri, offset=5, length=0) == b""
    assert store.stat(server.url("empty")) == 0
    assert read_all(store, server.url("empty"), offset=0, length=10) == b""


@pytest.mark.parametrize(
    ("offset", "length"), [(0, None), (0, 1), (1, None), (2500, 5000), (9999, 10), (10_000, None)]
)
def test_a_server_ignoring_range_still_gives_the_right_bytes(
    store: HttpStore, served: Path, offset: int, length: int | None
) -> None:
    web = WebServer(served, honours_ranges=False)
    try:
        got = read_all(store, web.url("image"), offset=offset, length=length, chunk_size=700)
    finally:
        web.stop()

    end = None if length is None else offset + length
    assert got == DATA[offset:end]


def test_missing_file_raises_before_iteration(store: HttpStore, server: WebServer) -> None:
    with pytest.raises(StoreNotFound):
        store.read(server.url("missing"))
    with pytest.raises(StoreNotFound):
        store.read(server.url("missing"), offset=3, length=0)
    with pytest.raises(StoreNotFound):
        store.stat(server.url("missing"))


def test_closing_a_read_early_releases_it(store: HttpStore, server: WebServer) -> None:
    chunks = store.read(server.url("image"), chunk_size=1000)
    assert len(next(chunks)) == 1000

    chunks.close()  # type: ignore[attr-defined]

    assert list(chunks) == []
    assert read_all(store, server.url("image")) == DATA


class StatusHandler(RangeRequestHandler):
    """``/status/<code>`` answers that code; ``/redirect/<name>`` redirects to ``<name>``;
    ``/away/<host:port/path>`` to ``http://<host:port/path>``; ``/loop`` redirects to
    itself; HEAD is refused on ``/no-head/<name>``."""

    def do_HEAD(self) -> None:
        if self.path.startswith("/no-head/"):
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._route(send_body=False)

    def do_GET(self) -> None:
        self._route(send_body=True)

    def _route(self, send_body: bool) -> None:
        self.server.seen_headers.append(dict(self.headers))  # type: ignore[attr-defined]
        if self.path.startswith("/status/"):
            self._reply(int(self.path.rsplit("/", 1)[1]), {}, b"")
        elif self.path.startswith("/redirect/"):
            self._reply(302, {"Location": "/" + self.path.rsplit("/", 1)[1]}, b"")
        elif self.path.startswith("/away/"):
            # An absolute redirect: /away/127.0.0.1:8080/name goes to http://127.0.0.1:8080/name
            self._reply(302, {"Location": "http://" + self.path[len("/away/") :]}, b"")
        elif self.path == "/loop":
            self._reply(302, {"Location": "/loop"}, b"")
        else:
            self.path = "/" + self.path.rsplit("/", 1)[1]
            self._serve(send_body)


@pytest.fixture
def odd_server(served: Path) -> Iterator[WebServer]:
    web = WebServer(served, handler=StatusHandler)
    web.seen_headers = []  # type: ignore[attr-defined]
    yield web
    web.stop()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, StoreNotFound),
        (410, StoreNotFound),
        (401, StoreAuthError),
        (403, StoreAuthError),
        (500, StoreUnavailable),
        (503, StoreUnavailable),
        (400, StoreError),
    ],
)
def test_statuses_map_to_store_errors(
    store: HttpStore, odd_server: WebServer, status: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        store.read(odd_server.url(f"status/{status}"))
    with pytest.raises(error):
        store.stat(odd_server.url(f"status/{status}"))


def test_redirects_are_followed_but_not_forever(store: HttpStore, odd_server: WebServer) -> None:
    assert read_all(store, odd_server.url("redirect/image"), offset=10, length=5) == DATA[10:15]
    assert store.stat(odd_server.url("redirect/image")) == len(DATA)
    with pytest.raises(StoreError, match="redirects"):
        store.read(odd_server.url("loop"))


# --- [import_filtering_opts]: what the store may reach ------------------------------------


def seen(server: WebServer) -> list[dict[str, str]]:
    return server.seen_headers  # type: ignore[attr-defined,no-any-return]


def test_by_default_loopback_and_odd_ports_are_refused_before_connecting(
    odd_server: WebServer,
) -> None:
    store = HttpStore(uri_filter=uri_filter())  # Glance's defaults: ports 80 and 443, no private

    for uri in (odd_server.url("image"), "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(StoreRefused):
            store.stat(uri)
        with pytest.raises(StoreRefused):
            store.read(uri)
    assert seen(odd_server) == []


def test_a_host_name_is_checked_by_the_addresses_it_resolves_to(odd_server: WebServer) -> None:
    # Any port; "localhost" passes the filter by name, then resolves to loopback.
    store = HttpStore(uri_filter=uri_filter(allowed_ports=[]))
    uri = f"http://localhost:{odd_server.server_address[1]}/image"

    with pytest.raises(StoreRefused, match="not publicly routable"):
        store.stat(uri)
    assert seen(odd_server) == []

    # An operator who allows private addresses lets the same name through.
    trusting = HttpStore(uri_filter=uri_filter(allowed_ports=[], allow_private_addresses=True))
    assert trusting.stat(uri) == len(DATA)


def test_every_redirect_hop_passes_the_filter(odd_server: WebServer, served: Path) -> None:
    elsewhere = WebServer(served, handler=StatusHandler)
    elsewhere.seen_headers = []  # type: ignore[attr-defined]
    try:
        # Allowed: 127.0.0.1 on the first server's port only.
        store = HttpStore(
            uri_filter=uri_filter(
                allowed_hosts=["127.0.0.1"], allowed_ports=[odd_server.server_address[1]]
            )
        )
        away = odd_server.url(f"away/127.0.0.1:{elsewhere.server_address[1]}/image")

        with pytest.raises(StoreRefused, match=r"redirects to http://127\.0\.0\.1"):
            store.read(away)
        with pytest.raises(StoreRefused):
            store.stat(odd_server.url("away/169.254.169.254/latest/meta-data/"))
        assert seen(elsewhere) == []  # refused before anything was sent there
        assert len(seen(odd_server)) == 2

        # With the second port allowed too, the same redirect is followed.
        both = HttpStore(uri_filter=loopback_filter())
        assert read_all(both, away) == DATA
        assert len(seen(elsewhere)) == 1
    finally:
        elsewhere.stop()


def test_credentials_go_to_the_first_host_only(odd_server: WebServer, served: Path) -> None:
    elsewhere = WebServer(served, handler=StatusHandler)
    elsewhere.seen_headers = []  # type: ignore[attr-defined]
    try:
        store = HttpStore(uri_filter=loopback_filter())
        port = odd_server.server_address[1]
        away = f"http://user:secret@127.0.0.1:{port}/away/127.0.0.1:{elsewhere.server_address[1]}/image"

        assert read_all(store, away) == DATA

        assert seen(odd_server)[-1]["Authorization"].startswith("Basic ")
        assert "Authorization" not in seen(elsewhere)[-1]
    finally:
        elsewhere.stop()


class ForwardProxyHandler(BaseHTTPRequestHandler):
    """A plain forward HTTP proxy: relays ``GET``/``HEAD http://host:port/path`` and notes
    each absolute URI it was asked for in ``server.asked``."""

    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self._relay()

    def do_GET(self) -> None:
        self._relay()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _relay(self) -> None:
        self.server.asked.append(self.path)  # type: ignore[attr-defined]
        target = urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=10)
        forwarded = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
        upstream.request(self.command, target.path or "/", headers=forwarded)
        answer = upstream.getresponse()
        body = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("connection", "transfer-encoding"):
                self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        upstream.close()


@pytest.fixture
def proxy() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ForwardProxyHandler)
    server.daemon_threads = True
    server.asked = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_reads_through_the_configured_proxy_still_filtered(
    odd_server: WebServer, proxy: ThreadingHTTPServer
) -> None:
    store = HttpStore(
        uri_filter=loopback_filter(),
        proxies={"http": f"127.0.0.1:{proxy.server_address[1]}"},  # Glance's host:port form
    )

    assert read_all(store, odd_server.url("image"), offset=100, length=50) == DATA[100:150]
    assert store.stat(odd_server.url("redirect/image")) == len(DATA)
    asked = proxy.asked  # type: ignore[attr-defined]
    assert asked == [
        odd_server.url("image"),
        odd_server.url("redirect/image"),
        odd_server.url("image"),
    ]

    # The proxy is the operator's, but what it is asked for still passes the filter.
    with pytest.raises(StoreRefused):
        store.stat("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(StoreRefused):
        store.stat(odd_server.url("away/169.254.169.254/latest/meta-data/"))
    assert len(asked) == 4  # only the first hop of the redirect reached the proxy


@contextlib.contextmanager
def serving_tls(served: Path, folder: Path, **names: bool) -> Iterator[tuple[WebServer, Path]]:
    """The file server over TLS, with a certificate from :func:`self_signed`."""
    certificate = self_signed(folder, **names)
    web = WebServer(served)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, folder / "key.pem")
    web.socket = context.wrap_socket(web.socket, server_side=True)
    try:
        yield web, certificate
    finally:
        web.stop()


@pytest.fixture
def tls_server(served: Path, tmp_path: Path) -> Iterator[tuple[WebServer, Path]]:
    """The file server over TLS, with a certificate for localhost and 127.0.0.1."""
    with serving_tls(served, tmp_path) as server:
        yield server


def test_https_is_verified_against_the_configured_ca(tls_server: tuple[WebServer, Path]) -> None:
    web, certificate = tls_server
    uri = f"https://127.0.0.1:{web.server_address[1]}/image"

    trusting = HttpStore(uri_filter=loopback_filter(), ca_certificates_file=str(certificate))
    assert read_all(trusting, uri, offset=5, length=10) == DATA[5:15]

    with pytest.raises(StoreUnavailable, match="certificate verify failed"):
        HttpStore(uri_filter=loopback_filter()).stat(uri)
    insecure = HttpStore(uri_filter=loopback_filter(), insecure=True)  # https_insecure
    assert insecure.stat(uri) == len(DATA)


def test_https_to_a_checked_address_still_names_and_verifies_the_host(
    served: Path, tmp_path: Path
) -> None:
    # A certificate for the name localhost only: the store connects to the address it
    # checked (127.0.0.1), and TLS must still name and verify the URI's host.
    with serving_tls(served, tmp_path, with_address=False) as (web, certificate):
        store = HttpStore(
            uri_filter=uri_filter(allowed_hosts=["localhost"], allowed_ports=[]),
            ca_certificates_file=str(certificate),
        )
        port = web.server_address[1]

        assert store.stat(f"https://localhost:{port}/image") == len(DATA)
        # The same server by address: the certificate does not name 127.0.0.1.
        by_address = HttpStore(uri_filter=loopback_filter(), ca_certificates_file=str(certificate))
        with pytest.raises(StoreUnavailable, match="certificate"):
            by_address.stat(f"https://127.0.0.1:{port}/image")


def test_stat_without_head_falls_back_to_get(store: HttpStore, odd_server: WebServer) -> None:
    assert store.stat(odd_server.url("no-head/image")) == len(DATA)


def test_asks_for_the_bytes_as_stored(store: HttpStore, odd_server: WebServer) -> None:
    read_all(store, odd_server.url("plain/image"))

    assert odd_server.seen_headers[-1]["Accept-Encoding"] == "identity"  # type: ignore[attr-defined]


def test_unreachable_server_raises_store_unavailable(store: HttpStore) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(StoreUnavailable):
        store.read(f"http://127.0.0.1:{port}/image")
    with pytest.raises(StoreUnavailable):
        store.stat(f"http://127.0.0.1:{port}/image")


def test_only_http_locations_are_this_stores(store: HttpStore) -> None:
    for uri in ["file:///etc/passwd", "swift+http://h/v1/c/o", "ftp://h/image"]:
        with pytest.raises(StoreNotFound):
            store.read(uri)
        with pytest.raises(StoreNotFound):
            store.stat(uri)


def test_public_uri_drops_user_and_password() -> None:
    assert public_uri("https://user:p%40ss@example.com:8443/a/b?x=1") == (
        "https://example.com:8443/a/b?x=1"
    )
    assert public_uri("http://example.com/image") == "http://example.com/image"


def test_options_carry_glances_names_and_help() -> None:
    opts = options()

    assert {opt.name for opt in opts} == {
        "https_ca_certificates_file",
        "https_insecure",
        "http_proxy_information",
    }
    assert all(opt.help for opt in opts)
