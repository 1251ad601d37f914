"""The stores the driver conformance suite runs against.

Adding a driver to the suite is one entry in ``HARNESSES``: a function that
builds the driver on a fresh, empty backend and says how to list everything
the backend holds (so tests can prove aborts and failures leave nothing).
Drivers needing an outside service should skip when it is not configured.
"""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
import swiftclient
from botocore.config import Config as BotoConfig

from glimpse import config
from glimpse.imports.web_download import UriFilter
from glimpse.store import StoredObject, StoreDriver, StoreWriter
from glimpse.store.base import BytesLike
from glimpse.store.filesystem import FilesystemStore
from glimpse.store.http import HttpStore
from glimpse.store.s3 import S3Store
from glimpse.store.swift import SwiftStore


@dataclasses.dataclass
class StoreHarness:
    """A driver under test plus a view of its backend from the outside."""

    driver: StoreDriver
    #: Names of every object and temporary held by the backend, sorted.
    leftovers: Callable[[], list[str]]
    #: Run after the test: removes the backend (a container, a bucket, a server).
    cleanup: Callable[[], None] = lambda: None


def _filesystem(tmp_path: Path) -> StoreHarness:
    store = FilesystemStore(tmp_path / "images")
    return StoreHarness(store, lambda: sorted(os.listdir(store.datadir)))


# --- The shared Swift + S3 store (swift-saio) ---------------------------------
#
# Tests use the store named by SWIFT_AUTH_URL / S3_ENDPOINT (and the other
# variables swift-saio.sh prints). When neither is set they start swift-saio
# themselves, once per session, from shared/tools beside the repository (or
# GLIMPSE_SWIFT_SAIO), and stop it at the end if they started it;
# GLIMPSE_TEST_SAIO=0 turns that off. Each test gets its own container or
# bucket, "test-<uuid8>", removed at teardown.

MiB = 1 << 20
_SAIO_KEYS = (
    "SWIFT_AUTH_URL",
    "SWIFT_USER",
    "SWIFT_KEY",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_REGION",
)


@dataclasses.dataclass
class _Saio:
    settings: dict[str, str] | None = None
    failure: str | None = None
    script: Path | None = None
    started_here: bool = False


_saio = _Saio()


def _saio_script() -> Path | None:
    named = os.environ.get("GLIMPSE_SWIFT_SAIO")
    candidate = Path(named) if named else Path(__file__).parents[3] / "shared/tools/swift-saio.sh"
    return candidate if candidate.is_file() else None


def _parse_exports(output: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in output.splitlines():
        words = shlex.split(line)
        if words[:1] == ["export"]:
            for assignment in words[1:]:
                name, _, value = assignment.partition("=")
                settings[name] = value
    return settings


def _start_saio(script: Path) -> dict[str, str]:
    # A lock, so pytest-xdist workers do not race each other into `start`.
    with open(os.path.join(tempfile.gettempdir(), "glimpse-swift-saio.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        running = subprocess.run(["bash", str(script), "status"], capture_output=True, check=False)
        started = subprocess.run(
            ["bash", str(script), "start"],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    if started.returncode != 0:
        raise RuntimeError(f"{script} start failed: {started.stderr.strip()[-2000:]}")
    _saio.started_here = running.returncode != 0
    _saio.script = script
    return _parse_exports(started.stdout)


def saio_settings(variable: str) -> dict[str, str]:
    """The test store's settings; skips the test when ``variable`` has no store behind it."""
    if _saio.settings is None and _saio.failure is None:
        from_env = {key: os.environ[key] for key in _SAIO_KEYS if os.environ.get(key)}
        script = _saio_script()
        if "SWIFT_AUTH_URL" in from_env or "S3_ENDPOINT" in from_env:
            _saio.settings = from_env
        elif os.environ.get("GLIMPSE_TEST_SAIO") == "0" or script is None:
            _saio.settings = {}
        else:
            try:
                _saio.settings = _start_saio(script)
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                _saio.failure = str(exc)
    if _saio.failure is not None:
        pytest.fail(f"The Swift/S3 test store did not start: {_saio.failure}")
    assert _saio.settings is not None
    if not _saio.settings.get(variable):
        why = (
            "GLIMPSE_TEST_SAIO=0"
            if os.environ.get("GLIMPSE_TEST_SAIO") == "0"
            else ("swift-saio.sh was not found to start one")
        )
        pytest.skip(f"{variable} is not set and {why}")
    return _saio.settings


@pytest.fixture(scope="session", autouse=True)
def _stop_the_saio_this_session_started() -> Iterator[None]:
    yield
    # Under pytest-xdist other workers may still use it: leave it running.
    if _saio.started_here and _saio.script and not os.environ.get("PYTEST_XDIST_WORKER"):
        subprocess.run(["bash", str(_saio.script), "stop"], capture_output=True, check=False)


def swift_connection(settings: dict[str, str], **overrides: str) -> swiftclient.Connection:
    """A swiftclient connection to the test store, for looking at it from the outside."""
    credentials = {
        "authurl": settings["SWIFT_AUTH_URL"],
        "user": settings["SWIFT_USER"],
        "key": settings["SWIFT_KEY"],
        **overrides,
    }
    return swiftclient.Connection(auth_version="1", retries=1, **credentials)


def s3_client(settings: dict[str, str]) -> Any:
    """A boto3 client of the test store, for looking at it from the outside."""
    key = (settings["S3_ENDPOINT"], settings["S3_ACCESS_KEY"])
    if key not in _s3_clients:
        _s3_clients[key] = boto3.session.Session().client(
            "s3",
            endpoint_url=settings["S3_ENDPOINT"],
            aws_access_key_id=settings["S3_ACCESS_KEY"],
            aws_secret_access_key=settings["S3_SECRET_KEY"],
            region_name=settings.get("S3_REGION") or "us-east-1",
            config=BotoConfig(s3={"addressing_style": "path"}),
        )
    return _s3_clients[key]


# Making a client costs about half a second; they are thread-safe, so one serves all tests.
_s3_clients: dict[tuple[str, str], Any] = {}


def swift_objects(connection: swiftclient.Connection, container: str) -> list[str]:
    return sorted(
        item["name"] for item in connection.get_container(container, full_listing=True)[1]
    )


def remove_swift_container(connection: swiftclient.Connection, container: str) -> None:
    try:
        for name in swift_objects(connection, container):
            connection.delete_object(container, name)
        connection.delete_container(container)
    except swiftclient.ClientException as exc:
        if exc.http_status != 404:
            raise


def s3_contents(client: Any, bucket: str) -> list[str]:
    """Keys of the bucket, then its unfinished multipart uploads as ``upload:<key>``."""
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sorted(keys) + sorted(f"upload:{upload['Key']}" for upload in uploads)


def remove_s3_bucket(client: Any, bucket: str) -> None:
    try:
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for key in s3_contents(client, bucket):
            if not key.startswith("upload:"):
                client.delete_object(Bucket=bucket, Key=key)
        client.delete_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise


def unique_name() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def _swift(tmp_path: Path) -> StoreHarness:
    settings = saio_settings("SWIFT_AUTH_URL")
    outside, container = swift_connection(settings), unique_name()
    outside.put_container(container)
    # 1 MiB segments (Swift's smallest by default) so uploads past 1 MiB,
    # including the aborted ones, go through SLO segments.
    store = SwiftStore(
        settings["SWIFT_AUTH_URL"],
        settings["SWIFT_USER"],
        settings["SWIFT_KEY"],
        container,
        auth_version="1",
        large_object_size=MiB,
        large_object_chunk_size=MiB,
    )
    return StoreHarness(
        store,
        lambda: swift_objects(outside, container),
        lambda: remove_swift_container(outside, container),
    )


def _s3(tmp_path: Path) -> StoreHarness:
    settings = saio_settings("S3_ENDPOINT")
    outside, bucket = s3_client(settings), unique_name()
    outside.create_bucket(Bucket=bucket)
    # 5 MiB parts, the S3 minimum, so the 64 MiB upload goes multipart.
    store = S3Store(
        settings["S3_ENDPOINT"],
        settings["S3_ACCESS_KEY"],
        settings["S3_SECRET_KEY"],
        bucket,
        region_name=settings.get("S3_REGION", ""),
        large_object_size=5 * MiB,
        large_object_chunk_size=5 * MiB,
    )
    return StoreHarness(
        store,
        lambda: s3_contents(outside, bucket),
        lambda: remove_s3_bucket(outside, bucket),
    )


# --- A local web server for the read-only http store ----------------------------


class RangeRequestHandler(BaseHTTPRequestHandler):
    """Serves files of ``server.directory`` with single byte ranges (RFC 9110 §14)."""

    protocol_version = "HTTP/1.1"
    server: WebServer

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _serve(self, send_body: bool) -> None:
        path = os.path.join(self.server.directory, self.path.lstrip("/").partition("?")[0])
        if not os.path.isfile(path):
            self._reply(404, {}, b"")
            return
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            first, last, status = 0, size - 1, 200
            ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if ranged and self.server.honours_ranges:
                first = int(ranged[1])
                last = min(int(ranged[2]), size - 1) if ranged[2] else size - 1
                if first >= size:
                    self._reply(416, {"Content-Range": f"bytes */{size}"}, b"")
                    return
                status = 206
            headers = {"Content-Length": str(last - first + 1)}
            if status == 206:
                headers["Content-Range"] = f"bytes {first}-{last}/{size}"
            self._reply(status, headers, None)
            if send_body:
                file.seek(first)
                remaining = last - first + 1
                while remaining > 0:
                    piece = file.read(min(MiB, remaining))
                    self.wfile.write(piece)
                    remaining -= len(piece)

    def _reply(self, status: int, headers: dict[str, str], body: bytes | None) -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(body or b"")), **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)


def private_files_handler(user: str, password: str) -> type[RangeRequestHandler]:
    """A handler whose files under ``/private/`` need HTTP basic auth as ``user:password``."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class PrivateFilesHandler(RangeRequestHandler):
        def _serve(self, send_body: bool) -> None:
            if self.path.startswith("/private/") and self.headers.get("Authorization") != expected:
                self._reply(401, {}, b"")
                return
            super()._serve(send_body)

    return PrivateFilesHandler


class WebServer(ThreadingHTTPServer):
    """A web server on a free loopback port, in a thread; ``url(name)`` addresses a file."""

    daemon_threads = True

    def __init__(
        self,
        directory: Path,
        handler: type[BaseHTTPRequestHandler] = RangeRequestHandler,
        honours_ranges: bool = True,
    ) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.directory = str(directory)
        self.honours_ranges = honours_ranges
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes a read early breaks the pipe: that is no error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()


def uri_filter(**options: Any) -> UriFilter:
    """``[import_filtering_opts]`` with ``options`` set, as the http store reads it."""
    conf = config.new_conf([])
    for name, value in options.items():
        conf.set_override(name, value, group="import_filtering_opts")
    return UriFilter.from_conf(conf)


def loopback_filter() -> UriFilter:
    """The filter an operator sets to let the store read the test servers on 127.0.0.1."""
    return uri_filter(allowed_hosts=["127.0.0.1"], allowed_ports=[])


class _HttpStoreWithSideDoor(HttpStore):
    """The http store, plus a side door the suite uses to put files on the test server.

    The http store cannot write, so the read tests of the suite get their data
    in through ``begin_write``, which here writes into the served directory
    with a FilesystemStore; everything they check (reads, ranges, stat) runs
    the real HttpStore code. ``read_only`` stays True, so every test of the
    write contract is skipped.
    """

    def __init__(self, server: WebServer) -> None:
        super().__init__(uri_filter=loopback_filter())
        self._server = server
        self._side_door = FilesystemStore(server.directory)

    def begin_write(self, image_id: str, size: int | None = None) -> StoreWriter:
        return _SideDoorWriter(
            self._side_door.begin_write(image_id, size), self._server.url(image_id)
        )


class _SideDoorWriter(StoreWriter):
    def __init__(self, writer: StoreWriter, url: str) -> None:
        self._writer, self._url = writer, url

    def write(self, data: BytesLike) -> None:
        self._writer.write(data)

    def commit(self) -> StoredObject:
        stored = self._writer.commit()
        return dataclasses.replace(stored, uri=self._url)

    def abort(self) -> None:
        self._writer.abort()


#: The conformance tests a read-only driver must pass; the others test writing.
READ_CONTRACT = frozenset(
    {
        "test_round_trip",
        "test_zero_byte_object",
        "test_large_object_is_streamed",
        "test_ranged_read",
        "test_last_byte",
        "test_read_rejects_impossible_ranges",
        "test_local_path_is_absent_or_holds_the_bytes",
    }
)


@pytest.fixture(autouse=True)
def _read_only_drivers_skip_the_write_contract(request: pytest.FixtureRequest) -> None:
    if "harness" not in request.fixturenames:
        return
    driver = request.getfixturevalue("harness").driver
    if getattr(driver, "read_only", False) and request.node.originalname not in READ_CONTRACT:
        pytest.skip(
            f"{driver!r} is read-only (begin_write and delete raise StoreUnsupported): "
            "only the read contract applies"
        )


def _http(tmp_path: Path) -> StoreHarness:
    served = tmp_path / "served"
    served.mkdir()
    server = WebServer(served)
    return StoreHarness(
        _HttpStoreWithSideDoor(server),
        lambda: sorted(os.listdir(served)),
        server.stop,
    )


HARNESSES: dict[str, Callable[[Path], StoreHarness]] = {
    "filesystem": _filesystem,
    "http": _http,
    "s3": _s3,
    "swift": _swift,
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreHarness]:
    built = HARNESSES[request.param](tmp_path)
    yield built
    built.cleanup()


@pytest.fixture
def driver(harness: StoreHarness) -> StoreDriver:
    return harness.driver


@pytest.fixture
def image_id() -> str:
    return str(uuid.uuid4())
