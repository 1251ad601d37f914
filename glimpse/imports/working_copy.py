"""A worker's local copy of staged data, for the import plugins that need a file.

When the staging area is an object store, ``image_conversion`` (qemu-img) cannot work
on the staged object itself: the worker copies it into a private folder of its own
under ``[task] work_dir``, the plugins work on that file, and the target stores are
written from it. The folder is removed when the import ends; folders of a worker that
was killed are removed when a worker starts on the same host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile

from glimpse import config, node
from glimpse.imports.errors import ImportFailed
from glimpse.runtime import Runtime
from glimpse.store.errors import StoreError, StoreNotFound
from glimpse.store.filesystem import FilesystemStore
from glimpse.store.staging import STAGING_STORE_ID

LOG = logging.getLogger(__name__)

# import-<pid of the worker>-<random>: the pid tells a live worker's folder from a dead one's.
_FOLDER = re.compile(r"^import-(?P<pid>\d+)-")


class WorkingCopy:
    """The data of one image as ``<folder>/<image_id>``, readable as a filesystem store."""

    def __init__(self, folder: str, image_id: str) -> None:
        self.folder = folder
        self.store = FilesystemStore(folder, store_id=STAGING_STORE_ID)
        self.uri = self.store.uri_for(image_id)

    @classmethod
    def fetch(cls, rt: Runtime, image_id: str) -> WorkingCopy:
        """Copy the staged data of ``image_id`` to this host; ImportFailed when it cannot."""
        work_dir = config.work_dir(rt.conf)
        try:
            os.makedirs(work_dir, mode=0o700, exist_ok=True)
            folder = tempfile.mkdtemp(prefix=f"import-{os.getpid()}-", dir=work_dir)
        except OSError as exc:
            raise ImportFailed(
                f"The worker cannot make a working folder in [task] work_dir: {exc.strerror}"
            ) from exc
        copy = cls(folder, image_id)
        staging = rt.stores.staging
        try:
            chunks = staging.read(staging.uri_for(image_id))
            with copy.store.begin_write(image_id) as writer:
                for chunk in chunks:
                    writer.write(chunk)
                writer.commit()
        except StoreNotFound:
            copy.remove()
            raise ImportFailed("The staged data of the image is missing; stage it again.") from None
        except StoreError as exc:
            copy.remove()
            raise ImportFailed(f"The staged data could not be copied to the worker: {exc}") from exc
        except BaseException:
            copy.remove()
            raise
        return copy

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def remove_abandoned(rt: Runtime) -> list[str]:
    """Remove the working folders of workers of this host that are no longer running."""
    work_dir = config.work_dir(rt.conf)
    removed = []
    with contextlib.suppress(FileNotFoundError), os.scandir(work_dir) as entries:
        for entry in entries:
            match = _FOLDER.match(entry.name)
            if (
                match
                and entry.is_dir(follow_symlinks=False)
                and not node.process_alive(int(match["pid"]))
            ):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
    for path in removed:
        LOG.warning("Removed %s, the working folder of an import whose worker died", path)
    return removed
