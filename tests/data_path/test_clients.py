"""Image data round trips through the real clients: the ``glance`` command and openstacksdk.

Both verify a download against ``os_hash_value`` (or ``checksum``/``Content-MD5``), so a
round trip also proves the server's digests are right; tampering with the stored
file shows the verification is really done.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from openstack.connection import Connection

from tests.data_path.conftest import store_dir
from tests.support import sdk
from tests.support.server import Server, running

# openstacksdk warns about its own deprecated internals on every call.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

GLANCE = str(Path(sys.executable).with_name("glance"))
ALICE = "alice:projA:member"
DATA = os.urandom((5 << 20) + 123)

Glance = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def server(sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(sqlite_url, tmp_path_factory.mktemp("clients")) as server:
        yield server


@pytest.fixture
def glance(server: Server, tmp_path: Path) -> Glance:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["HOME"] = str(tmp_path)

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        # A closed stdin: glanceclient reads image data from any stdin that is not a tty.
        command = [
            "sh",
            "-c",
            'exec "$@" <&-',
            "glance",
            GLANCE,
            "--os-image-url",
            server.url,
            "--os-auth-token",
            ALICE,
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == expect, done
        return done

    return run


def properties(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    rows = [
        line.strip()[1:-1].split("|") for line in done.stdout.splitlines() if line.startswith("|")
    ]
    return {key.strip(): value.strip() for key, value in rows[1:]}


def test_glance_create_upload_download_round_trip(
    glance: Glance, server: Server, tmp_path: Path
) -> None:
    source = tmp_path / "disk.raw"
    source.write_bytes(DATA)
    created = properties(
        glance(
            "image-create",
            "--name",
            "with-data",
            "--file",
            str(source),
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
        )
    )
    assert created["status"] == "active"
    assert created["size"] == str(len(DATA))
    assert created["checksum"] == hashlib.md5(DATA).hexdigest()
    assert created["os_hash_algo"] == "sha512"
    api = httpx.Client(base_url=server.url, trust_env=False, headers={"X-Auth-Token": ALICE})
    image = api.get(f"/v2/images/{created['id']}").json()
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    out = tmp_path / "out.raw"
    glance("image-download", "--file", str(out), created["id"])
    assert out.read_bytes() == DATA

    # image-upload into a queued image.
    queued = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    image_id = queued.json()["id"]
    glance("image-upload", "--file", str(source), image_id)
    image = api.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "active"
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()

    # The client checks what it receives: same size, different bytes, refused.
    (store_dir(server) / image_id).write_bytes(b"\0" * len(DATA))
    failed = glance("image-download", "--file", str(tmp_path / "bad.raw"), image_id, expect=1)
    assert "corrupt" in failed.stderr.lower() or "does not match" in failed.stderr.lower()
    api.close()


@pytest.fixture
def conn(server: Server) -> Iterator[Connection]:
    connection = sdk.connection(server.url, ALICE)
    yield connection
    connection.close()


def test_openstacksdk_create_upload_download_round_trip(conn: Connection) -> None:
    image = conn.image.create_image(
        "sdk",
        data=DATA,
        disk_format="raw",
        container_format="bare",
        allow_duplicates=True,
        validate_checksum=True,
    )
    image = conn.image.get_image(image.id)
    assert image.status == "active" and image.size == len(DATA)
    assert image.hash_algo == "sha512"
    assert image.hash_value == hashlib.sha512(DATA).hexdigest()
    assert conn.image.download_image(image).content == DATA

    # Deprecated (a PendingDeprecationWarning, ignored above) but still used.
    legacy = conn.image.upload_image(
        container_format="bare", disk_format="raw", data=DATA, name="legacy"
    )
    legacy = conn.image.get_image(legacy.id)
    assert legacy.status == "active" and legacy.checksum == hashlib.md5(DATA).hexdigest()
    streamed = conn.image.download_image(legacy, stream=True)
    assert b"".join(streamed.iter_content(1 << 20)) == DATA
