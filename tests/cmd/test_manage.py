"""glimpse-manage db commands against each real database."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, inspect

from tests.support import databases


@pytest.fixture(params=databases.backends())
def empty_database(request: pytest.FixtureRequest, tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    backend = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/manage-{uuid.uuid4().hex[:6]}.sqlite"
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    server = make_url(os.environ[databases.ENV[backend]])
    name = f"glimpse_manage_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = server.set(database=name).render_as_string(hide_password=False)
    yield url
    databases.drop_database(url)


def _conf(tmp_path: pathlib.Path, url: str) -> str:
    path = tmp_path / "glance-api.conf"
    path.write_text(f"[database]\nconnection = {url}\n")
    return str(path)


def _run(conf: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glimpse.cmd.manage", "--config-file", conf, *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_sync_version_check(empty_database: str, tmp_path: pathlib.Path) -> None:
    conf = _conf(tmp_path, empty_database)
    before = _run(conf, "db", "version")
    assert before.returncode == 1 and "db sync" in before.stdout
    assert _run(conf, "db", "check").returncode == 3
    synced = _run(conf, "db", "sync")
    assert synced.returncode == 0, synced.stderr
    tables = set(inspect(create_engine(empty_database)).get_table_names())
    assert {
        "images",
        "image_properties",
        "image_tags",
        "image_members",
        "image_locations",
        "tasks",
    } <= tables
    version = _run(conf, "db", "version")
    assert version.returncode == 0 and version.stdout.strip()
    assert "up to date" in _run(conf, "db", "sync").stdout
    assert _run(conf, "db", "check").returncode == 0
    assert _run(conf, "db_version").returncode == 0


def test_api_refuses_noauth_on_public_address(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "api.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 0.0.0.0\ndata_dir = {tmp_path}\n")
    result = subprocess.run(
        [sys.executable, "-m", "glimpse.cmd.api", "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "allow_insecure_noauth_bind" in result.stderr
