"""The S3 store: image data as objects in one bucket of any S3-compatible service.

Locations use glance_store's form (Ussuri and later)::

    s3://<access key>:<secret key>@<host>[:<port>][/<path>]/<bucket>/<image_id>

``s3://`` (and ``s3+http://``) for a plain-HTTP endpoint, ``s3+https://`` for
HTTPS. Access and secret key are percent-quoted (RFC 1738), which Glance did
not do: keys holding ``:``, ``/`` or ``+`` then survive the round trip. Those
URIs carry a secret: show people :func:`public_uri` instead.

An image of at most ``large_object_size`` bytes is stored with one PUT;
anything larger goes up as a multipart upload of ``large_object_chunk_size``
parts (at least 5 MiB, the S3 minimum for every part but the last). Both the PUT
and the completion carry ``If-None-Match: *``, so data of an image is never
overwritten. When the size of the image is known, request bodies are streamed
as the image arrives; otherwise each part is buffered (its length must be sent
first) and sent while the next one fills (:mod:`glimpse.store.segmented`).

Bodies go out through presigned URLs (SigV4, unsigned payload) and without SDK
checksums: the pipeline hashes the data once, and each body's MD5, computed as
it is sent, is compared with the ETag S3 answers (an MD5 unless the object is
encrypted with KMS or customer keys).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, unquote

import boto3
from botocore import exceptions as boto_errors
from botocore.config import Config
from oslo_config import cfg

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
#: Glance's defaults, in bytes (its options count MiB).
DEFAULT_LARGE_OBJECT_SIZE = 100 * MiB
DEFAULT_LARGE_OBJECT_CHUNK_SIZE = 10 * MiB
#: S3 rules: every part but the last has at least 5 MiB; at most 10000 parts.
MIN_PART_SIZE = 5 * MiB
MAX_PARTS = 10000
#: Lifetime of the presigned URL of one streamed request (checked when it starts).
PRESIGNED_SECONDS = 900

_SCHEMES = {"s3": "http", "s3+http": "http", "s3+https": "https"}
_ADDRESSING_STYLES = {"auto": "auto", "path": "path", "virtual": "virtual"}

_AUTH_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"}
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound"})
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_FULL_CODES = frozenset({"EntityTooLarge", "QuotaExceeded", "InsufficientStorage"})
_UNAVAILABLE_CODES = frozenset({"SlowDown", "ServiceUnavailable", "RequestTimeout"})


def options() -> list[cfg.Opt]:
    """The store's options, with Glance's names; sizes count MiB as in Glance."""
    return [
        cfg.StrOpt(
            "s3_store_host",
            help="The host where the S3 server is listening, as a DNS name or IP address, "
            "with an optional port and http:// or https:// (http:// when omitted).",
        ),
        cfg.StrOpt(
            "s3_store_region_name",
            default="",
            help="The S3 region name. If this parameter is not set, us-east-1 is used.",
        ),
        cfg.StrOpt(
            "s3_store_access_key",
            secret=True,
            help="The S3 query token access key.",
        ),
        cfg.StrOpt(
            "s3_store_secret_key",
            secret=True,
            help="The S3 query token secret key.",
        ),
        cfg.StrOpt(
            "s3_store_bucket",
            help="The S3 bucket to be used to store the Glance data.",
        ),
        cfg.BoolOpt(
            "s3_store_create_bucket_on_put",
            default=False,
            help="Determine whether S3 should create a new bucket.",
        ),
        cfg.StrOpt(
            "s3_store_bucket_url_format",
            default="path",
            choices=sorted(_ADDRESSING_STYLES),
            help="The S3 calling format used to determine the object. In path-style the "
            "endpoint for the object looks like 'https://s3.amazonaws.com/bucket/example.img'; "
            "in virtual-style like 'https://bucket.s3.amazonaws.com/example.img'.",
        ),
        cfg.IntOpt(
            "s3_store_large_object_size",
            default=DEFAULT_LARGE_OBJECT_SIZE // MiB,
            min=1,
            help="What size, in MB, should S3 start chunking image files and do a multipart "
            "upload in S3.",
        ),
        cfg.IntOpt(
            "s3_store_large_object_chunk_size",
            default=DEFAULT_LARGE_OBJECT_CHUNK_SIZE // MiB,
            min=MIN_PART_SIZE // MiB,
            help="What multipart upload part size, in MB, should S3 use when uploading "
            "parts. Must be at least 5; at most 10,000 parts fit in one image.",
        ),
        cfg.StrOpt(
            "s3_store_cacert",
            default="",
            help="The path to the CA cert bundle to use. The default value (an empty "
            "string) forces the use of the default CA cert bundle used by botocore.",
        ),
        cfg.StrOpt(
            "s3_upload_buffer_dir",
            help="Directory to buffer upload parts in when the size of an image is not "
            "known and parts are larger than 16 MB (smaller ones are buffered in memory). "
            "Defaults to the system's temporary directory.",
        ),
    ]


@dataclasses.dataclass(frozen=True)
class S3Location:
    """The parts of an S3 location URI, unquoted."""

    scheme: str
    #: ``http://`` or ``https://`` URL of the service, without a trailing slash.
    endpoint: str
    bucket: str
    key: str
    access_key: str | None = None
    secret_key: str | None = dataclasses.field(default=None, repr=False)

    def uri(self, *, credentials: bool = True) -> str:
        """Render the location; ``credentials=False`` leaves out both keys."""
        address = self.endpoint.split("://", 1)[-1].strip("/")
        userinfo = ""
        if credentials and self.access_key is not None:
            access, secret = quote(self.access_key, safe=""), quote(self.secret_key or "", safe="")
            userinfo = f"{access}:{secret}@"
        bucket, key = quote(self.bucket, safe=""), quote(self.key, safe="")
        return f"{self.scheme}://{userinfo}{address}/{bucket}/{key}"


def parse_location(uri: str) -> S3Location:
    """Split an ``s3[+http|+https]://`` URI; ValueError when it is not one.

    Keys are split at the last ``:`` before the last ``@`` and only then
    unquoted; unquoted URIs written by Glance parse too, since a secret key
    never holds a ``:``.
    """
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme not in _SCHEMES or "://" in rest:
        raise ValueError(f"not an S3 location (scheme {scheme!r})")
    userinfo, at, address = rest.rpartition("@")
    access_key = secret_key = None
    if at:
        quoted_access, colon, quoted_secret = userinfo.rpartition(":")
        if not colon or not quoted_access:
            raise ValueError("credentials of an S3 location must be access:secret")
        access_key, secret_key = unquote(quoted_access), unquote(quoted_secret)
    parts = address.rsplit("/", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError("an S3 location ends in <host>/<bucket>/<key>")
    host, bucket, key = parts
    return S3Location(
        scheme=scheme,
        endpoint=f"{_SCHEMES[scheme]}://{host}",
        bucket=unquote(bucket),
        key=unquote(key),
        access_key=access_key,
        secret_key=secret_key,
    )


def public_uri(uri: str) -> str:
    """``uri`` without its keys, for logs, API responses and error messages."""
    try:
        return parse_location(uri).uri(credentials=False)
    except ValueError:
        scheme, separator, rest = uri.partition("://")
        return f"{scheme}{separator}{rest.rpartition('@')[2]}"


def _store_error(exc: Exception, action: str) -> StoreError:
    """Translate what botocore raised into the store's errors."""
    message = f"S3 could not {action}: {exc}"
    if isinstance(exc, boto_errors.ClientError):
        code, status = _error_code(exc), _status(exc)
        if code == "NoSuchUpload":
            # Another node's purge_uploads, or a lifecycle rule, aborted it.
            return StoreUnavailable(f"{message} (the multipart upload was aborted meanwhile)")
        if code in _AUTH_CODES or status in (401, 403):
            return StoreAuthError(message)
        if code in _NOT_FOUND_CODES or status == 404:
            return StoreNotFound(message)
        if code in _CONFLICT_CODES or status == 412:
            return StoreConflict(message)
        if code in _FULL_CODES or status in (413, 507):
            return StoreFull(message)
        if code in _UNAVAILABLE_CODES or status in (408, 429) or status >= 500:
            return StoreUnavailable(message)
        return StoreError(message)
    if isinstance(exc, boto_errors.NoCredentialsError | boto_errors.PartialCredentialsError):
        return StoreAuthError(message)
    if isinstance(
        exc,
        boto_errors.ConnectionError | boto_errors.HTTPClientError | boto_errors.ReadTimeoutError,
    ):
        return StoreUnavailable(message)
    return StoreError(message)


def _error_code(exc: boto_errors.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: boto_errors.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


_BACKEND_ERRORS = (boto_errors.BotoCoreError, boto_errors.ClientError)


def _upload_name(bucket: str, upload: dict[str, Any]) -> str:
    return f"{bucket}/{upload['Key']} upload {upload['UploadId']}"


# Clients are made from one session, which loads the S3 service model once
# (about 0.5 s) rather than per client. Sessions are not thread-safe, clients
# are: only the making of a client takes the lock.
_SESSION = boto3.session.Session()
_SESSION_LOCK = threading.Lock()


class S3Store(StoreDriver):
    """Stores each image as the object ``<bucket>/<image_id>``.

    Locations with another access key at the same endpoint are served with
    the keys the URI carries; locations of the store's own access key always
    use the configured secret, so rotating it does not strand existing
    images. Locations at another endpoint belong to another store and are
    treated as missing.

    Thread-safe: boto3 clients are.
    """

    read_only = False
    #: Fewer, larger chunks: each one costs a thread hop and a trip through the HTTP client.
    read_chunk_size = 4 * MiB
    #: Every scheme of the locations this driver reads (``scheme`` is the one it writes).
    schemes = tuple(_SCHEMES)
    store_type = "s3"

    def __init__(
        self,
        host: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        region_name: str = "",
        bucket_url_format: str = "path",
        create_bucket_on_put: bool = False,
        large_object_size: int = DEFAULT_LARGE_OBJECT_SIZE,
        large_object_chunk_size: int = DEFAULT_LARGE_OBJECT_CHUNK_SIZE,
        cacert: str | None = None,
        buffer_dir: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        store_id: str = "s3",
    ) -> None:
        """``host`` is the endpoint, with ``http://`` or ``https://`` (``http://`` if neither).

        Sizes are in bytes (Glance's options count MiB). ``max_attempts``
        counts botocore's tries of one request, the first included.
        """
        if large_object_chunk_size < MIN_PART_SIZE:
            raise ValueError(
                f"large_object_chunk_size must be at least {MIN_PART_SIZE} bytes (5 MiB)"
            )
        if large_object_size < 0:
            raise ValueError("large_object_size must not be negative")
        if bucket_url_format not in _ADDRESSING_STYLES:
            raise ValueError(f"bucket_url_format must be one of {sorted(_ADDRESSING_STYLES)}")
        if not bucket or "/" in bucket:
            raise ValueError(f"invalid bucket name {bucket!r}")
        if not host.startswith(("http://", "https://")):
            host = "http://" + host
        self.endpoint = host.rstrip("/")
        self.access_key = access_key
        self._secret_key = secret_key
        self.bucket = bucket
        self.region_name = region_name or "us-east-1"
        self.create_bucket_on_put = create_bucket_on_put
        self.large_object_size = large_object_size
        self.large_object_chunk_size = large_object_chunk_size
        self.buffer_dir = buffer_dir
        self.store_id = store_id
        self.scheme = "s3+https" if self.endpoint.startswith("https://") else "s3"
        self._max_attempts = max_attempts
        self._config = Config(
            signature_version="s3v4",
            s3={
                "addressing_style": _ADDRESSING_STYLES[bucket_url_format],
                "payload_signing_enabled": False,
            },
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._verify: bool | str = cacert or True
        self._tls: ssl.SSLContext | None = None
        self.client = self._new_client(access_key, secret_key)

    def __repr__(self) -> str:
        return (
            f"S3Store({self.endpoint!r}, access_key={self.access_key!r}, "
            f"bucket={self.bucket!r}, store_id={self.store_id!r})"
        )

    def uri_for(self, image_id: str) -> str:
        """The location URI, with keys, the data of ``image_id`` gets in this store."""
        return self._own_location(image_id).uri()

    def public_uri(self, uri: str) -> str:
        """``uri`` without keys; see :func:`public_uri`."""
        return public_uri(uri)

    def properties(self) -> dict[str, Any]:
        """The bucket and when and how images go up in parts, in bytes (Glance's names)."""
        return {
            "bucket": self.bucket,
            "s3_store_large_object_size": self.large_object_size,
            "s3_store_large_object_chunk_size": self.large_object_chunk_size,
        }

    def owns(self, uri: str) -> bool:
        """Locations at this store's endpoint, whoever's keys they carry."""
        try:
            location = parse_location(uri)
        except ValueError:
            return False
        return location.endpoint.rstrip("/") == self.endpoint

    def lends_credentials(self, uri: str) -> bool:
        """Locations of the store's own access key are read with the configured secret."""
        try:
            location = parse_location(uri)
        except ValueError:
            return False
        if location.endpoint.rstrip("/") != self.endpoint:
            return False
        return location.access_key is None or (
            location.access_key == self.access_key and location.secret_key != self._secret_key
        )

    def begin_write(self, image_id: str, size: int | None = None) -> StoreWriter:
        location = self._own_location(image_id)
        public = location.uri(credentials=False)
        # Checked here as well as at commit so a conflicting upload fails
        # before the client has sent its body.
        try:
            self.client.head_object(Bucket=self.bucket, Key=image_id)
        except boto_errors.ClientError as exc:
            # A missing bucket is a bare 404 too (HEAD has no body); the
            # first PUT creates it or reports it.
            if _status(exc) != 404:
                raise _store_error(exc, f"check {public}") from exc
        except _BACKEND_ERRORS as exc:
            raise _store_error(exc, f"check {public}") from exc
        else:
            raise StoreConflict(f"Image data already exists at {public}")
        return _S3Writer(self, location, size)

    def read(
        self,
        uri: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        check_read_range(offset, length, chunk_size)
        location, client = self._location(uri)
        public = location.uri(credentials=False)
        if length == 0:
            self.stat(uri)  # still report a missing object
            return iter(())
        request: dict[str, Any] = {"Bucket": location.bucket, "Key": location.key}
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            request["Range"] = f"bytes={offset}-{last}"
        try:
            response = client.get_object(**request)
        except boto_errors.ClientError as exc:
            if _error_code(exc) == "InvalidRange":
                return iter(())  # the object exists; the range starts at or past its end
            raise _store_error(exc, f"read {public}") from exc
        except _BACKEND_ERRORS as exc:
            raise _store_error(exc, f"read {public}") from exc
        return _S3Chunks(response["Body"], chunk_size, public)

    def delete(self, uri: str) -> None:
        location, client = self._location(uri)
        public = location.uri(credentials=False)
        # S3 answers 204 to deleting a missing key: ask first.
        self.stat(uri)
        try:
            client.delete_object(Bucket=location.bucket, Key=location.key)
        except _BACKEND_ERRORS as exc:
            raise _store_error(exc, f"delete {public}") from exc

    def stat(self, uri: str) -> int:
        location, client = self._location(uri)
        try:
            response = client.head_object(Bucket=location.bucket, Key=location.key)
        except _BACKEND_ERRORS as exc:
            raise _store_error(exc, f"stat {location.uri(credentials=False)}") from exc
        return int(response["ContentLength"])

    # --- what dead writers left ------------------------------------------------

    def discard_temporaries(self, image_id: str) -> list[str]:
        """Abort the multipart uploads of ``image_id``, whose writers are dead.

        Returns ``<bucket>/<key> upload <id>`` of each one aborted.
        """
        self._own_location(image_id)  # refuses ids that cannot be keys
        aborted = []
        for upload in self._multipart_uploads(prefix=image_id):
            if upload["Key"] == image_id:
                aborted.append(self._abort_upload(upload))
        return aborted

    def cleanup_stale_temporaries(
        self, older_than_seconds: float, *, dry_run: bool = False
    ) -> list[str]:
        """Abort the multipart uploads that neither started nor received a part for that long."""
        cutoff = time.time() - older_than_seconds
        aborted = []
        for upload in self._multipart_uploads():
            if upload["Initiated"].timestamp() >= cutoff:
                continue
            try:
                pages = self.client.get_paginator("list_parts").paginate(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                latest = max(
                    (
                        part["LastModified"].timestamp()
                        for page in pages
                        for part in page.get("Parts", [])
                    ),
                    default=0.0,
                )
            except boto_errors.ClientError as exc:
                if _error_code(exc) == "NoSuchUpload":
                    continue  # finished or aborted meanwhile
                raise _store_error(exc, f"list the parts of {upload['Key']}") from exc
            except _BACKEND_ERRORS as exc:
                raise _store_error(exc, f"list the parts of {upload['Key']}") from exc
            if latest >= cutoff:
                continue
            if dry_run:
                aborted.append(_upload_name(self.bucket, upload))
            else:
                aborted.append(self._abort_upload(upload))
        return aborted

    def _multipart_uploads(self, prefix: str = "") -> list[dict[str, Any]]:
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            return [upload for page in pages for upload in page.get("Uploads", [])]
        except boto_errors.ClientError as exc:
            if _error_code(exc) == "NoSuchBucket":
                return []
            raise _store_error(exc, f"list the multipart uploads of {self.bucket}") from exc
        except _BACKEND_ERRORS as exc:
            raise _store_error(exc, f"list the multipart uploads of {self.bucket}") from exc

    def _abort_upload(self, upload: dict[str, Any]) -> str:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        except boto_errors.ClientError as exc:
            if _error_code(exc) != "NoSuchUpload":
                raise _store_error(exc, f"abort the upload of {upload['Key']}") from exc
        except _BACKEND_ERRORS as exc:
            raise _store_error(exc, f"abort the upload of {upload['Key']}") from exc
        return _upload_name(self.bucket, upload)

    def _new_client(self, access_key: str, secret_key: str) -> Any:
        with _SESSION_LOCK:
            return _SESSION.client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                region_name=self.region_name,
                verify=self._verify,
                config=self._config,
            )

    def _own_location(self, image_id: str) -> S3Location:
        if not image_id or "/" in image_id:
            raise ValueError(f"Image id {image_id!r} cannot be used as an S3 key")
        return S3Location(
            scheme=self.scheme,
            endpoint=self.endpoint,
            bucket=self.bucket,
            key=image_id,
            access_key=self.access_key,
            secret_key=self._secret_key,
        )

    def _location(self, uri: str) -> tuple[S3Location, Any]:
        """The parsed location and the client to reach it with."""
        try:
            location = parse_location(uri)
        except ValueError as exc:
            raise StoreNotFound(f"{public_uri(uri)!r} is not an S3 location: {exc}") from None
        if location.endpoint.rstrip("/") != self.endpoint:
            raise StoreNotFound(
                f"{location.uri(credentials=False)!r} is not a location of this S3 store"
            )
        if location.access_key in (None, self.access_key):
            return location, self.client
        return location, self._new_client(location.access_key, location.secret_key or "")

    def _start_put(
        self,
        operation: str,
        params: dict[str, Any],
        headers: dict[str, str],
        length: int,
        *,
        digest: bool = True,
    ) -> StreamedPut:
        """Start a streamed request of ``operation`` (``put_object``, ``upload_part``).

        ``headers`` must be those ``params`` put in the request (they are
        signed). Nothing of the body has gone out when S3 refuses the request,
        so a missing bucket is created (when allowed), and an S3 that cannot be
        reached or answers 5xx is tried again, as botocore would.
        """
        created = False
        attempt, backoff = 1, 0.5
        while True:
            try:
                url = self.client.generate_presigned_url(
                    operation,
                    Params={"Bucket": self.bucket, **params},
                    ExpiresIn=PRESIGNED_SECONDS,
                )
                return StreamedPut(
                    url,
                    headers,
                    length,
                    timeout=self._config.read_timeout,
                    ssl_context=self._ssl_context(),
                    digest=digest,
                )
            except PutRefused as exc:
                error = _answer_error(exc.answer, operation)
                if _error_code(error) == "NoSuchBucket":
                    if not self.create_bucket_on_put:
                        raise self._no_bucket() from exc
                    if not created:
                        created = True
                        try:
                            self._create_bucket()
                        except _BACKEND_ERRORS as failure:
                            raise _store_error(failure, f"create {self.bucket}") from failure
                        continue
                if exc.answer.status < 500 or attempt >= self._max_attempts:
                    raise self._write_error(error, f"write {params['Key']}") from exc
            except OSError as exc:
                if attempt >= self._max_attempts:
                    raise _store_error(
                        boto_errors.ConnectionError(error=exc), f"write {params['Key']}"
                    ) from exc
            except _BACKEND_ERRORS as exc:
                raise _store_error(exc, f"write {params['Key']}") from exc
            attempt += 1
            time.sleep(backoff)
            backoff *= 2

    def _write_error(self, exc: Exception, action: str) -> StoreError:
        """The store's error for a write request that failed."""
        if isinstance(exc, boto_errors.ClientError) and _error_code(exc) == "NoSuchBucket":
            return self._no_bucket()
        return _store_error(exc, action)

    def _no_bucket(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"The bucket {self.bucket!r} does not exist; create it or set "
            "s3_store_create_bucket_on_put"
        )

    def _ssl_context(self) -> ssl.SSLContext:
        if self._tls is None:
            cafile = self._verify if isinstance(self._verify, str) else None
            self._tls = ssl.create_default_context(cafile=cafile)
        return self._tls

    def _in_bucket(self, request: Callable[[], Any]) -> Any:
        """Run a request that creates an object, creating the missing bucket when allowed."""
        try:
            return request()
        except boto_errors.ClientError as exc:
            if _error_code(exc) != "NoSuchBucket":
                raise
            if not self.create_bucket_on_put:
                raise self._no_bucket() from exc
        self._create_bucket()
        return request()

    def _create_bucket(self) -> None:
        bucket: dict[str, Any] = {"Bucket": self.bucket}
        if self.region_name != "us-east-1":
            bucket["CreateBucketConfiguration"] = {"LocationConstraint": self.region_name}
        try:
            self.client.create_bucket(**bucket)
        except boto_errors.ClientError as exc:
            # Another writer may have been first.
            if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


class _S3Writer(SegmentedWriter):
    """Parts of one multipart upload, started with the first part and completed at commit."""

    # Parts are small (10 MiB by default) and S3 takes a while to answer each.
    finishes_in_background = True

    def __init__(self, store: S3Store, location: S3Location, size: int | None) -> None:
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
        self._upload_id: str | None = None
        # Written by the thread that sends a buffered part, read after it is done.
        self._parts: dict[int, str] = {}

    @property
    def upload_id(self) -> str | None:
        """The multipart upload in progress, if any (exposed for tests and debugging)."""
        return self._upload_id

    def _start_whole(self, length: int) -> StreamedPut:
        return self._store._start_put(
            "put_object",
            {"Key": self._location.key, "IfNoneMatch": "*"},
            {"If-None-Match": "*"},
            length,
            digest=False,
        )

    def _start_piece(self, number: int, length: int | None) -> StreamedPut:
        store = self._store
        assert length is not None, "S3 parts are sent with their length"
        if number > MAX_PARTS:
            raise StoreFull(
                f"Image data exceeds {MAX_PARTS} parts of {store.large_object_chunk_size} bytes, "
                "the most one S3 multipart upload holds; raise large_object_chunk_size"
            )
        if self._upload_id is None:
            with self._translated():
                response = store._in_bucket(
                    lambda: store.client.create_multipart_upload(
                        Bucket=store.bucket, Key=self._location.key
                    )
                )
            self._upload_id = str(response["UploadId"])
        return store._start_put(
            "upload_part",
            {"Key": self._location.key, "UploadId": self._upload_id, "PartNumber": number},
            {},
            length,
        )

    def _whole_stored(self, request: StreamedPut, answer: PutAnswer) -> None:
        if self.image_md5 is not None and not _etag_matches(answer, self.image_md5):
            # If-None-Match made it ours: nobody else's data is removed.
            with self._translated():
                self._store.client.delete_object(Bucket=self._store.bucket, Key=self._location.key)
            raise StoreError(_etag_mismatch(self._location.key, answer, self.image_md5, request))

    def _piece_stored(self, number: int, request: StreamedPut, answer: PutAnswer) -> None:
        assert request.md5 is not None
        md5 = request.md5.hexdigest()
        if not _etag_matches(answer, md5):
            raise StoreError(
                _etag_mismatch(f"part {number} of {self._location.key}", answer, md5, request)
            )
        self._parts[number] = answer.headers.get("etag", "")

    def _join(self) -> None:
        parts = [{"PartNumber": n, "ETag": self._parts[n]} for n in sorted(self._parts)]
        with self._translated():
            self._store.client.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self._location.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )

    def _discard_pieces(self) -> None:
        self._parts = {}
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self._store.client.abort_multipart_upload(
                Bucket=self._store.bucket, Key=self._location.key, UploadId=upload_id
            )
        except boto_errors.ClientError as exc:
            if _error_code(exc) != "NoSuchUpload":
                _LOG.warning("Orphaned S3 multipart upload %s: %s", upload_id, exc)
        except _BACKEND_ERRORS as exc:
            _LOG.warning("Orphaned S3 multipart upload %s: %s", upload_id, exc)

    def _request_error(self, exc: Exception) -> StoreError:
        action = f"write {self._location.uri(credentials=False)}"
        if isinstance(exc, PutRefused):
            return self._store._write_error(_answer_error(exc.answer, "PutObject"), action)
        return _store_error(boto_errors.ConnectionError(error=exc), action)

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """botocore's errors as the store's."""
        try:
            yield
        except _BACKEND_ERRORS as exc:
            action = f"write {self._location.uri(credentials=False)}"
            raise self._store._write_error(exc, action) from exc


def _answer_error(answer: PutAnswer, operation: str) -> boto_errors.ClientError:
    """An S3 error answer as botocore would have raised it."""
    text = answer.body.decode("utf-8", "replace")
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    return boto_errors.ClientError(
        {
            "Error": {
                "Code": code[1] if code else str(answer.status),
                "Message": message[1] if message else answer.reason,
            },
            "ResponseMetadata": {"HTTPStatusCode": answer.status},
        },
        operation,
    )


def _etag_matches(answer: PutAnswer, md5: str) -> bool:
    """Whether S3's ETag is ``md5``, or is not an MD5 by S3's rules."""
    encryption = answer.headers.get("x-amz-server-side-encryption", "")
    if encryption.startswith("aws:kms") or answer.headers.get(
        "x-amz-server-side-encryption-customer-algorithm"
    ):
        return True
    return str(answer.headers.get("etag", "")).strip('"') == md5


def _etag_mismatch(what: str, answer: PutAnswer, md5: str, request: StreamedPut) -> str:
    return (
        f"S3 stored {what} with ETag {answer.headers.get('etag')!r}, but the "
        f"{request.sent} bytes sent have MD5 {md5}"
    )


class _S3Chunks(Iterator[bytes]):
    """Chunks of a GET response body; closing it releases the connection."""

    def __init__(self, body: Any, chunk_size: int, public: str) -> None:
        self._body: Any = body
        self._chunks = body.iter_chunks(chunk_size)
        self._public = public

    def __next__(self) -> bytes:
        if self._body is None:
            raise StopIteration
        try:
            chunk: bytes = next(self._chunks)
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
            body.close()

    def __del__(self) -> None:
        self.close()
