"""Where clients reach this service, and the one function that builds absolute URLs.

Behind a TLS-terminating proxy the server sees plain HTTP from the proxy. With
``[oslo_middleware] enable_proxy_headers_parsing`` (off by default, as in Glance) the
proxy's headers say what the client used: RFC 7239 ``Forwarded`` (its first element,
the proxy nearest the client; ``proto``, ``host`` and ``for``) or, when that header is
absent, ``X-Forwarded-Proto``, ``X-Forwarded-Host`` and ``X-Forwarded-For``; and
``X-Forwarded-Prefix`` for a path the proxy serves the API under.

Absolute URLs (``Location`` headers, the versions document) are built by :func:`url`
from what :func:`resolve` found. The relative links in bodies (``first``, ``next``,
``self``, ``file``, ``schema``) stay as Glance writes them, ``/v2/...`` without any
prefix: glanceclient and openstacksdk resolve them against the endpoint they were
given, which already carries the prefix.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import HTTPConnection

from glimpse import errors

#: Where :func:`resolve`'s answer is kept in the ASGI scope.
SCOPE_KEY = "glimpse.origin"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEMES = ("http", "https")
# host[:port]: a registered name or IPv4 address, or a bracketed IPv6 address.
_HOST = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
# Path segments of RFC 3986 characters, percent-escapes included; no query or fragment.
_PREFIX = re.compile(r"^(?:/[A-Za-z0-9\-._~!$&'()*+,;=:@%]*)*$")
_FORWARDED_PAIR = re.compile(
    r'\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,"\s]*)\s*(;|,|$)'
)


@dataclasses.dataclass(frozen=True)
class Origin:
    """The scheme, host and path prefix of this service as the client reaches it."""

    scheme: str
    host: str
    prefix: str
    #: The client's address: the proxy's record of it when trusted, else the peer's.
    client: str | None

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}{self.prefix}"


def url(connection: HTTPConnection, path: str) -> str:
    """The absolute URL of ``path`` (starting with ``/``) as the client reaches it."""
    origin: Origin = connection.scope[SCOPE_KEY]
    return origin.base_url + path


def resolve(scope: Mapping[str, Any], trust_proxy_headers: bool) -> Origin:
    """This request's :class:`Origin`; raises :class:`~glimpse.errors.BadRequest` when the
    Host header or a proxy header to be trusted is malformed."""
    headers = _headers(scope["headers"])
    origin = _own(scope, headers)
    if not trust_proxy_headers:
        return dataclasses.replace(origin, host=_without_default_port(origin.host, origin.scheme))
    scheme, host, client = origin.scheme, origin.host, origin.client
    if "forwarded" in headers:
        element = _first_forwarded_element(", ".join(headers["forwarded"]))
        proto, forwarded_host = element.get("proto"), element.get("host")
        forwarded_for = element.get("for")
        what = "the Forwarded header"
    else:
        proto = _first_item(headers.get("x-forwarded-proto"))
        forwarded_host = _first_item(headers.get("x-forwarded-host"))
        forwarded_for = _first_item(headers.get("x-forwarded-for"))
        what = None
    if proto:
        if proto.lower() not in _SCHEMES:
            raise errors.BadRequest(
                f"Invalid protocol {proto!r} in {what or 'the X-Forwarded-Proto header'}."
            )
        scheme = proto.lower()
    if forwarded_host:
        if not _HOST.match(forwarded_host):
            raise errors.BadRequest(
                f"Invalid host {forwarded_host!r} in {what or 'the X-Forwarded-Host header'}."
            )
        host = forwarded_host
    if forwarded_for:
        client = forwarded_for
    prefix = origin.prefix
    sent_prefix = _first_value(headers.get("x-forwarded-prefix"))
    if sent_prefix:
        if not sent_prefix.startswith("/") or not _PREFIX.match(sent_prefix):
            raise errors.BadRequest(
                f"Invalid path {sent_prefix!r} in the X-Forwarded-Prefix header."
            )
        prefix = sent_prefix.rstrip("/") + prefix
    return Origin(
        scheme=scheme, host=_without_default_port(host, scheme), prefix=prefix, client=client
    )


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in raw:
        headers.setdefault(name.decode("latin-1").lower(), []).append(
            value.decode("latin-1").strip()
        )
    return headers


def _own(scope: Mapping[str, Any], headers: Mapping[str, list[str]]) -> Origin:
    """The origin as the server itself saw the request: its scheme, the Host header."""
    scheme = str(scope.get("scheme") or "http")
    host = _first_value(headers.get("host"))
    if host and not _HOST.match(host):
        # RFC 9112 section 3.2: an invalid Host is 400. It would otherwise become the
        # authority of the Location and versions links, or fail to be a header at all.
        raise errors.BadRequest(f"Invalid host {host!r} in the Host header.")
    if not host:
        server = scope.get("server")
        if server and server[1] is not None:
            name = f"[{server[0]}]" if ":" in server[0] else server[0]
            host = f"{name}:{server[1]}"
        else:
            host = str(server[0]) if server else "localhost"
    peer = scope.get("client")
    return Origin(
        scheme=scheme,
        host=host,
        prefix=str(scope.get("root_path") or "").rstrip("/"),
        client=str(peer[0]) if peer else None,
    )


def _without_default_port(host: str, scheme: str) -> str:
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and not name.endswith(":") and "]" not in port:
        if int(port) == _DEFAULT_PORTS.get(scheme):
            return name
    return host


def _first_value(values: list[str] | None) -> str | None:
    return values[0] if values else None


def _first_item(values: list[str] | None) -> str | None:
    """The first entry of a comma-separated list header: the one nearest the client."""
    if not values:
        return None
    return values[0].split(",")[0].strip() or None


def _first_forwarded_element(value: str) -> dict[str, str]:
    """The parameters of the first element of a ``Forwarded`` header (RFC 7239)."""
    params: dict[str, str] = {}
    at = 0
    while at < len(value):
        match = _FORWARDED_PAIR.match(value, at)
        if match is None:
            raise errors.BadRequest("Invalid Forwarded header.")
        name, raw, separator = match.groups()
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params.setdefault(name.lower(), raw)
        if separator != ";":
            break
        at = match.end()
    return params
