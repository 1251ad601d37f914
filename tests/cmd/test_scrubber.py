"""glimpse-scrubber: delayed delete, scrub passes, the daemon, dry runs and restores.

Images are made and deleted through the in-process API (``delayed_delete = true``) and
scrubbed or restored by the installed ``glimpse-scrubber`` command, run as a separate
process on the same database and data folder, on every database backend.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, select, update

from glimpse.db.models import Image, ImageLocation, ImageMember, ImageProperty, ImageTag
from glimpse.runtime import Runtime
from glimpse.services import scrub
from tests.support.client import Api
from tests.support.polling import wait_for
from tests.support.server import free_port

SCRUBBER = str(Path(sys.executable).with_name("glimpse-scrubber"))
OCTETS = {"Content-Type": "application/octet-stream"}
DATA = os.urandom(70_000)


class Scrubber:
    """Runs ``glimpse-scrubber`` on the test's database and data folder."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.pid_file = tmp_path / "run" / "scrubber.pid"

    def config(self, **options: Any) -> str:
        values = {
            "data_dir": self.tmp_path / "data",
            "scrubber_pid_file": self.pid_file,
            "scrub_time": 0,
            **options,
        }
        lines = ["[DEFAULT]", *(f"{key} = {value}" for key, value in values.items())]
        lines += ["[database]", "connection = " + self.database_url.replace("$", "$$")]
        path = self.tmp_path / f"scrubber-{uuid.uuid4().hex[:8]}.conf"
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def run(self, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SCRUBBER, "--config-file", self.config(**options), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start_daemon(self, log: Path, **options: Any) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                [SCRUBBER, "--config-file", self.config(**options), "--daemon"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api(delayed_delete=True)


@pytest.fixture
def scrubber(tmp_path: Path, database_url: str, api: Api) -> Scrubber:
    return Scrubber(tmp_path, database_url)


def image_with_data(api: Api, data: bytes = DATA, **body: Any) -> dict[str, Any]:
    body = {"disk_format": "raw", "container_format": "bare", **body}
    image = api.create_image(**body)
    response = api.put(f"/v2/images/{image['id']}/file", content=data, headers=OCTETS)
    assert response.status_code == 204, response.text
    shown: dict[str, Any] = api.get(f"/v2/images/{image['id']}").json()
    assert shown["status"] == "active"
    return shown


def data_file(tmp_path: Path, image_id: str) -> Path:
    return tmp_path / "data" / "images" / image_id


def state(engine: Engine, image_id: str) -> tuple[str, bool, list[tuple[str, bool]]]:
    """The image's status and deleted flag, and its locations' (status, deleted)."""
    with engine.connect() as conn:
        image = conn.execute(select(Image.status, Image.deleted).where(Image.id == image_id)).one()
        locations = conn.execute(
            select(ImageLocation.status, ImageLocation.deleted)
            .where(ImageLocation.image_id == image_id)
            .order_by(ImageLocation.id)
        ).all()
    return image.status, image.deleted, [(loc.status, loc.deleted) for loc in locations]


def delete(api: Api, image_id: str) -> None:
    assert api.delete(f"/v2/images/{image_id}").status_code == 204
    assert api.get(f"/v2/images/{image_id}").status_code == 404


def test_data_stays_until_scrub_time_has_passed(
    api: Api, scrubber: Scrubber, engine: Engine, tmp_path: Path
) -> None:
    image = image_with_data(api)
    stored = data_file(tmp_path, image["id"])
    delete(api, image["id"])
    assert stored.read_bytes() == DATA
    assert state(engine, image["id"]) == ("pending_delete", True, [("pending_delete", False)])

    early = scrubber.run(scrub_time=3600)
    assert early.returncode == 0, early.stderr
    assert stored.exists()
    assert state(engine, image["id"])[0] == "pending_delete"

    done = scrubber.run(scrub_time=0)
    assert done.returncode == 0, done.stderr
    assert not stored.exists()
    assert state(engine, image["id"]) == ("deleted", True, [("deleted", True)])
    assert f"Image {image['id']} scrubbed" in done.stderr

    again = scrubber.run()
    assert again.returncode == 0 and "scrubbed" not in again.stderr


def test_an_image_is_due_exactly_scrub_time_after_its_deletion(
    make_runtime: Callable[..., Runtime], api: Api, engine: Engine
) -> None:
    image = image_with_data(api)
    delete(api, image["id"])
    with engine.connect() as conn:
        deleted_at = conn.scalar(select(Image.deleted_at).where(Image.id == image["id"]))
    assert isinstance(deleted_at, datetime.datetime)
    rt = make_runtime(scrub_time=90)
    assert scrub.due(rt, now=deleted_at + datetime.timedelta(seconds=89)) == []
    assert scrub.due(rt, now=deleted_at + datetime.timedelta(seconds=90)) == [image["id"]]


def test_a_pass_scrubs_many_images_in_parallel_and_missing_data_counts_as_scrubbed(
    api: Api, scrubber: Scrubber, engine: Engine, tmp_path: Path
) -> None:
    images = [image_with_data(api, data=DATA[:1000] + bytes([n])) for n in range(6)]
    for image in images:
        delete(api, image["id"])
    data_file(tmp_path, images[0]["id"]).unlink()  # lost before the scrub

    result = scrubber.run(scrub_pool_size=3)

    assert result.returncode == 0, result.stderr
    for image in images:
        assert state(engine, image["id"]) == ("deleted", True, [("deleted", True)])
        assert not data_file(tmp_path, image["id"]).exists()
    assert "6 image(s) scrubbed" in result.stderr


def test_dry_run_lists_what_a_pass_would_delete_without_credentials_and_changes_nothing(
    api: Api, scrubber: Scrubber, engine: Engine, tmp_path: Path
) -> None:
    image = image_with_data(api)
    add_location(engine, image["id"], "swift://tenant:user:s3cret@keystone.example/v3/c/obj")
    delete(api, image["id"])
    not_due = image_with_data(api, data=b"later")
    delete(api, not_due["id"])
    with engine.begin() as conn:
        conn.execute(
            update(Image)
            .where(Image.id == not_due["id"])
            .values(deleted_at=datetime.datetime(2999, 1, 1))
        )

    result = scrubber.run("--dry-run")

    assert result.returncode == 0, result.stderr
    assert image["id"] in result.stdout and not_due["id"] not in result.stdout
    assert f"file://{data_file(tmp_path, image['id'])}" in result.stdout
    assert "swift://keystone.example/v3/c/obj" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr
    assert data_file(tmp_path, image["id"]).exists()
    assert state(engine, image["id"]) == (
        "pending_delete",
        True,
        [("pending_delete", False), ("pending_delete", False)],
    )
    assert not scrubber.pid_file.exists()


def add_location(engine: Engine, image_id: str, uri: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(ImageLocation).values(
                image_id=image_id,
                value=uri,
                meta_data="{}",
                status="active",
                position=1,
                created_at=datetime.datetime(2024, 1, 1),
                deleted=False,
            )
        )


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """Make ``path`` undeletable even by root (ext4's immutable attribute), for a while."""
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {made.stderr!r}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_store_error_leaves_the_image_pending_delete_for_the_next_pass(
    api: Api, scrubber: Scrubber, engine: Engine, tmp_path: Path
) -> None:
    # The fault is real: unlink() fails with EPERM on an immutable file, which the
    # filesystem store reports as StoreUnavailable. Nothing in the scrubber is patched.
    image = image_with_data(api)
    stored = data_file(tmp_path, image["id"])
    delete(api, image["id"])
    with immutable(stored):
        failed = scrubber.run()
        assert failed.returncode == 0, failed.stderr
        assert stored.exists()
        assert state(engine, image["id"]) == ("pending_delete", True, [("pending_delete", False)])
        assert "could not delete" in failed.stderr
        assert "1 left pending_delete" in failed.stderr
    retried = scrubber.run()
    assert retried.returncode == 0, retried.stderr
    assert not stored.exists()
    assert state(engine, image["id"]) == ("deleted", True, [("deleted", True)])


def test_a_location_no_configured_store_can_reach_keeps_the_image_pending_delete(
    api: Api, scrubber: Scrubber, engine: Engine, tmp_path: Path
) -> None:
    image = image_with_data(api)
    add_location(engine, image["id"], "swift://u:k@keystone.example/v3/container/obj")
    delete(api, image["id"])

    result = scrubber.run()

    assert result.returncode == 0, result.stderr
    assert "no configured store can delete swift://keystone.example/v3/container/obj" in (
        result.stderr
    )
    assert not data_file(tmp_path, image["id"]).exists()
    # The file location is done and stays done; the image waits for the Swift one.
    assert state(engine, image["id"]) == (
        "pending_delete",
        True,
        [("deleted", True), ("pending_delete", False)],
    )


def test_restore_brings_the_image_back_whole(
    api: Api, scrubber: Scrubber, engine: Engine, tmp_path: Path
) -> None:
    image = image_with_data(
        api, name="keep me", visibility="shared", tags=["gold", "linux"], os_distro="debian"
    )
    member = api.post(f"/v2/images/{image['id']}/members", json={"member": "project-b"})
    assert member.status_code == 200, member.text
    delete(api, image["id"])

    restored = scrubber.run("--restore", image["id"])

    assert restored.returncode == 0, restored.stderr
    assert f"Image {image['id']} restored to active." in restored.stdout
    shown = api.get(f"/v2/images/{image['id']}").json()
    assert shown["status"] == "active"
    assert sorted(shown["tags"]) == ["gold", "linux"]
    assert shown["os_distro"] == "debian" and shown["name"] == "keep me"
    for key in ("checksum", "os_hash_algo", "os_hash_value", "size", "visibility"):
        assert shown[key] == image[key], key
    members = api.get(f"/v2/images/{image['id']}/members").json()["members"]
    assert [(m["member_id"], m["status"]) for m in members] == [("project-b", "pending")]
    download = api.get(f"/v2/images/{image['id']}/file")
    assert download.status_code == 200
    assert hashlib.md5(download.content).hexdigest() == image["checksum"]
    assert hashlib.sha512(download.content).hexdigest() == image["os_hash_value"]
    with engine.connect() as conn:
        for model in (ImageProperty, ImageTag, ImageMember):
            rows = conn.execute(
                select(model.deleted, model.deleted_at).where(model.image_id == image["id"])
            ).all()
            assert rows and all(not row.deleted and row.deleted_at is None for row in rows)
    assert state(engine, image["id"]) == ("active", False, [("active", False)])

    # A restored image is an ordinary one: a scrub pass leaves it alone...
    assert scrubber.run().returncode == 0
    assert data_file(tmp_path, image["id"]).read_bytes() == DATA
    # ...and deleting it again starts over.
    delete(api, image["id"])
    assert scrubber.run().returncode == 0
    assert not data_file(tmp_path, image["id"]).exists()


def test_restore_errors(api: Api, make_api: Callable[..., Api], scrubber: Scrubber) -> None:
    unknown = str(uuid.uuid4())
    missing = scrubber.run("--restore", unknown)
    assert missing.returncode != 0
    assert missing.stderr.strip().endswith(f"ERROR: Image {unknown} not found")

    active = image_with_data(api)
    refused = scrubber.run("--restore", active["id"])
    assert refused.returncode != 0
    assert "ERROR: cannot restore the image from active to active" in refused.stderr

    immediate = make_api(delayed_delete=False)
    gone = image_with_data(immediate, data=b"gone")
    delete(immediate, gone["id"])
    refused = scrubber.run("--restore", gone["id"])
    assert refused.returncode != 0
    assert "ERROR: cannot restore the image from deleted to active" in refused.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--restore", "some-id", "--daemon"),
        ("-D", "--restore", "some-id"),
        ("--dry-run", "--daemon"),
        ("--dry-run", "--restore", "some-id"),
    ],
)
def test_options_that_cannot_be_combined(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = Scrubber(tmp_path, f"sqlite:///{tmp_path}/unused.sqlite").run(*args)
    assert result.returncode != 0
    assert result.stderr.startswith("ERROR: ") and "cannot" in result.stderr
    assert not (tmp_path / "unused.sqlite").exists()


def test_the_daemon_scrubs_every_wakeup_time_and_blocks_restores_while_it_runs(
    api: Api, scrubber: Scrubber, engine: Engine, tmp_path: Path
) -> None:
    log = tmp_path / "daemon.log"
    daemon = scrubber.start_daemon(log, wakeup_time=1)
    try:
        wait_for(lambda: scrubber.pid_file.exists(), "the daemon's pid file", 60)
        assert scrubber.pid_file.read_text().strip() == str(daemon.pid)

        image = image_with_data(api)
        delete(api, image["id"])
        wait_for(lambda: state(engine, image["id"])[0] == "deleted", "the image to be scrubbed", 60)
        assert not data_file(tmp_path, image["id"]).exists()

        blocked = scrubber.run("--restore", image["id"])
        assert blocked.returncode != 0
        assert f"ERROR: the glimpse-scrubber daemon is running (pid {daemon.pid}" in (
            blocked.stderr
        )
        second = scrubber.run("--daemon")
        assert second.returncode != 0 and "already running" in second.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()
    assert not scrubber.pid_file.exists()
    assert f"Image {image['id']} scrubbed" in log.read_text()

    # A pid file left behind by a dead daemon blocks nothing.
    scrubber.pid_file.write_text(f"{daemon.pid}\n")
    after = scrubber.run("--restore", image["id"])
    assert "cannot restore the image from deleted to active" in after.stderr


def test_database_errors_stop_a_single_pass_but_not_the_daemon(tmp_path: Path) -> None:
    # Nothing listens on this port: every connection is refused.
    scrubber = Scrubber(tmp_path, f"postgresql+psycopg://glimpse@127.0.0.1:{free_port()}/x")
    once = scrubber.run()
    assert once.returncode == 1
    assert "CRITICAL" in once.stderr and "Cannot read pending_delete images" in once.stderr

    log = tmp_path / "daemon.log"
    daemon = scrubber.start_daemon(log, wakeup_time=1)
    try:
        wait_for(
            lambda: log.read_text().count("Cannot read pending_delete images") >= 2,
            "two failed passes in the log",
            60,
        )
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()
