"""Working folders of workers that died are removed when a worker starts on the host."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from glimpse import config
from glimpse.imports import working_copy
from glimpse.runtime import Runtime


def test_only_the_folders_of_dead_workers_are_removed(
    make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    rt = make_runtime(task__work_dir=str(tmp_path / "work"))
    work = Path(config.work_dir(rt.conf))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for name in (f"import-{dead.pid}-abc", f"import-{alive.pid}-def", "not-ours"):
            (work / name).mkdir(parents=True)
            (work / name / "image").write_bytes(b"data")
        removed = working_copy.remove_abandoned(rt)
    finally:
        alive.kill()
        alive.wait()
    assert removed == [str(work / f"import-{dead.pid}-abc")]
    assert sorted(p.name for p in work.iterdir()) == [f"import-{alive.pid}-def", "not-ours"]


def test_no_work_dir_yet_is_nothing_to_remove(
    make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    rt = make_runtime(task__work_dir=str(tmp_path / "never-made"))
    assert working_copy.remove_abandoned(rt) == []
