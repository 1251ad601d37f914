"""Fetching a web-download source without letting it reach what it should not.

:func:`check_uri` applies ``[import_filtering_opts]`` to a URI without touching
the network; the API calls it before accepting an import. :func:`stream` fetches
the URI, applying the same checks again to every hop:

1. The URI is parsed once, here, and only the parsed parts are used afterwards,
   so no second parser can read a different host out of it. Hosts are
   canonicalised first: IDNA names are lower-cased ASCII, and IPv4 addresses are
   read as browsers and ``inet_aton`` read them (``2130706433``, ``0x7f000001``,
   ``017700000001`` and ``127.1`` are all 127.0.0.1; ``[::ffff:127.0.0.1]`` is
   too), so an allow or deny list cannot be dodged by spelling.
2. Glance's filter, in Glance's order: scheme, host, port; at each level a
   non-empty allow list wins and the deny list is ignored; a missing scheme or
   host is refused. **Ports are checked only when the URI names one**, as the
   spec and Glance's documentation say: ``http://host/`` uses port 80 even when
   ``allowed_ports`` does not list it. Glimpse adds: only http and https can be
   fetched, and URIs with credentials, whitespace or control characters are
   refused.
3. Glimpse's address rule: unless ``allow_private_addresses`` is set or the host
   is listed in ``allowed_hosts``, every address the host resolves to must be
   publicly routable (no loopback, link-local such as 169.254.169.254, private,
   shared, unspecified, multicast or reserved address, nor an IPv6 address
   embedding one). An IP literal is checked statically, by :func:`check_uri`.
4. The connection goes to the address that was checked, never to a name
   resolved again, which defeats DNS rebinding; the ``Host`` header and TLS SNI
   and certificate check still use the URI's host name.
5. Redirects (301, 302, 303, 307, 308) are followed by hand, at most
   ``max_redirects`` of them, each hop going through steps 1 to 4 again.

:func:`send` does the same for a thread without an event loop, and returns the
first answer that is not a redirect whatever its status: the http store reads
every http(s) location through it (``glimpse.store.http``).

Errors::

    WebDownloadError    the download cannot start or broke off; the message
    │                   says why in words a user can act on (``status`` holds
    │                   the HTTP status when the source answered with an error)
    ├── UriRefused      [import_filtering_opts] refuses the URI or a redirect
    └── Unreachable     the host does not resolve, connect or answer in time
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import quote, urljoin, urlsplit

import httpx
from oslo_config import cfg

from glimpse.imports import decompression

LOG = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Resolves ``(host, port)`` to addresses; raise :class:`OSError` when it cannot.
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
#: The same without an event loop, for :func:`send`.
SyncResolver = Callable[[str, int], Sequence[IPAddress]]

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DECOMPRESS_CHOICES = decompression.MODES

_USER_AGENT = "Glimpse-web-download"
# Whitespace, controls and backslashes: URL parsers disagree about all three.
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_HOST_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_DECIMAL = re.compile(r"[0-9]+")
_OCTAL = re.compile(r"[0-7]+")
_HEX = re.compile(r"[0-9a-f]*")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class WebDownloadError(Exception):
    """A web-download cannot start or broke off; the message says why."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The HTTP status of the source's final answer, when that was the failure.
        self.status = status


class UriRefused(WebDownloadError):
    """``[import_filtering_opts]`` does not allow the URI (or a hop it redirects to)."""


class Unreachable(WebDownloadError):
    """The host does not resolve, accept a connection or answer in time."""


# --- the filter ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UriFilter:
    """``[import_filtering_opts]``, read once per check or download (or once by the http store)."""

    allowed_schemes: frozenset[str]
    disallowed_schemes: frozenset[str]
    allowed_hosts: frozenset[str]
    disallowed_hosts: frozenset[str]
    allowed_ports: frozenset[int]
    disallowed_ports: frozenset[int]
    allow_private_addresses: bool
    connect_timeout: float
    idle_timeout: float
    max_redirects: int

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> UriFilter:
        group = conf.import_filtering_opts
        return cls(
            allowed_schemes=frozenset(s.strip().lower() for s in group.allowed_schemes),
            disallowed_schemes=frozenset(s.strip().lower() for s in group.disallowed_schemes),
            allowed_hosts=frozenset(_listed_host(h) for h in group.allowed_hosts),
            disallowed_hosts=frozenset(_listed_host(h) for h in group.disallowed_hosts),
            allowed_ports=frozenset(group.allowed_ports),
            disallowed_ports=frozenset(group.disallowed_ports),
            allow_private_addresses=bool(group.allow_private_addresses),
            connect_timeout=float(group.connect_timeout),
            idle_timeout=float(group.idle_timeout),
            max_redirects=int(group.max_redirects),
        )


@dataclass(frozen=True)
class _Target:
    """One hop of a download: the parts of a URI that passed the filter."""

    scheme: str
    #: Canonical host: lower-case ASCII name without trailing dot, or an IP address.
    host: str
    #: The host as an IP address, when the URI spelled one (in any encoding).
    address: IPAddress | None
    #: The port the URI names; None when it names none.
    port: int | None
    #: Path and query, percent-encoded ASCII, never empty.
    path: str

    @property
    def connect_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.scheme]

    @property
    def authority(self) -> str:
        """The ``Host`` header: the host (bracketed if IPv6) and the port if the URI names one."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def check_uri(conf: cfg.ConfigOpts, uri: str) -> None:
    """Apply ``[import_filtering_opts]`` to ``uri`` without touching the network.

    Raises :class:`UriRefused`, whose message says what is wrong. Host names are
    not resolved here; :func:`stream` and :func:`send` check the addresses they
    resolve to.
    """
    _filter(UriFilter.from_conf(conf), uri)


def _filter(rules: UriFilter, uri: str) -> _Target:
    if not isinstance(uri, str) or not uri:
        raise UriRefused("the URI is empty.")
    if _UNSAFE_CHARS.search(uri):
        raise UriRefused("the URI contains whitespace, control characters or backslashes.")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise UriRefused(f"the URI cannot be parsed ({exc}).") from None

    scheme = parts.scheme.lower()
    if not scheme:
        raise UriRefused("the URI has no scheme; use http:// or https://.")
    if rules.allowed_schemes:
        if scheme not in rules.allowed_schemes:
            allowed = ", ".join(sorted(rules.allowed_schemes))
            raise UriRefused(f"the scheme '{scheme}' is not allowed (allowed: {allowed}).")
    elif scheme in rules.disallowed_schemes:
        raise UriRefused(f"the scheme '{scheme}' is not allowed.")
    if scheme not in DEFAULT_PORTS:
        raise UriRefused(f"the scheme '{scheme}' cannot be downloaded; use http or https.")

    if not parts.hostname:
        raise UriRefused("the URI has no host.")
    host, address = _canonical_host(parts.hostname)
    if rules.allowed_hosts:
        if host not in rules.allowed_hosts:
            raise UriRefused(f"the host '{host}' is not allowed.")
    elif host in rules.disallowed_hosts:
        raise UriRefused(f"the host '{host}' is not allowed.")

    if port is not None:
        if port == 0:
            raise UriRefused("port 0 cannot be connected to.")
        if rules.allowed_ports:
            if port not in rules.allowed_ports:
                allowed = ", ".join(str(p) for p in sorted(rules.allowed_ports))
                raise UriRefused(f"the port {port} is not allowed (allowed: {allowed}).")
        elif port in rules.disallowed_ports:
            raise UriRefused(f"the port {port} is not allowed.")

    if parts.username is not None or parts.password is not None:
        raise UriRefused("credentials in the URI are not supported.")
    if address is not None and not _private_allowed(rules, host) and not _is_public(address):
        raise UriRefused(f"the address {host} is {_describe(address)}, which is not allowed.")

    path = quote(parts.path or "/", safe="/%!$&'()*+,;=:@~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/?%!$&'()*+,;=:@~")
    return _Target(scheme=scheme, host=host, address=address, port=port, path=path)


def _canonical_host(hostname: str) -> tuple[str, IPAddress | None]:
    """The host's canonical text, and its address when it spells an IP address."""
    if ":" in hostname:  # urlsplit only yields a colon from an [IPv6] literal
        try:
            v6 = ipaddress.IPv6Address(hostname)
        except ValueError:
            raise UriRefused(f"'{hostname}' is not a valid IPv6 address.") from None
        if v6.scope_id:
            raise UriRefused("IPv6 zone identifiers are not supported.")
        if v6.ipv4_mapped is not None:
            return str(v6.ipv4_mapped), v6.ipv4_mapped
        return str(v6), v6
    name = hostname.lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise UriRefused(f"the host '{hostname}' is not a valid host name.") from None
    try:
        v4 = _parse_ipv4(name)
    except ValueError:
        raise UriRefused(f"the host '{hostname}' is not a valid IPv4 address.") from None
    if v4 is not None:
        return str(v4), v4
    name = name.removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise UriRefused(f"the host '{hostname}' is not a valid host name.")
    return name, None


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Read ``host`` as the WHATWG URL standard (and ``inet_aton``) reads IPv4 hosts.

    Returns None for a host name. A host whose last label is a number is an IPv4
    address or nothing: ValueError when it is out of range or malformed.
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if _ipv4_number(parts[-1]) is None:
        return None
    if len(parts) > 4:
        raise ValueError(host)
    numbers = [_ipv4_number(part) for part in parts]
    if any(n is None for n in numbers):
        raise ValueError(host)
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise ValueError(host)
    value = values[-1]
    for index, n in enumerate(values[:-1]):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_number(part: str) -> int | None:
    if part[:2] in ("0x", "0X"):
        digits = part[2:]
        return int(digits or "0", 16) if _HEX.fullmatch(digits) else None
    if len(part) > 1 and part.startswith("0"):
        return int(part[1:], 8) if _OCTAL.fullmatch(part[1:]) else None
    return int(part) if _DECIMAL.fullmatch(part) else None


def _listed_host(entry: str) -> str:
    """An ``allowed_hosts``/``disallowed_hosts`` entry, canonicalised like a URI's host."""
    text = entry.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return _canonical_host(text)[0]
    except UriRefused:
        return text


def _private_allowed(rules: UriFilter, host: str) -> bool:
    return rules.allow_private_addresses or host in rules.allowed_hosts


def _is_public(address: IPAddress) -> bool:
    """Whether ``address`` is publicly routable unicast, embedded IPv4 included."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _is_public(address.ipv4_mapped)
        if address in _NAT64:  # DNS64 answers: judge the IPv4 address they translate to
            return _is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and not _is_public(address.sixtofour):
            return False
        if address.is_site_local:
            return False
    if (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    ):
        return False
    return address.is_global


def _describe(address: IPAddress) -> str:
    for kind, flag in (
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("an unspecified address", address.is_unspecified),
        ("a multicast address", address.is_multicast),
        ("a private address", address.is_private),
    ):
        if flag:
            return kind
    return "not a publicly routable address"


# --- the hops ----------------------------------------------------------------------------------


class _Route:
    """The hops of one fetch: each URI filtered, redirects counted; no I/O here."""

    def __init__(self, rules: UriFilter, uri: str) -> None:
        self.rules = rules
        self.uri = uri
        #: The URI of the current hop.
        self.url = uri
        self.redirects = 0

    def target(self) -> _Target:
        """The current hop, once it passed the filter."""
        try:
            return _filter(self.rules, self.url)
        except UriRefused as exc:
            raise self.refused(exc) from None

    def addresses(self, target: _Target, resolved: Sequence[IPAddress]) -> list[IPAddress]:
        """The addresses of ``resolved`` to connect to, once every one passed the filter."""
        try:
            return _checked_addresses(self.rules, target, resolved)
        except UriRefused as exc:
            raise self.refused(exc) from None

    def refused(self, exc: UriRefused) -> UriRefused:
        if not self.redirects:
            return exc
        return UriRefused(f"it redirects to {self.url}, which is refused: {exc}")

    def redirect(self, response: httpx.Response) -> None:
        """Move to the hop ``response`` (a redirect) points to."""
        status = response.status_code
        location = response.headers.get("location")
        if not location:
            raise WebDownloadError(
                f"{self.url} answered HTTP {status} without a Location header.", status=status
            )
        if self.redirects >= self.rules.max_redirects:
            raise WebDownloadError(
                f"{self.uri} redirects more than {self.rules.max_redirects} times."
            )
        self.redirects += 1
        self.url = urljoin(self.url, location.strip())
        LOG.debug("%s redirected to %s", self.uri, self.url)


def _checked_addresses(
    rules: UriFilter, target: _Target, resolved: Sequence[IPAddress]
) -> list[IPAddress]:
    addresses: list[IPAddress] = []
    for found in resolved:
        address = found
        if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
            address = found.ipv4_mapped
        if not rules.allowed_hosts and str(address) in rules.disallowed_hosts:
            raise UriRefused(f"the host '{target.host}' resolves to a disallowed address.")
        if not _private_allowed(rules, target.host) and not _is_public(address):
            # Which address stays unsaid: the answer would map internal DNS for a user.
            raise UriRefused(
                f"the host '{target.host}' resolves to an address that is not publicly "
                "routable, which is not allowed."
            )
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Unreachable(f"the host '{target.host}' has no address.")
    return addresses


def _unresolved(target: _Target, exc: OSError) -> Unreachable:
    return Unreachable(f"cannot resolve the host '{target.host}': {exc.strerror or exc}.")


def _pinned_request(
    client: httpx.Client | httpx.AsyncClient,
    method: str,
    target: _Target,
    address: IPAddress | None,
    headers: Mapping[str, str],
) -> httpx.Request:
    """A request for ``target`` sent to ``address`` (to the host name when None: a proxy's)."""
    if address is None:
        host = target.authority
    else:
        bare = f"[{address}]" if address.version == 6 else str(address)
        host = f"{bare}:{target.connect_port}"
    return client.build_request(
        method,
        f"{target.scheme}://{host}{target.path}",
        headers={**headers, "Host": target.authority},
        # TLS must name and verify the URI's host, not the address we connect to.
        extensions={"sni_hostname": target.host} if target.address is None else {},
    )


def _send_failure(
    exc: httpx.HTTPError, target: _Target, timeout: httpx.Timeout
) -> tuple[WebDownloadError, bool]:
    """The error a failed request means, and whether another address of the host may answer."""
    if isinstance(exc, httpx.ConnectTimeout):
        return Unreachable(
            f"connecting to {target.authority} timed out after {timeout.connect or 0:g} s."
        ), True
    if isinstance(exc, httpx.ConnectError):
        return Unreachable(f"cannot connect to {target.authority}: {_reason(exc)}."), True
    if isinstance(exc, httpx.TimeoutException):
        return Unreachable(
            f"{target.authority} sent no response within {timeout.read or 0:g} s."
        ), False
    return WebDownloadError(f"the request to {target.authority} failed: {_reason(exc)}."), False


# --- without an event loop: the http store --------------------------------------------------


def _system_resolve_sync(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def send(
    rules: UriFilter,
    client: httpx.Client,
    method: str,
    uri: str,
    *,
    headers: Mapping[str, str] | None = None,
    credentials: tuple[str, str] | None = None,
    proxied_schemes: frozenset[str] = frozenset(),
    resolver: SyncResolver | None = None,
) -> httpx.Response:
    """Send ``method`` to ``uri`` as :func:`stream` fetches, and return the first answer that
    is not a redirect, whatever its status, its body not yet read (close it).

    Every hop passes the filter and its host's addresses are checked; the request
    goes to one of those addresses. ``client`` must not follow redirects nor trust
    the environment's proxies. ``credentials`` (user, password) are sent, as HTTP
    basic auth, to the first hop's scheme, host and port only. For a scheme in
    ``proxied_schemes`` the request goes to the client's proxy by host name: the
    hop is still filtered and its addresses checked here, but the proxy resolves
    the name again. Raises :class:`UriRefused`, :class:`Unreachable` or
    :class:`WebDownloadError`.
    """
    resolve = resolver or _system_resolve_sync
    route = _Route(rules, uri)
    first: tuple[str, str, int] | None = None
    while True:
        target = route.target()
        if target.address is not None:
            addresses = [target.address]
        else:
            try:
                resolved = resolve(target.host, target.connect_port)
            except OSError as exc:
                raise _unresolved(target, exc) from None
            addresses = route.addresses(target, resolved)
        origin = (target.scheme, target.host, target.connect_port)
        first = first or origin
        auth = httpx.BasicAuth(*credentials) if credentials and origin == first else None
        pinned: Sequence[IPAddress | None] = addresses
        if target.scheme in proxied_schemes:
            pinned = [None]
        response = _send_sync(client, method, target, pinned, headers or {}, auth)
        if response.status_code not in REDIRECT_STATUSES:
            return response
        response.close()
        route.redirect(response)


def _send_sync(
    client: httpx.Client,
    method: str,
    target: _Target,
    addresses: Sequence[IPAddress | None],
    headers: Mapping[str, str],
    auth: httpx.Auth | None,
) -> httpx.Response:
    failure: WebDownloadError | None = None
    for address in addresses:
        request = _pinned_request(client, method, target, address, headers)
        try:
            return client.send(request, stream=True, auth=auth)
        except httpx.HTTPError as exc:
            failure, next_address = _send_failure(exc, target, client.timeout)
            if not next_address:
                raise failure from None
    assert failure is not None
    raise failure


# --- the download ----------------------------------------------------------------------------


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # httpx's default (certifi's CAs, hostname checks); loading it costs more than a request.
    return httpx.create_ssl_context()


async def _system_resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def stream(
    conf: cfg.ConfigOpts,
    uri: str,
    *,
    decompress: str | None = None,
    chunk_size: int = 1 << 20,
    resolver: Resolver | None = None,
) -> DownloadStream:
    """Connect to ``uri`` (following redirects) and return its body as an async iterator.

    Once this returns, the source has answered 2xx and ``content_length`` and
    ``final_url`` of the result are known; iterating yields chunks of at most
    ``chunk_size`` bytes, decompressed on the fly when ``decompress`` is "gzip",
    "xz", "zstd" or "auto" (by magic bytes; data in no known format passes
    through unchanged). Raises :class:`WebDownloadError` (:class:`UriRefused`
    for filter refusals) here, or while iterating if the download breaks off.
    Close the result with ``aclose()`` (or ``async with``) if you stop early; it
    closes itself when exhausted or when iterating fails. ``resolver`` replaces
    the system resolver (tests).
    """
    download = DownloadStream(
        conf, uri, decompress=decompress, chunk_size=chunk_size, resolver=resolver
    )
    await download.open()
    return download


class DownloadStream(AsyncIterator[bytes]):
    """The body of one web-download; see :func:`stream`."""

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        uri: str,
        *,
        decompress: str | None = None,
        chunk_size: int = 1 << 20,
        resolver: Resolver | None = None,
    ) -> None:
        if decompress is not None and decompress not in DECOMPRESS_CHOICES:
            choices = ", ".join(DECOMPRESS_CHOICES)
            raise WebDownloadError(f"unknown decompression '{decompress}' (one of: {choices}).")
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.uri = uri
        #: The URI the body comes from, after redirects.
        self.final_url = uri
        #: The final response's Content-Length (bytes as served, before decompression).
        self.content_length: int | None = None
        self._rules = UriFilter.from_conf(conf)
        self._decompress = decompress
        self._chunk_size = chunk_size
        self._resolve: Resolver = resolver or _system_resolve
        self._client: httpx.AsyncClient | None = None
        self._response: httpx.Response | None = None
        self._body: AsyncGenerator[bytes, None] | None = None
        self._closed = False

    async def open(self) -> None:
        """Connect and follow redirects up to a 2xx answer (done by :func:`stream`)."""
        if self._closed:
            raise WebDownloadError("this download is closed.")
        if self._body is not None:
            return
        rules = self._rules
        self._client = httpx.AsyncClient(
            trust_env=False,  # a proxy would connect to names we have not checked
            follow_redirects=False,
            verify=_tls_context(),
            timeout=httpx.Timeout(
                connect=rules.connect_timeout,
                read=rules.idle_timeout,
                write=rules.idle_timeout,
                pool=rules.connect_timeout,
            ),
            headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"},
        )
        try:
            self._response = await self._follow(self._client)
        except BaseException:
            await self.aclose()
            raise
        length = self._response.headers.get("content-length", "")
        self.content_length = int(length) if length.isdigit() else None
        body = self._raw_body(self._response)
        self._body = body if self._decompress is None else self._decoded(body, self._decompress)

    def __aiter__(self) -> DownloadStream:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        if self._body is None:
            await self.open()
        assert self._body is not None
        try:
            return await anext(self._body)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Release the connection; safe to call more than once."""
        self._closed = True
        body, response, client = self._body, self._response, self._client
        self._body = self._response = self._client = None
        if body is not None:
            await body.aclose()
        if response is not None:
            await response.aclose()
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> DownloadStream:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _follow(self, client: httpx.AsyncClient) -> httpx.Response:
        route = _Route(self._rules, self.uri)
        while True:
            target = route.target()
            addresses = route.addresses(target, await self._resolved(target))
            response = await self._request(client, target, addresses)
            status = response.status_code
            if status in REDIRECT_STATUSES:
                await response.aclose()
                route.redirect(response)
                continue
            if not 200 <= status < 300:
                await response.aclose()
                reason = f" {response.reason_phrase}" if response.reason_phrase else ""
                raise WebDownloadError(
                    f"{route.url} answered HTTP {status}{reason}.", status=status
                )
            self.final_url = route.url
            return response

    async def _request(
        self, client: httpx.AsyncClient, target: _Target, addresses: Sequence[IPAddress]
    ) -> httpx.Response:
        """Send the GET to the first of ``addresses`` that accepts a connection."""
        failure: WebDownloadError | None = None
        for address in addresses:
            request = _pinned_request(client, "GET", target, address, {})
            try:
                return await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                failure, next_address = _send_failure(exc, target, client.timeout)
                if not next_address:
                    raise failure from None
        assert failure is not None
        raise failure

    async def _resolved(self, target: _Target) -> Sequence[IPAddress]:
        """What ``target``'s host resolves to, in resolver order (unchecked)."""
        if target.address is not None:
            return [target.address]  # _filter has checked it
        timeout = self._rules.connect_timeout
        try:
            return await asyncio.wait_for(self._resolve(target.host, target.connect_port), timeout)
        except TimeoutError:
            raise Unreachable(
                f"resolving '{target.host}' took longer than {timeout:g} s."
            ) from None
        except OSError as exc:
            raise _unresolved(target, exc) from None

    async def _raw_body(self, response: httpx.Response) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in response.aiter_raw(self._chunk_size):
                yield chunk
        except httpx.TimeoutException:
            raise WebDownloadError(
                f"the source sent nothing for {self._rules.idle_timeout:g} s; "
                "the download was abandoned."
            ) from None
        except httpx.HTTPError as exc:
            raise WebDownloadError(f"the download broke off: {_reason(exc)}.") from None

    async def _decoded(
        self, raw: AsyncGenerator[bytes, None], mode: str
    ) -> AsyncGenerator[bytes, None]:
        try:
            async with contextlib.aclosing(
                decompression.decompressed(raw, mode, self._chunk_size)
            ) as pieces:
                async for piece in pieces:
                    yield piece
        except decompression.CorruptData as exc:
            raise WebDownloadError(str(exc)) from None
        finally:
            await raw.aclose()


def _reason(exc: Exception) -> str:
    return str(exc).rstrip(".") or type(exc).__name__


__all__ = [
    "DECOMPRESS_CHOICES",
    "DownloadStream",
    "Resolver",
    "SyncResolver",
    "Unreachable",
    "UriFilter",
    "UriRefused",
    "WebDownloadError",
    "check_uri",
    "send",
    "stream",
]
