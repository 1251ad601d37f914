"""The staging area as ``[os_glance_staging_store]`` configures it: a folder, a Swift
container or an S3 bucket, and the configurations that cannot work, refused at start.

Building the stores does no I/O, so the configuration tests need no object store; the
recovery test at the end uses the real Swift of swift-saio.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from glimpse import config
from glimpse.config.backends import StoreConfigError
from glimpse.db.models import Image, ImageUpload, utcnow
from glimpse.runtime import Runtime
from glimpse.services import image_data
from glimpse.store.errors import StoreNotFound
from glimpse.store.filesystem import FilesystemStore
from glimpse.store.registry import Stores
from glimpse.store.s3 import S3Store
from glimpse.store.swift import SwiftStore
from tests.store.conftest import (
    remove_swift_container,
    saio_settings,
    swift_connection,
    swift_objects,
    unique_name,
)
from tests.support import databases
from tests.support.client import Api

SWIFT = (
    "swift_store_auth_address = http://127.0.0.1:8080/auth/v1.0\n"
    "swift_store_user = test:tester\nswift_store_key = testing\nswift_store_auth_version = 1\n"
)
S3 = (
    "s3_store_host = http://127.0.0.1:8080\ns3_store_access_key = test:tester\n"
    "s3_store_secret_key = testing\n"
)


def _stores_of(tmp_path: Path, text: str) -> Stores:
    path = tmp_path / "stores.conf"
    path.write_text(f"[DEFAULT]\ndata_dir = {tmp_path}/data\n" + text)
    return Stores.from_conf(config.new_conf(["--config-file", str(path)]))


def test_staging_is_a_folder_of_the_data_dir_by_default(tmp_path: Path) -> None:
    staging = _stores_of(tmp_path, "").staging
    assert staging.store_id == "os_glance_staging_store"
    assert isinstance(staging.driver, FilesystemStore)
    assert staging.driver.datadir == f"{tmp_path}/data/staging"
    assert staging.uri_for("abc") == f"file://{tmp_path}/data/staging/abc"


@pytest.mark.parametrize(
    "text",
    [
        "node_staging_uri = file://{tmp}/shared/\n",
        "[os_glance_staging_store]\nfilesystem_store_datadir = {tmp}/shared\n",
        "node_staging_uri = file://{tmp}/shared\n"
        "[os_glance_staging_store]\nfilesystem_store_datadir = {tmp}/shared/\n",
    ],
)
def test_a_staging_folder_is_named_either_way(tmp_path: Path, text: str) -> None:
    staging = _stores_of(tmp_path, text.format(tmp=tmp_path)).staging
    assert staging.local_path(staging.uri_for("abc")) == f"{tmp_path}/shared/abc"


def test_staging_in_a_swift_container(tmp_path: Path) -> None:
    text = "[os_glance_staging_store]\nstore_type = swift\n" + SWIFT
    stores = _stores_of(tmp_path, text + "swift_store_container = staged\n")
    driver = stores.staging.driver
    assert isinstance(driver, SwiftStore)
    assert (driver.container, driver.store_id) == ("staged", "os_glance_staging_store")
    uri = stores.staging.uri_for("abc")
    # The staged object's URI carries the key; nothing shown to people does.
    assert stores.staging.public_uri(uri) == ("swift+http://127.0.0.1:8080/auth/v1.0/staged/abc")
    assert stores.staging.local_path(uri) is None
    # The image stores are untouched: still the default file store.
    assert list(stores.drivers) == ["file", "http"]


def test_staging_in_an_s3_bucket(tmp_path: Path) -> None:
    text = "[os_glance_staging_store]\nstore_type = s3\n" + S3 + "s3_store_bucket = staged\n"
    driver = _stores_of(tmp_path, text).staging.driver
    assert isinstance(driver, S3Store)
    assert (driver.bucket, driver.endpoint) == ("staged", "http://127.0.0.1:8080")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "node_staging_uri = /srv/staging\n",
            "node_staging_uri must be a file:// URI with an absolute path",
        ),
        (
            "[os_glance_staging_store]\nfilesystem_store_datadir = staging\n",
            "[os_glance_staging_store] filesystem_store_datadir must be an absolute path",
        ),
        (
            "node_staging_uri = file:///srv/a\n"
            "[os_glance_staging_store]\nfilesystem_store_datadir = /srv/b\n",
            "name different staging folders; keep one of them",
        ),
        (
            "[os_glance_staging_store]\nstore_type = http\n",
            "[os_glance_staging_store] store_type must be one of file, swift, s3",
        ),
        (
            "[os_glance_staging_store]\nstore_type = swift\n",
            "Store 'os_glance_staging_store' needs swift_store_auth_address, swift_store_user, "
            "swift_store_key in [os_glance_staging_store]",
        ),
        (
            "[os_glance_staging_store]\nstore_type = s3\ns3_store_host = http://s3\n",
            "Store 'os_glance_staging_store' needs s3_store_access_key, s3_store_secret_key, "
            "s3_store_bucket in [os_glance_staging_store]",
        ),
        (
            "node_staging_uri = file:///srv/staging\n[os_glance_staging_store]\n"
            "store_type = swift\n" + SWIFT,
            "node_staging_uri names a staging folder, but [os_glance_staging_store] "
            "store_type is swift",
        ),
        (
            # Staged data and image data are both named by the image id.
            "enabled_backends = objects:swift\n[glance_store]\ndefault_backend = objects\n"
            "[objects]\n" + SWIFT + "swift_store_container = images\n"
            "[os_glance_staging_store]\nstore_type = swift\n"
            + SWIFT
            + "swift_store_container = images\n",
            "The staging area ([os_glance_staging_store]) and store 'objects' are the same "
            "place (swift+http://127.0.0.1:8080/auth/v1.0/images)",
        ),
        (
            "[glance_store]\nstores = s3\ndefault_store = s3\n" + S3 + "s3_store_bucket = b\n"
            "[os_glance_staging_store]\nstore_type = s3\n" + S3 + "s3_store_bucket = b\n",
            "The staging area ([os_glance_staging_store]) and store 's3' are the same place",
        ),
        (
            "node_staging_uri = file:///srv/images\n"
            "[glance_store]\nfilesystem_store_datadir = /srv/images\n",
            "The staging area ([os_glance_staging_store]) and store 'file' are the same place",
        ),
    ],
)
def test_unfit_staging_configurations_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(StoreConfigError) as refused:
        _stores_of(tmp_path, text)
    assert message in str(refused.value)
    assert "testing" not in str(refused.value)


def test_glimpse_api_and_glimpse_worker_refuse_an_unfit_staging_area_at_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "api.conf"
    path.write_text(
        f"[DEFAULT]\ndata_dir = {tmp_path}/data\n[os_glance_staging_store]\nstore_type = s3\n"
    )
    for command in ("glimpse.cmd.api", "glimpse.cmd.worker"):
        done = subprocess.run(
            [sys.executable, "-m", command, "--config-file", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0, command
        assert (
            "ERROR: Store 'os_glance_staging_store' needs s3_store_host, s3_store_access_key, "
            "s3_store_secret_key, s3_store_bucket in [os_glance_staging_store]"
        ) in done.stderr, command
        assert "Traceback" not in done.stderr, command


# --- crash recovery with the staging area in Swift ----------------------------------


@pytest.fixture
def swift_staged(database_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, Api, str]]:
    """An in-process API whose staging area is a Swift container of its own."""
    from starlette.testclient import TestClient

    from glimpse.http.app import create_app

    settings = saio_settings("SWIFT_AUTH_URL")
    outside, container = swift_connection(settings), unique_name()
    outside.put_container(container)
    databases.empty_tables(database_url)
    conf_path = tmp_path / "api.conf"
    conf_path.write_text(
        f"[DEFAULT]\ndata_dir = {tmp_path}/data\n"
        f"[database]\nconnection = {database_url.replace('$', '$$')}\n"
        "[os_glance_staging_store]\nstore_type = swift\n"
        f"swift_store_auth_address = {settings['SWIFT_AUTH_URL']}\n"
        f"swift_store_user = {settings['SWIFT_USER']}\n"
        f"swift_store_key = {settings['SWIFT_KEY']}\n"
        f"swift_store_auth_version = 1\nswift_store_container = {container}\n"
    )
    rt = Runtime.build(config.new_conf(["--config-file", str(conf_path)]))
    try:
        with TestClient(create_app(rt)) as client:
            yield rt, Api(client, {"X-Project-Id": "p", "X-Roles": "member"}), container
    finally:
        rt.close()
        remove_swift_container(outside, container)


def test_a_stage_whose_process_died_after_its_object_was_written_is_undone(
    swift_staged: tuple[Runtime, Api, str],
) -> None:
    rt, api, container = swift_staged
    outside = swift_connection(saio_settings("SWIFT_AUTH_URL"))
    image_id = api.create_image(disk_format="raw", container_format="bare")["id"]
    # The state a glimpse-api killed between writing the staged object and recording
    # it leaves behind: the object, the image uploading, the write's row of a dead pid;
    # and a segment of an earlier attempt at the same stage that died half-way.
    outside.put_object(container, image_id, b"staged before the crash")
    outside.put_object(container, f"{image_id}/0123456789abcdef/00000000", b"a segment")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        assert image is not None
        image.status = "uploading"
        now = utcnow()
        session.add(
            ImageUpload(
                image_id=image_id,
                kind="stage",
                node=image_data.NODE,
                pid=dead.pid,
                store_id="os_glance_staging_store",
                started_at=now - datetime.timedelta(seconds=5),
                heartbeat_at=now - datetime.timedelta(seconds=5),
            )
        )

    assert image_data.recover_interrupted_writes(rt) == [image_id]

    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert swift_objects(outside, container) == []
    with pytest.raises(StoreNotFound):
        rt.stores.staging.stat(rt.stores.staging.uri_for(image_id))
    staged = api.put(
        f"/v2/images/{image_id}/stage",
        content=b"staged again",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert staged.status_code == 204, staged.text
    assert swift_objects(outside, container) == [image_id]
