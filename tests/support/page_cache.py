"""What the page cache holds of a file, for the tests of direct I/O."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def resident_bytes(path: Path) -> int:
    """How much of ``path`` is in the page cache, as fincore(1) reports it."""
    fincore = shutil.which("fincore")
    if fincore is None:
        pytest.skip("fincore(1) (util-linux) is not installed")
    out = subprocess.run(
        [fincore, "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip())


def require_direct_io(folder: Path) -> None:
    """Skip unless files in ``folder`` can be opened with O_DIRECT (a tmpfs cannot)."""
    probe = folder / ".direct-io-probe"
    probe.touch()
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_DIRECT))
    except OSError:
        pytest.skip(f"{folder} is on a filesystem without O_DIRECT")
    finally:
        probe.unlink()
