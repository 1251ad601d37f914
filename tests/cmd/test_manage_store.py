"""glimpse-manage store purge_uploads: what dead writers left in a folder, in Swift and in S3,
swept by age, store by store, with a dry run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from glimpse import config
from glimpse.store.base import StoreWriter
from glimpse.store.registry import Stores
from tests.store.conftest import (
    remove_s3_bucket,
    remove_swift_container,
    s3_client,
    s3_contents,
    saio_settings,
    swift_connection,
    swift_objects,
    unique_name,
)

MiB = 1 << 20


@pytest.fixture
def conf_path(tmp_path: Path) -> Iterator[Path]:
    """A configuration with a file store, a Swift store (1 MiB segments) and an S3 store
    (5 MiB parts), each on a container or bucket of the test's own."""
    settings = saio_settings("SWIFT_AUTH_URL")
    if not settings.get("S3_ENDPOINT"):
        pytest.skip("S3_ENDPOINT is not set")
    swift, s3 = swift_connection(settings), s3_client(settings)
    container, bucket = unique_name(), unique_name()
    swift.put_container(container)
    s3.create_bucket(Bucket=bucket)
    path = tmp_path / "glimpse-api.conf"
    path.write_text(
        f"""[DEFAULT]
data_dir = {tmp_path}/data
enabled_backends = local:file, objects:swift, buckets:s3
[glance_store]
default_backend = local
[objects]
swift_store_auth_address = {settings["SWIFT_AUTH_URL"]}
swift_store_user = {settings["SWIFT_USER"]}
swift_store_key = {settings["SWIFT_KEY"]}
swift_store_auth_version = 1
swift_store_container = {container}
swift_store_large_object_size = 1
swift_store_large_object_chunk_size = 1
[buckets]
s3_store_host = {settings["S3_ENDPOINT"]}
s3_store_access_key = {settings["S3_ACCESS_KEY"]}
s3_store_secret_key = {settings["S3_SECRET_KEY"]}
s3_store_bucket = {bucket}
s3_store_large_object_size = 5
s3_store_large_object_chunk_size = 5
"""
    )
    yield path
    remove_swift_container(swift, container)
    remove_s3_bucket(s3, bucket)


def manage(conf_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glimpse.cmd.manage", "--config-file", str(conf_path), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_purge_uploads_sweeps_old_leftovers_of_every_store(conf_path: Path) -> None:
    stores = Stores.from_conf(config.new_conf(["--config-file", str(conf_path)]))
    local, objects, buckets = (stores.drivers[s] for s in ("local", "objects", "buckets"))
    container, bucket = objects.container, buckets.bucket  # type: ignore[attr-defined]

    def left() -> dict[str, list[str]]:
        return {
            "local": sorted(os.listdir(local.datadir)),  # type: ignore[attr-defined]
            "objects": swift_objects(swift_connection(saio_settings("SWIFT_AUTH_URL")), container),
            "buckets": s3_contents(s3_client(saio_settings("S3_ENDPOINT")), bucket),
        }

    # Writes that die after 6 MiB: a temporary, five or six segments (the sixth is streamed
    # as it arrives, and Swift may or may not have stored it yet), a multipart upload.
    dead: list[StoreWriter] = []
    for driver in (local, objects, buckets):
        writer = driver.begin_write(f"dead-in-{driver.store_id}")
        for _ in range(6):
            writer.write(os.urandom(MiB))
        dead.append(writer)
    # Settle: a segment whose body is all sent may take Swift a moment to list.
    before, now = {}, left()
    while now != before:
        before = now
        time.sleep(0.5)
        now = left()
    segments = len(before["objects"])
    assert len(before["local"]) == 1 and segments in (5, 6)
    assert before["buckets"] == ["upload:dead-in-buckets"]

    young = manage(conf_path, "store", "purge_uploads")
    assert young.returncode == 0, young.stderr
    assert "Store objects: removed 0 leftover(s) of writes untouched for 86400 s." in young.stdout
    assert left() == before

    time.sleep(1.1)  # past the second backends round modification times to
    dry = manage(conf_path, "store", "purge_uploads", "--older_than", "0", "--dry_run")
    assert dry.returncode == 0, dry.stderr
    assert "Store local: would remove 1 leftover(s)" in dry.stdout
    assert f"Store objects: would remove {segments} leftover(s)" in dry.stdout
    assert "Store buckets: would remove 1 leftover(s)" in dry.stdout
    assert f"  {container}/dead-in-objects/" in dry.stdout
    assert f"  {bucket}/dead-in-buckets upload " in dry.stdout
    assert left() == before

    one = manage(conf_path, "store", "purge_uploads", "--older_than", "0", "--store", "objects")
    assert one.returncode == 0, one.stderr
    assert f"Store objects: removed {segments} leftover(s)" in one.stdout
    assert "Store local" not in one.stdout
    assert left() == {**before, "objects": []}

    every = manage(conf_path, "store", "purge_uploads", "--older_than", "0")
    assert every.returncode == 0, every.stderr
    assert left() == {"local": [], "objects": [], "buckets": []}
    for writer in dead:
        writer.abort()


def test_purge_uploads_refuses_unknown_stores_and_ages(conf_path: Path) -> None:
    unknown = manage(conf_path, "store", "purge_uploads", "--store", "nowhere")
    assert unknown.returncode == 1
    assert "ERROR: Unknown store nowhere; the stores are local, objects, buckets" in unknown.stderr
    for age in ("soon", "-1"):
        refused = manage(conf_path, "store", "purge_uploads", "--older_than", age)
        assert refused.returncode == 1 and refused.stderr.startswith("ERROR:"), refused.stderr
