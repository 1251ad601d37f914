"""A store that runs out of room, through a real glimpse-api: a file store on a small
filesystem of its own (a tmpfs mounted for the test).

The upload that does not fit gets 413 in Glance's error format; the image is queued
again; no temporary is left and the filesystem has as much room as before; the other
store, and the data already in the full one, are unaffected.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import swiftclient

from tests.data_path.conftest import Client, StartServer, wait_for
from tests.data_path.wire import Upload
from tests.store.conftest import saio_settings, swift_connection, swift_objects, unique_name
from tests.support.server import free_port

MiB = 1 << 20
SMALL_DISK = 8 * MiB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 8 MiB, mounted for the test and unmounted after it."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK},mode=0700", "tmpfs", mount_point],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        why = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        pytest.skip(f"cannot mount a small tmpfs (needs root or CAP_SYS_ADMIN): {why}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", mount_point], check=True, capture_output=True, timeout=30)


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def put(client: Client, image_id: str, store: str, data: bytes) -> int:
    response = client.http.put(
        f"/v2/images/{image_id}/file",
        content=data,
        headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store},
    )
    return response.status_code


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_full_file_store_answers_413_and_keeps_nothing(
    start_server: StartServer, small_disk: Path, chunked: bool
) -> None:
    folder = small_disk / "images"
    server = start_server(
        {
            "DEFAULT": {"enabled_backends": "small:file, roomy:file"},
            "glance_store": {"default_backend": "roomy"},
            "small": {"filesystem_store_datadir": folder},
        }
    )
    client = Client(server)
    resident = client.create_image()
    resident_data = os.urandom(MiB)
    assert put(client, resident, "small", resident_data) == 204
    room = free_bytes(small_disk)
    image_id = client.create_image()

    too_big = 2 * SMALL_DISK
    headers = {"X-Image-Meta-Store": "small", "Accept": "application/json"}
    upload = Upload(server.url, image_id, headers, content_length=None if chunked else too_big)
    answer = upload.send_until_answered(os.urandom(MiB) for _ in range(too_big // MiB))
    if answer is None:
        answer = upload.finish()
    upload.close()

    assert answer.status == 413, answer
    assert answer.headers["content-type"] == "application/json"
    body = json.loads(answer.body)
    assert set(body) == {"code", "title", "message"}
    assert body["code"] == "413 Request Entity Too Large"
    assert body["message"].startswith("Image storage media is full: ")
    image = client.image(image_id)
    assert image["status"] == "queued" and image["size"] is None
    assert sorted(os.listdir(folder)) == [resident]  # no temporary left
    assert free_bytes(small_disk) == room
    # The data already there and the other store are unaffected.
    assert client.http.get(f"/v2/images/{resident}/file").content == resident_data
    data = os.urandom(3 * MiB)
    assert put(client, image_id, "roomy", data) == 204
    assert client.image(image_id)["stores"] == "roomy"
    assert client.http.get(f"/v2/images/{image_id}/file").content == data


# --- Swift and S3: a device that fills up, and a quota --------------------------------------
#
# A second swift-saio whose only device is a 24 MiB tmpfs, behind a proxy of the test's own:
# the same Swift, with the container_quotas middleware added and error suppression off. A
# full device answers 507 to the proxy, which then answers 503, and Swift's proxy stops
# using that device for a minute; a real cluster then sends deletes to other devices,
# while this one has no other. ``error_suppression_interval = 0`` lets the deletes of the
# cleanup through, as a cluster with more than one device would.

SMALL_DEVICE = 24 * MiB


def _saio_script() -> Path:
    named = os.environ.get("GLIMPSE_SWIFT_SAIO") or os.environ.get("SWIFT_SAIO_SCRIPT")
    script = Path(named) if named else Path(__file__).parents[3] / "shared/tools/swift-saio.sh"
    if not script.is_file():
        pytest.skip(f"swift-saio.sh is not at {script}: no second Swift can be started")
    return script


def _free_port_run(length: int) -> int:
    """The first of ``length`` consecutive loopback ports nobody listens on."""
    for _ in range(50):
        first = free_port()
        if first + length < 65536 and all(_port_free(first + n) for n in range(1, length)):
            return first
    raise RuntimeError("no run of free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def small_swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Swift and S3 on a 24 MiB device: the auth URL and endpoint of the test's proxy."""
    main = saio_settings("SWIFT_AUTH_URL")  # starts the shared store, whose venv is reused
    script = _saio_script()
    base = tmp_path_factory.mktemp("small-swift")
    device = base / "srv" / "d1"
    device.mkdir(parents=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DEVICE}", "tmpfs", device],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        why = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        pytest.skip(f"cannot mount a small tmpfs (needs root or CAP_SYS_ADMIN): {why}")
    env = {
        **os.environ,
        "SWIFT_SAIO_PORT": str(free_port()),
        "SWIFT_SAIO_BACKEND_PORT": str(_free_port_run(3)),
    }
    saved = Path(os.environ.get("SWIFT_SAIO_BASE", "/tmp/swift-saio")) / "etc" / "saved"
    if saved.is_file() and main:
        env["SWIFT_SAIO_VENV"] = saved.read_text().split()[2]
    proxy: subprocess.Popen[bytes] | None = None
    try:
        started = subprocess.run(
            ["bash", str(script), "start", str(base)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert started.returncode == 0, started.stderr[-3000:]
        venv = (base / "etc" / "saved").read_text().split()[2]
        port = free_port()
        conf = (base / "etc" / "proxy-server.conf").read_text()
        conf = re.sub(r"(?m)^bind_port = \d+$", f"bind_port = {port}", conf)
        conf = conf.replace(" copy slo ", " copy container-quotas slo ")
        conf = conf.replace(
            "[app:proxy-server]\n", "[app:proxy-server]\nerror_suppression_interval = 0\n"
        )
        conf += "\n[filter:container-quotas]\nuse = egg:swift#container_quotas\n"
        proxy_conf = base / "etc" / "test-proxy.conf"
        proxy_conf.write_text(conf)
        with (base / "log" / "test-proxy.log").open("wb") as log:
            proxy = subprocess.Popen(
                [f"{venv}/bin/swift-proxy-server", str(proxy_conf), "-v"],
                env={**os.environ, "PYTHONPATH": str(base / "lib")},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _healthy(url), "the test's Swift proxy", timeout=30)
        yield {
            **main,
            "SWIFT_AUTH_URL": f"{url}/auth/v1.0",
            "S3_ENDPOINT": url,
            "device": str(device),
        }
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        subprocess.run(["bash", str(script), "stop", str(base)], capture_output=True, check=False)
        subprocess.run(["umount", device], capture_output=True, check=False, timeout=30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthcheck", timeout=1.0, trust_env=False).text == "OK"
    except httpx.TransportError:
        return False


def _object_store(
    settings: dict[str, str], store_type: str, place: str, piece: int
) -> dict[str, object]:
    """Options of a Swift or S3 store in ``place`` with pieces of ``piece`` MiB."""
    if store_type == "swift":
        return {
            "swift_store_auth_address": settings["SWIFT_AUTH_URL"],
            "swift_store_user": settings["SWIFT_USER"],
            "swift_store_key": settings["SWIFT_KEY"],
            "swift_store_auth_version": 1,
            "swift_store_container": place,
            "swift_store_large_object_size": piece,
            "swift_store_large_object_chunk_size": piece,
            "swift_store_retries": 0,
        }
    return {
        "s3_store_host": settings["S3_ENDPOINT"],
        "s3_store_access_key": settings["S3_ACCESS_KEY"],
        "s3_store_secret_key": settings["S3_SECRET_KEY"],
        "s3_store_bucket": place,
        "s3_store_large_object_size": piece,
        "s3_store_large_object_chunk_size": piece,
    }


def _everything_in(settings: dict[str, str], place: str) -> list[str]:
    """Objects of the container (S3 buckets are containers too) and of its S3 segments."""
    swift = swift_connection(settings)
    names = []
    for container in (place, f"{place}+segments"):
        try:
            names += swift_objects(swift, container)
        except swiftclient.ClientException as exc:
            if exc.http_status != 404:
                raise
    return names


def _upload_refused(server_url: str, image_id: str, store: str, size: int) -> Any:
    headers = {"X-Image-Meta-Store": store, "Accept": "application/json"}
    upload = Upload(server_url, image_id, headers, content_length=size)
    answer = upload.send_until_answered(os.urandom(MiB) for _ in range(size // MiB))
    if answer is None:
        answer = upload.finish()
    upload.close()
    return answer


@pytest.mark.parametrize("store_type", ["swift", "s3"])
def test_a_full_swift_device_is_503_and_leaves_nothing(
    start_server: StartServer, small_swift: dict[str, str], store_type: str
) -> None:
    place = unique_name()
    swift_connection(small_swift).put_container(place)
    piece = 1 if store_type == "swift" else 5
    server = start_server(
        {
            "DEFAULT": {"enabled_backends": "local:file, full:" + store_type},
            "glance_store": {"default_backend": "local"},
            "full": _object_store(small_swift, store_type, place, piece),
        }
    )
    client = Client(server)
    device = Path(small_swift["device"])
    room = free_bytes(device)
    image_id = client.create_image()

    answer = _upload_refused(server.url, image_id, "full", 2 * SMALL_DEVICE)

    # Swift's proxy says 503 for a device without room: Glimpse cannot tell it from a
    # store that is down, and says the same.
    assert answer.status == 503, answer
    body = json.loads(answer.body)
    assert body["code"] == "503 Service Unavailable"
    assert body["message"].startswith("The image store is unavailable: ")
    image = client.image(image_id)
    assert image["status"] == "queued" and image["size"] is None
    assert _everything_in(small_swift, place) == []
    # What the pieces took is free again (bar the tombstones and database pages of the
    # deletes: a few KiB).
    assert free_bytes(device) > room - MiB
    # The other store is unaffected, and the full one takes what fits now.
    assert put(client, image_id, "local", b"x" * MiB) == 204
    smaller = client.create_image()
    assert put(client, smaller, "full", b"y" * MiB) == 204
    assert client.http.get(f"/v2/images/{smaller}/file").content == b"y" * MiB


@pytest.mark.parametrize("store_type", ["swift", "s3"])
def test_a_swift_container_quota_is_413_and_leaves_nothing(
    start_server: StartServer, small_swift: dict[str, str], store_type: str
) -> None:
    place = unique_name()
    quota = {"X-Container-Meta-Quota-Bytes": str(2 * MiB)}
    swift_connection(small_swift).put_container(place, headers=quota)
    server = start_server(
        {
            "DEFAULT": {"enabled_backends": "local:file, limited:" + store_type},
            "glance_store": {"default_backend": "local"},
            "limited": _object_store(small_swift, store_type, place, 64),
        }
    )
    client = Client(server)
    image_id = client.create_image()

    answer = _upload_refused(server.url, image_id, "limited", 3 * MiB)

    assert answer.status == 413, answer
    body = json.loads(answer.body)
    assert body["code"] == "413 Request Entity Too Large"
    assert body["message"].startswith("Image storage media is full: ")
    assert client.image(image_id)["status"] == "queued"
    assert _everything_in(small_swift, place) == []
    # Within the quota the same store takes the image.
    assert put(client, image_id, "limited", b"z" * MiB) == 204
    assert client.image(image_id)["stores"] == "limited"
