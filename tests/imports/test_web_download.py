"""web-download: the URI filter, the address rule, redirects, timeouts and decompression.

Every connection goes to HTTP servers these tests run on 127.0.0.1. Because
127.0.0.1 is loopback, a test that needs a download to succeed allows it the way
an operator would (``allowed_hosts`` or ``allow_private_addresses``, plus the
test port in ``allowed_ports``). An autouse guard fails any attempt to connect
or resolve a name beyond loopback, so a regression cannot send traffic out.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import lzma
import random
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from oslo_config import cfg

from glimpse.config import import_filtering
from glimpse.imports import web_download
from glimpse.imports.web_download import UriRefused, WebDownloadError, check_uri

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

pytestmark = pytest.mark.anyio
MiB = 1 << 20


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- fixtures ----------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail, rather than send, any connection or name lookup beyond this machine."""
    connect, connect_ex, getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def guarded(address: Any) -> None:
        if isinstance(address, tuple) and not _is_loopback(str(address[0])):
            raise AssertionError(f"a test tried to connect to {address!r}")

    def guarded_connect(self: socket.socket, address: Any) -> None:
        guarded(address)
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        guarded(address)
        return connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name != "localhost" and not _is_loopback(name):
            raise AssertionError(f"a test tried to resolve {name!r}")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


def make_conf(**overrides: Any) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    for group, opts in import_filtering.OPTS:
        conf.register_opts(opts, group=group)
    conf([], default_config_files=[])
    for name, value in overrides.items():
        conf.set_override(name, value, group="import_filtering_opts")
    return conf


def payload(size: int, seed: int = 7) -> bytes:
    """Half random, half repetitive: realistic for images and compressible."""
    rng = random.Random(seed)
    block = rng.randbytes(4096) + bytes(4096)
    return (block * (size // len(block) + 1))[:size]


class _Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route, _, arg = parts.path.strip("/").partition("/")
        if route == "blob":
            self._send(200, self.server.blobs[arg])
        elif route == "redirect":
            self._send(int(query.get("code", "302")), b"", location=query.get("to"))
        elif route == "chain":
            left = int(arg)
            if left:
                self._send(302, b"", location=f"/chain/{left - 1}")
            else:
                self._send(200, b"end of chain")
        elif route == "status":
            self._send(int(arg), b"no such image")
        elif route == "echo-host":
            self._send(200, self.headers.get("Host", "").encode())
        elif route == "stall-headers":
            self.server.release.wait(10)
            self._send(200, b"late")
        elif route == "stall-body":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.server.release.wait(10)
        elif route == "short":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True
        else:
            self._send(404, b"unknown route")

    def _send(self, status: int, body: bytes, location: str | None = None) -> None:
        self.send_response(status)
        if location is not None:
            self.send_header("Location", location)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        view = memoryview(body)
        for start in range(0, len(body), 256 * 1024):
            self.wfile.write(view[start : start + 256 * 1024])


class Server(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 that serves the routes of :class:`_Handler`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.blobs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()
        self.port: int = self.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up early are part of the tests


def _serve() -> Iterator[Server]:
    server = Server()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture
def other_server() -> Iterator[Server]:
    yield from _serve()


def allowing(server: Server, **overrides: Any) -> cfg.ConfigOpts:
    """The configuration an operator writes to let web-download use a loopback server."""
    settings: dict[str, Any] = {"allowed_hosts": ["127.0.0.1"], "allowed_ports": [server.port]}
    settings.update(overrides)
    return make_conf(**settings)


async def download(conf: cfg.ConfigOpts, uri: str, **kwargs: Any) -> bytes:
    source = await web_download.stream(conf, uri, **kwargs)
    return b"".join([chunk async for chunk in source])


class FakeResolver:
    """Answers name lookups from a table, counting them."""

    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[web_download.IPAddress]:
        self.calls.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in self.table[host]]


# --- options ---------------------------------------------------------------------------------


def test_options_have_help_and_documented_defaults() -> None:
    conf = make_conf()
    group = conf.import_filtering_opts
    assert group.allowed_schemes == ["http", "https"]
    assert group.disallowed_schemes == []
    assert group.allowed_hosts == [] and group.disallowed_hosts == []
    assert group.allowed_ports == [80, 443] and group.disallowed_ports == []
    assert group.allow_private_addresses is False
    assert (group.connect_timeout, group.idle_timeout, group.max_redirects) == (30, 60, 5)
    [(name, opts)] = import_filtering.OPTS
    assert name == "import_filtering_opts"
    assert all(opt.help and len(opt.help) > 20 for opt in opts)


# --- the static filter -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "http://images.example.com/cirros.img",
        "https://images.example.com/cirros.img?version=0.6#frag",
        "http://images.example.com:80/x",
        "https://IMAGES.Example.COM:443/x",
        "http://93.184.216.34/x",
        "http://[2606:2800:220:1:248:1893:25c8:1946]/x",
        "http://bücher.example/x",
    ],
)
def test_defaults_accept_public_http_and_https(uri: str) -> None:
    check_uri(make_conf(), uri)


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("ftp://images.example.com/x.img", "scheme 'ftp'"),
        ("gopher://images.example.com:70/_x", "scheme 'gopher'"),
        ("data:text/plain,hello", "scheme 'data'"),
        ("//images.example.com/x.img", "no scheme"),
        ("/local/path.img", "no scheme"),
        ("http:///x.img", "no host"),
        ("http://:80/x.img", "no host"),
        ("https://", "no host"),
        ("", "empty"),
    ],
)
def test_refuses_other_schemes_and_missing_parts(uri: str, reason: str) -> None:
    with pytest.raises(UriRefused, match=reason):
        check_uri(make_conf(), uri)


def test_scheme_allow_list_wins_over_deny_list() -> None:
    conf = make_conf(allowed_schemes=["https"], disallowed_schemes=["https"])
    check_uri(conf, "https://images.example.com/x")
    with pytest.raises(UriRefused, match=r"scheme 'http' is not allowed"):
        check_uri(conf, "http://images.example.com/x")


def test_scheme_deny_list_applies_without_allow_list() -> None:
    conf = make_conf(allowed_schemes=[], disallowed_schemes=["http"])
    check_uri(conf, "https://images.example.com/x")
    with pytest.raises(UriRefused, match=r"scheme 'http'"):
        check_uri(conf, "HTTP://images.example.com/x")
    # Allowed by the filter, but nothing but http(s) can be fetched.
    with pytest.raises(UriRefused, match=r"cannot be downloaded"):
        check_uri(conf, "ftp://images.example.com/x")


def test_host_allow_list_wins_over_deny_list() -> None:
    conf = make_conf(allowed_hosts=["images.example.com"], disallowed_hosts=["images.example.com"])
    check_uri(conf, "http://images.example.com/x")
    check_uri(conf, "http://IMAGES.example.com./x")
    with pytest.raises(UriRefused, match=r"host 'other.example.com'"):
        check_uri(conf, "http://other.example.com/x")


def test_host_deny_list_applies_without_allow_list() -> None:
    conf = make_conf(disallowed_hosts=["evil.example.com", "93.184.216.34"])
    check_uri(conf, "http://images.example.com/x")
    for uri in (
        "http://evil.example.com/x",
        "http://EVIL.Example.com./x",
        "http://93.184.216.34/x",
        "http://1572395042/x",  # 93.184.216.34 spelt as one number
        "http://0x5d.0xb8.0xd8.0x22/x",
        "http://[::ffff:93.184.216.34]/x",
    ):
        with pytest.raises(UriRefused, match=r"is not allowed"):
            check_uri(conf, uri)


def test_port_allow_list_wins_over_deny_list() -> None:
    conf = make_conf(allowed_ports=[8080], disallowed_ports=[8080])
    check_uri(conf, "http://images.example.com:8080/x")
    with pytest.raises(UriRefused, match=r"port 80 is not allowed"):
        check_uri(conf, "http://images.example.com:80/x")
    # Glance's rule, kept on purpose: no port in the URI, no port check.
    check_uri(conf, "http://images.example.com/x")


def test_port_deny_list_applies_without_allow_list() -> None:
    conf = make_conf(allowed_ports=[], disallowed_ports=[8080])
    check_uri(conf, "http://images.example.com:9090/x")
    with pytest.raises(UriRefused, match=r"port 8080"):
        check_uri(conf, "http://images.example.com:8080/x")


@pytest.mark.parametrize("port", [22, 25, 6379, 8080, 65535])
def test_default_ports_refuse_odd_ports(port: int) -> None:
    with pytest.raises(UriRefused, match=rf"port {port} is not allowed"):
        check_uri(make_conf(), f"http://images.example.com:{port}/x")


@pytest.mark.parametrize(
    "uri",
    [
        "http://images.example.com:0/x",
        "http://images.example.com:99999/x",
        "http://images.example.com:http/x",
        "http://user:secret@images.example.com/x",
        "http://images.example.com@evil.example.com/x",
        "http://evil.example.com\\@images.example.com/x",
        "http://images.example.com/a b",
        "http://images.example.com/\r\nX-Injected: 1",
        "http://[::1/x",
        "http://[fe80::1%25eth0]/x",
        "http://999.1.1.1/x",
        "http://1.2.3.4.5/x",
        "http://under_score!.example.com/x",
        "http://%31%32%37.0.0.1/x",
        "http://08.0.0.1/x",
    ],
)
def test_refuses_malformed_or_ambiguous_uris(uri: str) -> None:
    with pytest.raises(UriRefused):
        check_uri(make_conf(allow_private_addresses=True), uri)


NON_PUBLIC = [
    "127.0.0.1",
    "127.0.0.2",
    "169.254.169.254",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "[::1]",
    "[::]",
    "[fe80::1]",
    "[fc00::1]",
    "[ff02::1]",
    # Encodings of the above.
    "2130706433",
    "0x7f000001",
    "017700000001",
    "127.1",
    "0x7f.0.0.1",
    "0177.0.0.01",
    "127.0.0.1.",
    "0251.0376.0251.0376",
    "2852039166",
    "0xa9.254.0xa9.0376",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::ffff:169.254.169.254]",
    "[2002:7f00:1::1]",  # 6to4 around 127.0.0.1
    "[64:ff9b::a9fe:a9fe]",  # NAT64 around 169.254.169.254
    "0x.0x.0x.0x",
]


@pytest.mark.parametrize("host", NON_PUBLIC)
def test_refuses_non_public_addresses_in_any_spelling(host: str) -> None:
    with pytest.raises(UriRefused, match=r"not allowed"):
        check_uri(make_conf(), f"http://{host}/latest/meta-data/")


@pytest.mark.parametrize("host", NON_PUBLIC)
def test_allow_private_addresses_lifts_the_address_rule(host: str) -> None:
    check_uri(make_conf(allow_private_addresses=True), f"http://{host}/x")


@pytest.mark.parametrize(
    "host", ["8.8.8.8", "134744072", "[2606:4700::1111]", "[64:ff9b::808:808]", "[2002:808:808::1]"]
)
def test_public_addresses_pass_in_any_spelling(host: str) -> None:
    check_uri(make_conf(), f"http://{host}/x")


def test_listed_host_may_be_private_in_any_spelling() -> None:
    conf = make_conf(allowed_hosts=["127.0.0.1", "[::1]"])
    for uri in ("http://127.0.0.1/x", "http://2130706433/x", "http://[::ffff:7f00:1]/x"):
        check_uri(conf, uri)
    check_uri(conf, "http://[::1]/x")
    with pytest.raises(UriRefused, match=r"not allowed"):
        check_uri(conf, "http://127.0.0.2/x")


# --- downloading -------------------------------------------------------------------------------


async def test_streams_a_large_body_in_bounded_chunks(server: Server) -> None:
    body = payload(5 * MiB + 123)
    server.blobs["disk.img"] = body
    uri = server.url("/blob/disk.img")
    source = await web_download.stream(allowing(server), uri, chunk_size=256 * 1024)
    assert source.content_length == len(body)
    assert source.final_url == uri
    sizes = []
    received = bytearray()
    async for chunk in source:
        sizes.append(len(chunk))
        received += chunk
    assert received == body
    assert max(sizes) <= 256 * 1024 and len(sizes) >= 20
    with pytest.raises(StopAsyncIteration):  # exhausted, and closed by itself
        await anext(source)


async def test_allow_private_addresses_permits_loopback(server: Server) -> None:
    server.blobs["a"] = b"image bytes"
    conf = make_conf(allow_private_addresses=True, allowed_ports=[server.port])
    assert await download(conf, server.url("/blob/a")) == b"image bytes"
    assert await download(conf, server.url("/blob/a", host="2130706433")) == b"image bytes"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f000001", "[::ffff:127.0.0.1]"])
async def test_loopback_is_refused_by_default(server: Server, host: str) -> None:
    server.blobs["a"] = b"secret"
    with pytest.raises(UriRefused, match=r"not allowed"):
        await web_download.stream(
            make_conf(allowed_ports=[server.port]), server.url("/blob/a", host=host)
        )
    assert server.requests == []


async def test_unlisted_port_is_refused_before_connecting(server: Server) -> None:
    with pytest.raises(UriRefused, match=rf"port {server.port} is not allowed"):
        await web_download.stream(make_conf(allowed_hosts=["127.0.0.1"]), server.url("/blob/a"))
    assert server.requests == []


async def test_connects_to_the_checked_address_with_the_uri_host(server: Server) -> None:
    resolver = FakeResolver({"images.example.com": ["127.0.0.1"]})
    conf = make_conf(allowed_hosts=["images.example.com"], allowed_ports=[server.port])
    uri = server.url("/echo-host", host="images.example.com")
    body = await download(conf, uri, resolver=resolver)
    assert body == f"images.example.com:{server.port}".encode()
    assert resolver.calls == [("images.example.com", server.port)]


async def test_tries_the_next_checked_address_when_one_refuses(server: Server) -> None:
    # Nothing listens on 127.0.0.2: that connection is refused, 127.0.0.1 answers.
    resolver = FakeResolver({"images.example.com": ["127.0.0.2", "127.0.0.1"]})
    conf = make_conf(allowed_hosts=["images.example.com"], allowed_ports=[server.port])
    uri = server.url("/echo-host", host="images.example.com")
    assert (
        await download(conf, uri, resolver=resolver) == f"images.example.com:{server.port}".encode()
    )


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["10.0.0.7"], ["169.254.169.254"], ["8.8.8.8", "192.168.0.1"], ["::1"]],
)
async def test_refuses_names_resolving_to_non_public_addresses(addresses: list[str]) -> None:
    resolver = FakeResolver({"rebind.example.com": addresses})
    with pytest.raises(UriRefused, match=r"not publicly routable"):
        await web_download.stream(make_conf(), "http://rebind.example.com/x", resolver=resolver)


async def test_denied_address_also_refuses_names_resolving_to_it(server: Server) -> None:
    resolver = FakeResolver({"alias.example.com": ["127.0.0.1"]})
    conf = make_conf(
        allow_private_addresses=True, disallowed_hosts=["127.0.0.1"], allowed_ports=[server.port]
    )
    with pytest.raises(UriRefused, match=r"disallowed address"):
        await web_download.stream(
            conf, server.url("/blob/a", host="alias.example.com"), resolver=resolver
        )
    assert server.requests == []


async def test_unresolvable_and_slow_names_fail_cleanly() -> None:
    with pytest.raises(WebDownloadError, match=r"cannot resolve the host 'nowhere.example.com'"):
        await web_download.stream(
            make_conf(), "http://nowhere.example.com/x", resolver=FakeResolver({})
        )

    async def slow(host: str, port: int) -> list[web_download.IPAddress]:
        await asyncio.sleep(10)
        raise AssertionError("not reached")

    started = time.monotonic()
    with pytest.raises(WebDownloadError, match=r"took longer than 0.2 s"):
        await web_download.stream(
            make_conf(connect_timeout=0.2), "http://slow.example.com/x", resolver=slow
        )
    assert time.monotonic() - started < 2


# --- TLS ---------------------------------------------------------------------------------------


def _certificates(tmp_path: Any) -> tuple[str, str, str]:
    """A CA and a certificate it signed for images.example.com: (ca, cert, key) files."""
    pytest.importorskip("cryptography")
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("images.example.com")]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("Glimpse test CA", ca_key, "Glimpse test CA", ca_key, True)
    leaf = build("images.example.com", leaf_key, "Glimpse test CA", ca_key, False)
    paths = [str(tmp_path / name) for name in ("ca.pem", "cert.pem", "key.pem")]
    for path, data in zip(
        paths,
        [
            ca.public_bytes(serialization.Encoding.PEM),
            leaf.public_bytes(serialization.Encoding.PEM),
            leaf_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ],
        strict=True,
    ):
        with open(path, "wb") as file:
            file.write(data)
    return paths[0], paths[1], paths[2]


@pytest.fixture
def tls_server(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A Server speaking TLS as images.example.com, whose CA web-download trusts."""
    ca, cert, key = _certificates(tmp_path)
    client_context = ssl.create_default_context(cafile=ca)
    monkeypatch.setattr(web_download, "_tls_context", lambda: client_context)
    for server in _serve():
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(cert, key)
        server.socket = server_context.wrap_socket(server.socket, server_side=True)
        yield server


async def test_https_names_and_verifies_the_uri_host_not_the_address(tls_server: Server) -> None:
    resolver = FakeResolver(
        {"images.example.com": ["127.0.0.1"], "other.example.com": ["127.0.0.1"]}
    )
    conf = make_conf(
        allowed_hosts=["images.example.com", "other.example.com"],
        allowed_ports=[tls_server.port],
    )
    uri = f"https://images.example.com:{tls_server.port}/echo-host"
    body = await download(conf, uri, resolver=resolver)
    assert body == f"images.example.com:{tls_server.port}".encode()
    with pytest.raises(
        WebDownloadError, match=r"cannot connect to other\.example\.com.*certificate"
    ):
        await web_download.stream(
            conf, f"https://other.example.com:{tls_server.port}/echo-host", resolver=resolver
        )


# --- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_follows_redirects_within_the_rules(server: Server, code: int) -> None:
    server.blobs["a"] = b"moved image"
    uri = server.url(f"/redirect?code={code}&to=/blob/a")
    source = await web_download.stream(allowing(server), uri)
    assert b"".join([c async for c in source]) == b"moved image"
    assert source.final_url == server.url("/blob/a")


async def test_redirect_to_another_port_is_refused(server: Server, other_server: Server) -> None:
    other_server.blobs["a"] = b"internal"
    uri = server.url("/redirect?to=" + other_server.url("/blob/a"))
    with pytest.raises(
        UriRefused, match=rf"redirects to .*port {other_server.port} is not allowed"
    ):
        await web_download.stream(allowing(server), uri)
    assert other_server.requests == []


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "http://localhost:{port}/blob/a",
        "http://user:pw@127.0.0.1:{port}/blob/a",
    ],
)
async def test_redirect_out_of_the_rules_is_refused(server: Server, target: str) -> None:
    uri = server.url("/redirect?to=" + target.format(port=server.port).replace("&", "%26"))
    with pytest.raises(UriRefused, match=r"redirects to"):
        await web_download.stream(allowing(server), uri)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/", "http://10.0.0.1/", "http://[::1]/", "http://db.internal/"],
)
async def test_redirect_to_non_public_address_is_refused(
    server: Server, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand in for a public server: treat 127.0.0.1 alone as publicly routable.
    public = web_download._is_public
    monkeypatch.setattr(
        web_download,
        "_is_public",
        lambda address: address == ipaddress.ip_address("127.0.0.1") or public(address),
    )
    resolver = FakeResolver({"db.internal": ["192.168.10.10"]})
    conf = make_conf(allowed_ports=[server.port])
    with pytest.raises(UriRefused, match=r"redirects to .*not"):
        await web_download.stream(conf, server.url("/redirect?to=" + target), resolver=resolver)
    assert len(server.requests) == 1


async def test_redirect_chains_are_bounded(server: Server) -> None:
    conf = allowing(server, max_redirects=3)
    assert await download(conf, server.url("/chain/3")) == b"end of chain"
    with pytest.raises(WebDownloadError, match=r"redirects more than 3 times"):
        await web_download.stream(conf, server.url("/chain/4"))
    with pytest.raises(WebDownloadError, match=r"more than 0 times"):
        await web_download.stream(allowing(server, max_redirects=0), server.url("/chain/1"))


async def test_redirect_without_location_fails(server: Server) -> None:
    with pytest.raises(WebDownloadError, match=r"HTTP 302 without a Location") as info:
        await web_download.stream(allowing(server), server.url("/redirect?code=302"))
    assert info.value.status == 302


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 403, 500, 503])
async def test_error_status_fails_with_the_status(server: Server, status: int) -> None:
    with pytest.raises(WebDownloadError, match=rf"answered HTTP {status}") as info:
        await web_download.stream(allowing(server), server.url(f"/status/{status}"))
    assert info.value.status == status
    assert not isinstance(info.value, UriRefused)


async def test_stalled_body_fails_after_idle_timeout(server: Server) -> None:
    source = await web_download.stream(
        allowing(server, idle_timeout=0.3), server.url("/stall-body")
    )
    started = time.monotonic()
    with pytest.raises(WebDownloadError, match=r"sent nothing for 0.3 s"):
        async for _ in source:
            pass
    assert time.monotonic() - started < 3


async def test_stalled_headers_fail_after_idle_timeout(server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(WebDownloadError, match=r"no response within 0.3 s"):
        await web_download.stream(allowing(server, idle_timeout=0.3), server.url("/stall-headers"))
    assert time.monotonic() - started < 3


async def test_truncated_body_fails(server: Server) -> None:
    source = await web_download.stream(allowing(server), server.url("/short"))
    with pytest.raises(WebDownloadError, match=r"broke off"):
        async for _ in source:
            pass


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A loopback port whose accept queue is full, so new connections hang in SYN."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(16):
            filler = socket.socket()
            filler.settimeout(0.2)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break  # the queue is full
        else:
            pytest.skip("this kernel accepts every connection; cannot simulate a connect timeout")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_connect_timeout(unaccepting_port: int) -> None:
    conf = make_conf(
        allowed_hosts=["127.0.0.1"], allowed_ports=[unaccepting_port], connect_timeout=0.3
    )
    started = time.monotonic()
    with pytest.raises(WebDownloadError, match=r"timed out after 0.3 s"):
        await web_download.stream(conf, f"http://127.0.0.1:{unaccepting_port}/x")
    assert time.monotonic() - started < 3


async def test_refused_connection_fails_cleanly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        conf = make_conf(allowed_hosts=["127.0.0.1"], allowed_ports=[port])
        with pytest.raises(WebDownloadError, match=rf"cannot connect to 127.0.0.1:{port}"):
            await web_download.stream(conf, f"http://127.0.0.1:{port}/x")


async def test_closing_early_releases_the_download(server: Server) -> None:
    server.blobs["big"] = payload(4 * MiB)
    server.blobs["small"] = b"next"
    conf = allowing(server)
    async with await web_download.stream(conf, server.url("/blob/big"), chunk_size=4096) as source:
        async for chunk in source:
            assert len(chunk) == 4096
            break
    with pytest.raises(WebDownloadError, match=r"closed"):
        await source.open()
    assert await download(conf, server.url("/blob/small")) == b"next"


async def test_unknown_decompression_is_refused(server: Server) -> None:
    with pytest.raises(WebDownloadError, match=r"unknown decompression 'bzip2'"):
        await web_download.stream(allowing(server), server.url("/blob/a"), decompress="bzip2")
    assert server.requests == []


# --- decompression -----------------------------------------------------------------------------

COMPRESSORS = {
    "gzip": gzip.compress,
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ, preset=1),
    # With a checksum, as the zstd command writes by default: corruption is then detectable.
    "zstd": lambda data: zstd.compress(data, options={zstd.CompressionParameter.checksum_flag: 1}),
}


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
@pytest.mark.parametrize("mode", ["explicit", "auto"])
async def test_decompresses_on_the_fly(server: Server, codec: str, mode: str) -> None:
    body = payload(3 * MiB + 5)
    server.blobs["c"] = COMPRESSORS[codec](body)
    source = await web_download.stream(
        allowing(server),
        server.url("/blob/c"),
        decompress=codec if mode == "explicit" else "auto",
        chunk_size=64 * 1024,
    )
    assert source.content_length == len(server.blobs["c"])
    chunks = [chunk async for chunk in source]
    assert b"".join(chunks) == body
    assert max(len(c) for c in chunks) <= 64 * 1024


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
async def test_concatenated_members_are_all_decompressed(server: Server, codec: str) -> None:
    compress = COMPRESSORS[codec]
    server.blobs["c"] = compress(b"first part, ") + compress(b"second part")
    if codec != "zstd":  # the gzip and xz tools accept zero padding after the data
        server.blobs["c"] += bytes(8)
    assert await download(allowing(server), server.url("/blob/c"), decompress=codec) == (
        b"first part, second part"
    )


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
async def test_highly_compressed_data_stays_in_bounded_chunks(server: Server, codec: str) -> None:
    server.blobs["bomb"] = COMPRESSORS[codec](bytes(32 * MiB))
    assert len(server.blobs["bomb"]) < MiB
    source = await web_download.stream(
        allowing(server), server.url("/blob/bomb"), decompress="auto", chunk_size=MiB
    )
    total = 0
    async for chunk in source:
        assert len(chunk) <= MiB
        total += len(chunk)
    assert total == 32 * MiB


async def test_auto_passes_uncompressed_data_through(server: Server) -> None:
    for body in (payload(2 * MiB), b"QFI\xfb", b""):
        server.blobs["raw"] = body
        got = await download(allowing(server), server.url("/blob/raw"), decompress="auto")
        assert got == body


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
async def test_corrupt_or_truncated_compressed_data_fails(server: Server, codec: str) -> None:
    compressed = COMPRESSORS[codec](payload(MiB))
    server.blobs["truncated"] = compressed[: len(compressed) // 2]
    server.blobs["corrupt"] = compressed[:64] + bytes(512) + compressed[576:]
    server.blobs["not-compressed"] = b"plain text, not compressed at all"
    for name in ("truncated", "corrupt", "not-compressed"):
        with pytest.raises(WebDownloadError, match=codec):
            await download(allowing(server), server.url(f"/blob/{name}"), decompress=codec)
