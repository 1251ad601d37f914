"""The http store: read-only access to image data at http(s) URLs.

Locations are the URLs themselves (``http://host/path``, ``https://...``), as
in Glance. A URL may carry ``user:password@``; show people :func:`public_uri`.
Nothing is ever written or deleted: :meth:`HttpStore.begin_write` and
:meth:`HttpStore.delete` raise :class:`~glimpse.store.errors.StoreUnsupported`,
and ``read_only`` says so up front.

Every request goes through web-download's filter (``[import_filtering_opts]``,
:func:`glimpse.imports.web_download.send`): each hop, redirects included, must
pass it, the host's addresses are checked, and the connection goes to an address
that passed (``Host`` and TLS still name the host). A refused hop raises
:class:`~glimpse.store.errors.StoreRefused` before anything is sent to it.
"""

from __future__ import annotations

import dataclasses
import ssl
import threading
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from oslo_config import cfg

from glimpse.imports import web_download
from glimpse.store.base import (
    DEFAULT_CHUNK_SIZE,
    StoreDriver,
    StoreWriter,
    check_read_range,
)
from glimpse.store.errors import (
    StoreAuthError,
    StoreError,
    StoreNotFound,
    StoreRefused,
    StoreUnavailable,
    StoreUnsupported,
)

#: Glance follows at most this many redirects too.
MAX_REDIRECTS = 5

# Byte counts and ranges must mean the stored bytes, not a compressed transfer.
_IDENTITY = {"Accept-Encoding": "identity"}


def options() -> list[cfg.Opt]:
    """The store's options, with Glance's names."""
    return [
        cfg.StrOpt(
            "https_ca_certificates_file",
            help="Specify the path to the CA bundle file to use in verifying the remote "
            "server certificate.",
        ),
        cfg.BoolOpt(
            "https_insecure",
            default=False,
            help="Set verification of the remote server certificate: when True, the "
            "certificate is not verified. Glance defaults to True; Glimpse verifies.",
        ),
        cfg.DictOpt(
            "http_proxy_information",
            default={},
            help="The http/https proxy information to be used to connect to the remote "
            "server, as scheme:proxy pairs (e.g. 'http:10.0.0.1:3128, https:10.0.0.1:1080').",
        ),
    ]


def public_uri(uri: str) -> str:
    """``uri`` without a ``user:password@`` part."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _status_error(response: httpx.Response, action: str) -> StoreError:
    message = f"Cannot {action}: HTTP {response.status_code} {response.reason_phrase}"
    if response.status_code in (404, 410):
        return StoreNotFound(message)
    if response.status_code in (401, 403, 407):
        return StoreAuthError(message)
    if response.status_code in (408, 429) or response.status_code >= 500:
        return StoreUnavailable(message)
    return StoreError(message)


class HttpStore(StoreDriver):
    """Reads image data from any http(s) URL, with ranged reads through ``Range``.

    A server that ignores ``Range`` still works: the unwanted bytes are read
    and dropped. ``uri_filter`` decides which URLs (and redirects) it may reach;
    whether users may set a location at all is the API's policy.
    """

    scheme = "http"
    #: Every scheme of the locations this driver reads.
    schemes = ("http", "https")
    store_type = "http"
    read_only = True

    def __init__(
        self,
        *,
        uri_filter: web_download.UriFilter,
        ca_certificates_file: str | None = None,
        insecure: bool = False,
        proxies: dict[str, str] | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        store_id: str = "http",
    ) -> None:
        self.store_id = store_id
        self._filter = dataclasses.replace(uri_filter, max_redirects=MAX_REDIRECTS)
        self._tls = _tls_context(ca_certificates_file, insecure)
        self._proxies = {
            scheme: proxy if "://" in proxy else f"http://{proxy}"
            for scheme, proxy in (proxies or {}).items()
        }
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        # One client per thread: connections are not shared between threads.
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"HttpStore(store_id={self.store_id!r})"

    def public_uri(self, uri: str) -> str:
        """``uri`` without credentials; see :func:`public_uri`."""
        return public_uri(uri)

    def begin_write(self, image_id: str, size: int | None = None) -> StoreWriter:
        raise StoreUnsupported("The http store is read-only: image data cannot be uploaded to it")

    def delete(self, uri: str) -> None:
        raise StoreUnsupported("The http store is read-only: its image data cannot be deleted")

    def read(
        self,
        uri: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        check_read_range(offset, length, chunk_size)
        public = self._check(uri)
        if length == 0:
            self.stat(uri)  # still report a missing object
            return iter(())
        headers = dict(_IDENTITY)
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{last}"
        response = self._request("GET", uri, headers, public)
        if response.status_code == 416:
            response.close()
            return iter(())  # the object exists; the range starts at or past its end
        if response.status_code == 206:
            start = _content_range_start(response)
            if start != offset:
                response.close()
                raise StoreError(f"{public} answered a range starting at {start}, not {offset}")
            return _HttpChunks(response, 0, length, chunk_size, public)
        if response.status_code == 200:
            return _HttpChunks(response, offset, length, chunk_size, public)
        response.close()
        raise _status_error(response, f"read {public}")

    def stat(self, uri: str) -> int:
        public = self._check(uri)
        response = self._request("HEAD", uri, dict(_IDENTITY), public)
        response.close()
        if response.status_code in (405, 501):
            # No HEAD here: the headers of a GET tell the same.
            response = self._request("GET", uri, dict(_IDENTITY), public)
            response.close()
        if response.status_code != 200:
            raise _status_error(response, f"stat {public}")
        try:
            return int(response.headers["Content-Length"])
        except (KeyError, ValueError):
            raise StoreError(f"{public} does not report its size (no Content-Length)") from None

    def _check(self, uri: str) -> str:
        """Refuse URIs that are not http(s); return the URI fit for messages."""
        if urlsplit(uri).scheme not in ("http", "https"):
            raise StoreNotFound(f"{public_uri(uri)!r} is not an http(s) location")
        return public_uri(uri)

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(
                verify=self._tls,
                timeout=self._timeout,
                follow_redirects=False,  # web_download.send follows them, checking each hop
                trust_env=False,  # an environment's proxy would reach names we did not check
                mounts={
                    f"{scheme}://": httpx.HTTPTransport(verify=self._tls, proxy=proxy)
                    for scheme, proxy in self._proxies.items()
                },
            )
            self._local.client = client
        return client

    def _request(
        self, method: str, uri: str, headers: dict[str, str], public: str
    ) -> httpx.Response:
        parts = urlsplit(uri)
        credentials = None
        if parts.username is not None:
            credentials = (unquote(parts.username), unquote(parts.password or ""))
        try:
            return web_download.send(
                self._filter,
                self._client(),
                method,
                public,
                headers=headers,
                credentials=credentials,
                proxied_schemes=frozenset(self._proxies),
            )
        except web_download.UriRefused as exc:
            raise StoreRefused(exc.message) from None
        except web_download.Unreachable as exc:
            raise StoreUnavailable(f"Cannot {method} {public}: {exc.message}") from None
        except web_download.WebDownloadError as exc:
            raise StoreError(f"Cannot {method} {public}: {exc.message}") from None


def _tls_context(ca_certificates_file: str | None, insecure: bool) -> ssl.SSLContext:
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_certificates_file:
        return ssl.create_default_context(cafile=ca_certificates_file)
    return httpx.create_ssl_context()


def _content_range_start(response: httpx.Response) -> int | None:
    # Content-Range: bytes <first>-<last>/<total or *>
    unit, _, spec = response.headers.get("Content-Range", "").partition(" ")
    first = spec.partition("-")[0]
    if unit != "bytes" or not first.isdigit():
        return None
    return int(first)


class _HttpChunks(Iterator[bytes]):
    """The body of a response in chunks, after dropping ``skip`` bytes and up to ``limit``.

    ``skip`` and ``limit`` apply a range a server ignored; closing the
    iterator releases the connection.
    """

    def __init__(
        self,
        response: httpx.Response,
        skip: int,
        limit: int | None,
        chunk_size: int,
        public: str,
    ) -> None:
        self._response: httpx.Response | None = response
        # Raw: the bytes as stored, never decoded.
        self._chunks: Iterator[bytes] = response.iter_raw(chunk_size)
        self._skip = skip
        self._remaining = limit
        self._public = public

    def __next__(self) -> bytes:
        while self._response is not None:
            if self._remaining == 0:
                break
            try:
                chunk: bytes = next(self._chunks)
            except StopIteration:
                break
            except httpx.HTTPError as exc:
                self.close()
                raise StoreUnavailable(f"Cannot read {self._public}: {exc}") from exc
            if self._skip:
                dropped = min(self._skip, len(chunk))
                chunk, self._skip = chunk[dropped:], self._skip - dropped
            if self._remaining is not None:
                chunk = chunk[: self._remaining]
                self._remaining -= len(chunk)
            if chunk:
                return chunk
        self.close()
        raise StopIteration

    def close(self) -> None:
        if self._response is not None:
            response, self._response = self._response, None
            response.close()

    def __del__(self) -> None:
        self.close()
