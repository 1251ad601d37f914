"""Every Glimpse command reads only the configuration files it is given.

oslo.config would otherwise look for ``glimpse.conf`` (and ``glimpse.conf.d``) in
``~/.glimpse``, ``~``, ``/etc/glimpse`` and ``/etc`` by itself: a file left there
would point ``glimpse-manage`` or the scrubber at another database than the API's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home folder holding the files oslo.config would find, each naming a stray database."""
    home = tmp_path / "home"
    for folder in (home / ".glimpse", home / ".glimpse" / "glimpse.conf.d"):
        folder.mkdir(parents=True)
    stray = f"[database]\nconnection = sqlite:///{tmp_path}/stray.sqlite\n"
    for path in (
        home / ".glimpse" / "glimpse.conf",
        home / "glimpse.conf",
        home / ".glimpse" / "glimpse-manage.conf",
        home / ".glimpse" / "glimpse-scrubber.conf",
        home / ".glimpse" / "glimpse.conf.d" / "database.conf",
    ):
        path.write_text(stray)
    return home


def run(module: str, home: Path, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "GLIMPSE_DATA_DIR": str(data)}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=home,
    )


def test_glimpse_manage_ignores_files_it_was_not_given(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"

    synced = run("glimpse.cmd.manage", home, data, "db", "sync")

    assert synced.returncode == 0, synced.stderr
    assert (data / "glimpse.sqlite").exists()
    assert not (tmp_path / "stray.sqlite").exists()
    version = run("glimpse.cmd.manage", home, data, "db", "version")
    assert version.returncode == 0, version.stderr


def test_glimpse_scrubber_ignores_files_it_was_not_given(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("glimpse.cmd.manage", home, data, "db", "sync").returncode == 0

    scrubbed = run("glimpse.cmd.scrubber", home, data, "--dry-run")

    assert scrubbed.returncode == 0, scrubbed.stderr
    assert not (tmp_path / "stray.sqlite").exists()


def test_a_file_given_with_config_file_is_read(home: Path, tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text(f"[database]\nconnection = sqlite:///{tmp_path}/given.sqlite\n")

    synced = run(
        "glimpse.cmd.manage", home, tmp_path / "data", "--config-file", str(conf), "db", "sync"
    )

    assert synced.returncode == 0, synced.stderr
    assert (tmp_path / "given.sqlite").exists()
    assert not (tmp_path / "stray.sqlite").exists()
