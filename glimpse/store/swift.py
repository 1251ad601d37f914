"""The Swift store: image data as objects in one container of an OpenStack Swift account.

Locations use glance_store's form, so rows written by Glance keep working::

    swift+https://<user>:<key>@<auth host>[:<port>]/<auth path>/<container>/<image_id>

``swift+http`` when the auth address is plain HTTP; ``swift://`` (read only)
means HTTPS. User and key are percent-quoted (RFC 1738) so keys holding ``:``,
``@``, ``/`` or ``%`` survive the round trip (Launchpad bug 1695299). Those
URIs carry a secret: show people :func:`public_uri` instead.

Authentication is Swift's v1 protocol (tempauth, swauth) or Keystone v3
(``user`` given as ``project:user``, as Glance does).

An image of at most ``large_object_size`` bytes is stored with one PUT;
anything larger becomes a Static Large Object: segments of
``large_object_chunk_size`` bytes named ``<image_id>/<writer token>/<index>`` in
the same container, then a manifest PUT under the image id. Both final PUTs
carry ``If-None-Match: *`` so data of an image is never overwritten. Request
bodies are streamed as the image arrives (:mod:`glimpse.store.segmented`): with
chunked transfer coding when the size of the image is not known, in which case
an image past the first 4 MiB is stored as a large object.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

import requests
import swiftclient
from keystoneauth1 import exceptions as keystone_errors
from keystoneauth1 import session as keystone_session
from keystoneauth1.identity import v3 as keystone_v3
from oslo_config import cfg
from swiftclient.exceptions import ClientException

from glimpse.store.base import (
    DEFAULT_CHUNK_SIZE,
    StoreDriver,
    StoreWriter,
    check_read_range,
)
from glimpse.store.errors import (
    StoreAuthError,
    StoreConflict,
    StoreError,
    StoreFull,
    StoreNotFound,
    StoreUnavailable,
)
from glimpse.store.segmented import SegmentedWriter
from glimpse.store.streamed_put import PutAnswer, PutRefused, StreamedPut

_LOG = logging.getLogger(__name__)

MiB = 1 << 20
DEFAULT_CONTAINER = "glance"
#: Glance's defaults, in bytes (its options count MiB).
DEFAULT_LARGE_OBJECT_SIZE = 5120 * MiB
DEFAULT_LARGE_OBJECT_CHUNK_SIZE = 200 * MiB

_SCHEMES = ("swift", "swift+http", "swift+https")
_V1 = ("1", "1.0")
_V3 = ("3", "3.0")


def options() -> list[cfg.Opt]:
    """The store's options, with Glance's names; sizes count MiB as in Glance."""
    return [
        cfg.StrOpt(
            "swift_store_auth_address",
            help="The address where the Swift authentication service is listening "
            "(e.g. http://swift.example.com:8080/auth/v1.0 or https://keystone:5000/v3).",
        ),
        cfg.StrOpt(
            "swift_store_user",
            help="The user to authenticate against the Swift authentication service; "
            "'account:user' for tempauth, 'project:user' for Keystone.",
        ),
        cfg.StrOpt(
            "swift_store_key",
            secret=True,
            help="Auth key for the user authenticating against the Swift authentication service.",
        ),
        cfg.StrOpt(
            "swift_store_auth_version",
            default="3",
            choices=["1", "3"],
            help="Version of the authentication service to use. Valid versions are 3 for "
            "Keystone and 1 for swauth and tempauth (Keystone v2 no longer exists).",
        ),
        cfg.StrOpt(
            "swift_store_user_domain_id",
            default="default",
            help="Keystone v3 only: the domain of swift_store_user, by id.",
        ),
        cfg.StrOpt(
            "swift_store_user_domain_name",
            help="Keystone v3 only: the domain of swift_store_user, by name; "
            "overrides swift_store_user_domain_id.",
        ),
        cfg.StrOpt(
            "swift_store_project_domain_id",
            default="default",
            help="Keystone v3 only: the domain of the project, by id.",
        ),
        cfg.StrOpt(
            "swift_store_project_domain_name",
            help="Keystone v3 only: the domain of the project, by name; "
            "overrides swift_store_project_domain_id.",
        ),
        cfg.StrOpt(
            "swift_store_region",
            help="The region of the swift endpoint to be used for single tenant. This "
            "setting is only necessary if the tenant has multiple swift endpoints.",
        ),
        cfg.StrOpt(
            "swift_store_endpoint_type",
            default="publicURL",
            help="A string giving the endpoint type of the swift service to use "
            "(publicURL, adminURL or internalURL). Only used with Keystone.",
        ),
        cfg.StrOpt(
            "swift_store_service_type",
            default="object-store",
            help="A string giving the service type of the swift service to use. Only used "
            "with Keystone.",
        ),
        cfg.BoolOpt(
            "swift_store_auth_insecure",
            default=False,
            help="If True, swiftclient won't check for a valid SSL certificate when "
            "authenticating.",
        ),
        cfg.StrOpt(
            "swift_store_cacert",
            help="A string giving the CA certificate file to use in SSL connections for "
            "verifying certs.",
        ),
        cfg.StrOpt(
            "swift_store_container",
            default=DEFAULT_CONTAINER,
            help="Container within the account that the account should use for storing "
            "images in Swift.",
        ),
        cfg.IntOpt(
            "swift_store_large_object_size",
            default=DEFAULT_LARGE_OBJECT_SIZE // MiB,
            min=1,
            help="The size, in MB, that Glance will start chunking image files and do a "
            "large object manifest in Swift.",
        ),
        cfg.IntOpt(
            "swift_store_large_object_chunk_size",
            default=DEFAULT_LARGE_OBJECT_CHUNK_SIZE // MiB,
            min=1,
            help="The amount of data written to a temporary disk buffer during the process "
            "of chunking the image file.",
        ),
        cfg.BoolOpt(
            "swift_store_create_container_on_put",
            default=False,
            help="A boolean value that determines if we create the container if it does not exist.",
        ),
        cfg.IntOpt(
            "swift_store_retries",
            default=2,
            min=0,
            help="How many times a failed Swift request is retried, with backoff starting "
            "at 1 s, before the store reports itself unavailable (Glimpse option; "
            "swiftclient's own default of 5 makes a dead store answer after 31 s).",
        ),
        cfg.StrOpt(
            "swift_upload_buffer_dir",
            help="Directory to buffer image segments before upload to Swift. Accepted "
            "for compatibility with Glance: Glimpse streams segments to Swift as they "
            "arrive and buffers nothing on disk.",
        ),
    ]


@dataclasses.dataclass(frozen=True)
class SwiftLocation:
    """The parts of a Swift location URI, unquoted."""

    scheme: str
    #: Full URL of the authentication service, ``http://`` or ``https://``.
    auth_address: str
    container: str
    obj: str
    user: str | None = None
    key: str | None = dataclasses.field(default=None, repr=False)

    def uri(self, *, credentials: bool = True) -> str:
        """Render the location; ``credentials=False`` leaves out user and key."""
        address = self.auth_address.split("://", 1)[-1].strip("/")
        userinfo = ""
        if credentials and self.user is not None:
            userinfo = f"{quote(self.user, safe='')}:{quote(self.key or '', safe='')}@"
        container, obj = quote(self.container, safe=""), quote(self.obj, safe="")
        return f"{self.scheme}://{userinfo}{address}/{container}/{obj}"


def parse_location(uri: str) -> SwiftLocation:
    """Split a ``swift[+http|+https]://`` URI; ValueError when it is not one.

    Credentials are split at the last ``:`` before the last ``@`` and only
    then unquoted, so a quoted ``:`` or ``@`` in a key stays part of the key,
    and Glance's older unquoted ``account:user:key@`` form still parses.
    """
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme not in _SCHEMES or "://" in rest:
        raise ValueError(f"not a Swift location (scheme {scheme!r})")
    userinfo, at, address = rest.rpartition("@")
    user = key = None
    if at:
        quoted_user, colon, quoted_key = userinfo.rpartition(":")
        if not colon or not quoted_user:
            raise ValueError("credentials of a Swift location must be user:key")
        user, key = unquote(quoted_user), unquote(quoted_key)
    parts = address.rsplit("/", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError("a Swift location ends in <auth address>/<container>/<object>")
    auth, container, obj = parts
    auth_scheme = "http" if scheme == "swift+http" else "https"
    return SwiftLocation(
        scheme=scheme,
        auth_address=f"{auth_scheme}://{auth}",
        container=unquote(container),
        obj=unquote(obj),
        user=user,
        key=key,
    )


def public_uri(uri: str) -> str:
    """``uri`` without its credentials, for logs, API responses and error messages."""
    try:
        return parse_location(uri).uri(credentials=False)
    except ValueError:
        scheme, separator, rest = uri.partition("://")
        return f"{scheme}{separator}{rest.rpartition('@')[2]}"


def _store_error(exc: Exception, action: str) -> StoreError:
    """Translate what swiftclient, keystoneauth or requests raised into the store's errors."""
    message = f"Swift could not {action}: {exc}"
    if isinstance(exc, ClientException):
        status = exc.http_status
        if status in (401, 403):
            return StoreAuthError(message)
        if status in (404, 410):
            return StoreNotFound(message)
        if status == 412:
            return StoreConflict(message)
        if status in (413, 507):
            return StoreFull(message)
        if status in (408, 429, 498, 499) or (status is not None and status >= 500):
            return StoreUnavailable(message)
        return StoreError(message)
    if isinstance(exc, keystone_errors.Unauthorized | keystone_errors.Forbidden):
        return StoreAuthError(message)
    if isinstance(
        exc,
        keystone_errors.ConnectionError
        | keystone_errors.ServiceUnavailable
        | requests.RequestException
        | OSError,
    ):
        return StoreUnavailable(message)
    return StoreError(message)


def _modified(item: dict[str, Any]) -> float:
    """The time of a container listing entry's ``last_modified`` (UTC, without a zone)."""
    stamp = datetime.datetime.fromisoformat(item["last_modified"])
    return stamp.replace(tzinfo=datetime.UTC).timestamp()


class _Domain(NamedTuple):
    id: str | None
    name: str | None


_BACKEND_ERRORS = (
    ClientException,
    keystone_errors.ClientException,
    requests.RequestException,
    OSError,
)


class SwiftStore(StoreDriver):
    """Stores each image as an object ``<container>/<image_id>`` of one Swift account.

    Locations of other users at the same auth address (Glance wrote the
    credentials into every location) are served with the credentials the URI
    carries; locations of the store's own user always use the configured key,
    so rotating it does not strand existing images. Locations at another auth
    address belong to another store and are treated as missing.

    Thread-safe: each operation borrows a swiftclient connection from a small
    pool, since one connection cannot serve two requests at once.
    """

    read_only = False
    #: Fewer, larger chunks: each one costs a thread hop and a trip through the HTTP client.
    read_chunk_size = 4 * MiB
    #: Every scheme of the locations this driver reads (``scheme`` is the one it writes).
    schemes = _SCHEMES
    store_type = "swift"

    def __init__(
        self,
        auth_address: str,
        user: str,
        key: str,
        container: str = DEFAULT_CONTAINER,
        *,
        auth_version: str = "3",
        large_object_size: int = DEFAULT_LARGE_OBJECT_SIZE,
        large_object_chunk_size: int = DEFAULT_LARGE_OBJECT_CHUNK_SIZE,
        create_container_on_put: bool = False,
        user_domain_id: str | None = "default",
        user_domain_name: str | None = None,
        project_domain_id: str | None = "default",
        project_domain_name: str | None = None,
        region: str | None = None,
        endpoint_type: str = "publicURL",
        service_type: str = "object-store",
        insecure: bool = False,
        cacert: str | None = None,
        buffer_dir: str | None = None,
        timeout: float = 60.0,
        retries: int = 5,
        store_id: str = "swift",
    ) -> None:
        """Sizes are in bytes (Glance's options count MiB).

        ``large_object_chunk_size`` must be at least the cluster's SLO
        ``min_segment_size`` (1 MiB by default) or large uploads fail at
        commit. ``retries`` are swiftclient's, with backoff from 1 s.
        """
        if not auth_address.startswith(("http://", "https://")):
            raise ValueError(f"auth_address must be an http(s) URL, got {auth_address!r}")
        if auth_version not in _V1 + _V3:
            raise ValueError(
                f"auth_version must be 1 (tempauth/swauth) or 3 (Keystone), got {auth_version!r}"
            )
        if auth_version in _V3 and ":" not in user:
            raise ValueError("with Keystone, user is given as 'project:user'")
        if not container or "/" in container:
            raise ValueError(f"invalid container name {container!r}")
        if large_object_chunk_size <= 0 or large_object_size < 0:
            raise ValueError("large object sizes must be positive")
        self.auth_address = auth_address.rstrip("/")
        self.user = user
        self._key = key
        self.container = container
        self.auth_version = auth_version
        self.large_object_size = large_object_size
        self.large_object_chunk_size = large_object_chunk_size
        self.create_container_on_put = create_container_on_put
        self.buffer_dir = buffer_dir
        self.store_id = store_id
        self.scheme = "swift+http" if auth_address.startswith("http://") else "swift+https"
        self._user_domain = _Domain(user_domain_id, user_domain_name)
        self._project_domain = _Domain(project_domain_id, project_domain_name)
        self._os_options = {
            "region_name": region,
            "endpoint_type": endpoint_type,
            "service_type": service_type,
        }
        self._insecure = insecure
        self._cacert = cacert
        self._timeout = timeout
        self._retries = retries
        # One Keystone session for the store's own user: it caches the token
        # for every pooled connection.
        self._session = self._keystone_session(user, key) if auth_version in _V3 else None
        self._idle: list[swiftclient.Connection] = []
        self._tls: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return (
            f"SwiftStore({self.auth_address!r}, user={self.user!r}, "
            f"container={self.container!r}, store_id={self.store_id!r})"
        )

    def uri_for(self, image_id: str) -> str:
        """The location URI, with credentials, the data of ``image_id`` gets in this store."""
        return self._own_location(image_id).uri()

    def public_uri(self, uri: str) -> str:
        """``uri`` without credentials; see :func:`public_uri`."""
        return public_uri(uri)

    def properties(self) -> dict[str, Any]:
        """The container and when and how images are cut into segments, in bytes."""
        return {
            "container": self.container,
            "large_object_size": self.large_object_size,
            "large_object_chunk_size": self.large_object_chunk_size,
        }

    def owns(self, uri: str) -> bool:
        """Locations at this store's auth address, whoever's credentials they carry."""
        try:
            self._location(uri)
        except StoreNotFound:
            return False
        return True

    def lends_credentials(self, uri: str) -> bool:
        """Locations of the store's own user are read with the configured key."""
        try:
            location = self._location(uri)
        except StoreNotFound:
            return False
        return location.user is None or (location.user == self.user and location.key != self._key)

    def begin_write(self, image_id: str, size: int | None = None) -> StoreWriter:
        location = self._own_location(image_id)
        # Checked here as well as at commit so a conflicting upload fails
        # before the client has sent its body.
        with self._connection() as connection:
            try:
                connection.head_object(self.container, image_id)
            except ClientException as exc:
                if exc.http_status != 404:
                    raise _store_error(exc, f"check {location.uri(credentials=False)}") from exc
            except _BACKEND_ERRORS as exc:
                raise _store_error(exc, f"check {location.uri(credentials=False)}") from exc
            else:
                raise StoreConflict(
                    f"Image data already exists at {location.uri(credentials=False)}"
                )
        return _SwiftWriter(self, location, size)

    def read(
        self,
        uri: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        check_read_range(offset, length, chunk_size)
        location = self._location(uri)
        if length == 0:
            self.stat(uri)  # still report a missing object
            return iter(())
        headers = {}
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{last}"
        connection, release = self._borrow(location)
        try:
            _, body = connection.get_object(
                location.container, location.obj, resp_chunk_size=chunk_size, headers=headers
            )
        except BaseException as exc:
            release()
            if isinstance(exc, ClientException) and exc.http_status == 416:
                return iter(())  # the object exists; the range starts at or past its end
            if isinstance(exc, _BACKEND_ERRORS):
                raise _store_error(exc, f"read {location.uri(credentials=False)}") from exc
            raise
        return _SwiftChunks(body, release, location.uri(credentials=False))

    def delete(self, uri: str) -> None:
        location = self._location(uri)
        public = location.uri(credentials=False)
        with self._connection(location) as connection:
            try:
                headers = connection.head_object(location.container, location.obj)
                segments = self._segments_of(connection, location, headers)
                # The manifest goes first: from then on the image is gone,
                # whatever happens to its segments.
                connection.delete_object(location.container, location.obj)
            except _BACKEND_ERRORS as exc:
                raise _store_error(exc, f"delete {public}") from exc
            for container, name in segments:
                self._delete_quietly(connection, container, name)

    @staticmethod
    def _segments_of(
        connection: swiftclient.Connection, location: SwiftLocation, headers: dict[str, str]
    ) -> list[tuple[str, str]]:
        """(container, name) of every segment of a large object; [] for a plain one."""
        if headers.get("x-static-large-object", "").lower() == "true":
            _, manifest = connection.get_object(
                location.container, location.obj, query_string="multipart-manifest=get"
            )
            segments = []
            for entry in json.loads(manifest):
                container, _, name = entry["name"].lstrip("/").partition("/")
                segments.append((container, name))
            return segments
        if "x-object-manifest" in headers:
            # Glance writes Dynamic Large Objects: segments are every object
            # under the manifest's "<container>/<prefix>".
            container, _, prefix = unquote(headers["x-object-manifest"]).partition("/")
            _, listing = connection.get_container(container, prefix=prefix, full_listing=True)
            return [(container, item["name"]) for item in listing]
        return []

    def stat(self, uri: str) -> int:
        location = self._location(uri)
        with self._connection(location) as connection:
            try:
                headers = connection.head_object(location.container, location.obj)
            except _BACKEND_ERRORS as exc:
                raise _store_error(exc, f"stat {location.uri(credentials=False)}") from exc
        return int(headers["content-length"])

    # --- what dead writers left ------------------------------------------------

    def discard_temporaries(self, image_id: str) -> list[str]:
        """Delete the segments of ``image_id``'s unfinished writes (``<image_id>/<token>/<n>``).

        Segments the image's committed manifest names stay. Returns
        ``<container>/<segment>`` of each one deleted.
        """
        location = self._own_location(image_id)
        with self._connection() as connection:
            try:
                _, listing = connection.get_container(
                    self.container, prefix=f"{image_id}/", full_listing=True
                )
                names = [item["name"] for item in listing]
                kept = self._referenced_segments(connection, location) if names else set()
            except ClientException as exc:
                if exc.http_status == 404:
                    return []  # no container, no segments
                raise _store_error(exc, f"list the segments of {image_id}") from exc
            except _BACKEND_ERRORS as exc:
                raise _store_error(exc, f"list the segments of {image_id}") from exc
            leftovers = [name for name in names if name not in kept]
            for name in leftovers:
                self._delete_quietly(connection, self.container, name)
        return [f"{self.container}/{name}" for name in leftovers]

    def cleanup_stale_temporaries(
        self, older_than_seconds: float, *, dry_run: bool = False
    ) -> list[str]:
        """Delete the segments of writes none of whose segments changed for that long.

        Lists the whole container, so it is for an operator's occasional run
        (``glimpse-manage store purge_uploads``), not for every request.
        """
        cutoff = time.time() - older_than_seconds
        removed: list[str] = []
        with self._connection() as connection:
            try:
                _, listing = connection.get_container(self.container, full_listing=True)
                writes: dict[str, list[dict[str, Any]]] = {}
                for item in listing:
                    image_id, _, rest = item["name"].partition("/")
                    token, slash, _ = rest.partition("/")
                    if slash:
                        writes.setdefault(f"{image_id}/{token}/", []).append(item)
                for prefix, items in writes.items():
                    if any(_modified(item) >= cutoff for item in items):
                        continue  # a write that may still be running
                    location = self._own_location(prefix.partition("/")[0])
                    kept = self._referenced_segments(connection, location)
                    for name in (item["name"] for item in items):
                        if name in kept:
                            continue
                        if not dry_run:
                            self._delete_quietly(connection, self.container, name)
                        removed.append(f"{self.container}/{name}")
            except ClientException as exc:
                if exc.http_status == 404:
                    return removed
                raise _store_error(exc, f"list the container {self.container}") from exc
            except _BACKEND_ERRORS as exc:
                raise _store_error(exc, f"list the container {self.container}") from exc
        return removed

    def _referenced_segments(
        self, connection: swiftclient.Connection, location: SwiftLocation
    ) -> set[str]:
        """The segments in this container that the committed object at ``location`` uses."""
        try:
            headers = connection.head_object(location.container, location.obj)
        except ClientException as exc:
            if exc.http_status == 404:
                return set()
            raise
        return {
            name
            for container, name in self._segments_of(connection, location, headers)
            if container == self.container
        }

    # --- locations -----------------------------------------------------------

    def _own_location(self, image_id: str) -> SwiftLocation:
        # The id is the last path segment of the URI: it cannot hold a slash.
        if not image_id or "/" in image_id:
            raise ValueError(f"Image id {image_id!r} cannot be used as a Swift object name")
        return SwiftLocation(
            scheme=self.scheme,
            auth_address=self.auth_address,
            container=self.container,
            obj=image_id,
            user=self.user,
            key=self._key,
        )

    def _location(self, uri: str) -> SwiftLocation:
        try:
            location = parse_location(uri)
        except ValueError as exc:
            raise StoreNotFound(f"{public_uri(uri)!r} is not a Swift location: {exc}") from None
        if location.auth_address.rstrip("/") != self.auth_address:
            raise StoreNotFound(
                f"{location.uri(credentials=False)!r} is not a location of this Swift store"
            )
        return location

    # --- connections ---------------------------------------------------------

    def _keystone_session(self, user: str, key: str) -> keystone_session.Session:
        project, _, username = user.partition(":")
        # A name given for a domain wins over the id, which defaults to "default".
        user_domain, project_domain = self._user_domain, self._project_domain
        auth = keystone_v3.Password(
            auth_url=self.auth_address,
            username=username,
            password=key,
            project_name=project,
            user_domain_id=None if user_domain.name else user_domain.id,
            user_domain_name=user_domain.name,
            project_domain_id=None if project_domain.name else project_domain.id,
            project_domain_name=project_domain.name,
        )
        verify: bool | str = self._cacert or not self._insecure
        return keystone_session.Session(auth=auth, verify=verify, timeout=self._timeout)

    def _new_connection(self, user: str, key: str) -> swiftclient.Connection:
        common: dict[str, Any] = {
            "retries": self._retries,
            "timeout": self._timeout,
            "cacert": self._cacert,
            "insecure": self._insecure,
        }
        if self.auth_version in _V1:
            return swiftclient.Connection(
                authurl=self.auth_address, user=user, key=key, auth_version="1", **common
            )
        session = self._session if user == self.user else self._keystone_session(user, key)
        return swiftclient.Connection(
            session=session, os_options=dict(self._os_options), auth_version="3", **common
        )

    def _borrow(
        self, location: SwiftLocation | None = None
    ) -> tuple[swiftclient.Connection, Callable[[], None]]:
        """A connection for ``location`` and the function that gives it back."""
        if location is not None and location.user not in (None, self.user):
            foreign = self._new_connection(location.user, location.key or "")
            return foreign, foreign.close
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self._new_connection(self.user, self._key)
        return connection, lambda: self._idle.append(connection)

    @contextlib.contextmanager
    def _connection(
        self, location: SwiftLocation | None = None
    ) -> Iterator[swiftclient.Connection]:
        connection, release = self._borrow(location)
        try:
            yield connection
        finally:
            release()

    # --- helpers of the writer ------------------------------------------------

    def _put(
        self,
        name: str,
        contents: bytes,
        headers: dict[str, str] | None = None,
        query_string: str | None = None,
    ) -> str:
        """PUT a small object (a manifest) into the store's container; return its etag."""

        def put() -> str:
            etag: str = connection.put_object(
                self.container,
                name,
                contents,
                content_length=len(contents),
                headers=headers,
                query_string=query_string,
            )
            return etag

        with self._connection() as connection:
            try:
                try:
                    return put()
                except ClientException as exc:
                    # Swift answers 404 to a PUT into a missing container.
                    if exc.http_status != 404 or not self.create_container_on_put:
                        raise
                connection.put_container(self.container)
                return put()
            except ClientException as exc:
                if exc.http_status == 404:
                    raise StoreUnavailable(
                        f"The container {self.container!r} does not exist in Swift; create it "
                        "or set swift_store_create_container_on_put"
                    ) from exc
                raise _store_error(exc, f"write {self.container}/{name}") from exc
            except _BACKEND_ERRORS as exc:
                raise _store_error(exc, f"write {self.container}/{name}") from exc

    def _start_put(
        self,
        name: str,
        length: int | None,
        headers: dict[str, str] | None = None,
        *,
        digest: bool = True,
    ) -> StreamedPut:
        """Start a streamed PUT of ``name`` in the store's container.

        Nothing of the body has gone out when Swift refuses the request, so an
        expired token is renewed, a missing container created (when allowed),
        and a Swift that cannot be reached or answers 5xx is tried again, as
        swiftclient would.
        """
        refreshed = created = False
        attempt, backoff = 0, 1.0
        while True:
            url, token = self._storage_auth(refresh=refreshed)
            target = f"{url.rstrip('/')}/{quote(self.container)}/{quote(name)}"
            try:
                return StreamedPut(
                    target,
                    {"X-Auth-Token": token, **(headers or {})},
                    length,
                    timeout=self._timeout,
                    ssl_context=self._ssl_context(),
                    digest=digest,
                )
            except PutRefused as exc:
                status = exc.answer.status
                if status == 401 and not refreshed:
                    refreshed = True
                    continue
                if status == 404 and self.create_container_on_put and not created:
                    created = True
                    self._create_container()
                    continue
                if status < 500 or attempt >= self._retries:
                    raise self._put_error(exc, name) from exc
            except OSError as exc:
                if attempt >= self._retries:
                    raise self._put_error(exc, name) from exc
            attempt += 1
            time.sleep(backoff)
            backoff *= 2

    def _put_error(self, exc: Exception, name: str) -> StoreError:
        """The store's error for a streamed PUT of ``name`` that failed."""
        action = f"write {self.container}/{name}"
        if isinstance(exc, PutRefused):
            answer = exc.answer
            if answer.status == 404:
                return StoreUnavailable(
                    f"The container {self.container!r} does not exist in Swift; create it "
                    "or set swift_store_create_container_on_put"
                )
            detail = answer.body.decode("utf-8", "replace").strip()[:200]
            exc = ClientException(
                f"PUT {self.container}/{name} answered {answer.status} {answer.reason}"
                + (f": {detail}" if detail else ""),
                http_status=answer.status,
                http_reason=answer.reason,
            )
        return _store_error(exc, action)

    def _storage_auth(self, *, refresh: bool) -> tuple[str, str]:
        """The storage URL and a token of the store's own user (a new one with ``refresh``)."""
        with self._connection() as connection:
            try:
                if refresh and connection.session is not None:
                    connection.session.invalidate()
                if refresh or not connection.url or not connection.token:
                    connection.get_auth()
            except _BACKEND_ERRORS as exc:
                raise _store_error(exc, "authenticate") from exc
            return str(connection.url), str(connection.token)

    def _create_container(self) -> None:
        with self._connection() as connection:
            try:
                connection.put_container(self.container)
            except _BACKEND_ERRORS as exc:
                raise _store_error(exc, f"create the container {self.container}") from exc

    def _ssl_context(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context(cafile=self._cacert)
            if self._insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls = context
        return self._tls

    def _delete_segment(self, name: str) -> None:
        with self._connection() as connection:
            self._delete_quietly(connection, self.container, name)

    @staticmethod
    def _delete_quietly(connection: swiftclient.Connection, container: str, name: str) -> None:
        # Cleanup of data nobody can reach any more: a failure leaves an
        # orphan behind, which is logged rather than raised over the error
        # that caused the cleanup.
        try:
            connection.delete_object(container, name)
        except ClientException as exc:
            if exc.http_status != 404:
                _LOG.warning("Orphaned Swift segment %s/%s: %s", container, name, exc)
        except _BACKEND_ERRORS as exc:
            _LOG.warning("Orphaned Swift segment %s/%s: %s", container, name, exc)


class _SwiftWriter(SegmentedWriter):
    """Segments ``<image_id>/<token>/<n>`` in the store's container, joined by an SLO manifest."""

    streams_unknown_length = True

    def __init__(self, store: SwiftStore, location: SwiftLocation, size: int | None) -> None:
        super().__init__(
            piece_size=store.large_object_chunk_size,
            large_object_size=store.large_object_size,
            size=size,
            buffer_dir=store.buffer_dir,
            uri=location.uri(),
            public_uri=location.uri(credentials=False),
        )
        self._store = store
        self._location = location
        # Segments of racing writers of one image must not collide.
        self._token = secrets.token_hex(8)
        self._manifest: dict[int, dict[str, Any]] = {}
        # Every segment name a PUT was attempted for: a PUT the client saw
        # fail may still have landed, so cleanup tries them all.
        self._attempted: list[str] = []

    @property
    def segment_names(self) -> list[str]:
        """Names of the segments uploaded so far (exposed for tests and debugging)."""
        return [self._manifest[n]["path"].split("/", 2)[2] for n in sorted(self._manifest)]

    def _segment_name(self, number: int) -> str:
        return f"{self._location.obj}/{self._token}/{number:08d}"

    def _start_whole(self, length: int) -> StreamedPut:
        return self._store._start_put(
            self._location.obj, length, {"If-None-Match": "*"}, digest=False
        )

    def _start_piece(self, number: int, length: int | None) -> StreamedPut:
        name = self._segment_name(number)
        self._attempted.append(name)
        return self._store._start_put(name, length)

    def _whole_stored(self, request: StreamedPut, answer: PutAnswer) -> None:
        if self.image_md5 is not None and _etag(answer) != self.image_md5:
            # If-None-Match made it ours: nobody else's data is removed.
            self._store._delete_segment(self._location.obj)
            raise StoreError(_etag_mismatch(self._location.obj, answer, self.image_md5, request))

    def _piece_stored(self, number: int, request: StreamedPut, answer: PutAnswer) -> None:
        name = self._segment_name(number)
        assert request.md5 is not None
        md5 = request.md5.hexdigest()
        if _etag(answer) != md5:
            raise StoreError(_etag_mismatch(name, answer, md5, request))
        self._manifest[number] = {
            "path": f"/{self._store.container}/{name}",
            "etag": md5,
            "size_bytes": request.sent,
        }

    def _join(self) -> None:
        # Swift checks every segment's etag and size against the manifest.
        manifest = json.dumps([self._manifest[n] for n in sorted(self._manifest)]).encode()
        self._store._put(
            self._location.obj,
            manifest,
            {"If-None-Match": "*"},
            query_string="multipart-manifest=put",
        )

    def _discard_pieces(self) -> None:
        attempted, self._attempted = self._attempted, []
        self._manifest = {}
        for name in attempted:
            self._store._delete_segment(name)

    def _request_error(self, exc: Exception) -> StoreError:
        return self._store._put_error(exc, self._location.obj)


def _etag(answer: PutAnswer) -> str:
    return str(answer.headers.get("etag", "")).strip('"')


def _etag_mismatch(name: str, answer: PutAnswer, md5: str, request: StreamedPut) -> str:
    return (
        f"Swift stored {name} with etag {_etag(answer)!r}, but the "
        f"{request.sent} bytes sent have MD5 {md5}"
    )


class _SwiftChunks(Iterator[bytes]):
    """Chunks of a GET response; closing it gives the connection back to the pool."""

    def __init__(self, body: Any, release: Callable[[], None], public: str) -> None:
        self._body: Any = body
        self._release = release
        self._public = public

    def __next__(self) -> bytes:
        if self._body is None:
            raise StopIteration
        try:
            chunk: bytes = next(self._body)
        except StopIteration:
            self.close()
            raise
        except _BACKEND_ERRORS as exc:
            self.close()
            raise _store_error(exc, f"read {self._public}") from exc
        return chunk

    def close(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            try:
                body.close()
            finally:
                self._release()

    def __del__(self) -> None:
        self.close()
