"""The staging area: where imports keep image data between its arrival and its store.

glance-direct stages the user's data here, web-download fetches into it and
copy-image copies into it; a glimpse-worker, on whichever node claims the job, then
writes it to the target stores and discards it. Every node that stages or imports
must therefore reach the same staging area: a shared folder, or a Swift container or
S3 bucket (``[os_glance_staging_store] store_type``).

Staged data of an image lives at one place named by the image id, so no database row
has to remember where it is (and none stores the credentials an object-store URI
carries).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Protocol

from glimpse.store.base import DEFAULT_CHUNK_SIZE, StoreDriver, StoreWriter
from glimpse.store.errors import StoreError, StoreNotFound

LOG = logging.getLogger(__name__)

#: The reserved store id of the staging area, as in Glance.
STAGING_STORE_ID = "os_glance_staging_store"


class _Addressable(Protocol):
    def uri_for(self, image_id: str) -> str: ...


class StagingArea(StoreDriver):
    """A writable driver used as the staging area.

    It is itself a :class:`StoreDriver` (reads, writes and deletes go to the driver
    it wraps), plus what staging needs: the URI of an image's staged data and a quiet
    discard. Errors keep the wrapped driver's types; messages and logs show URIs
    without credentials.
    """

    store_id = STAGING_STORE_ID

    def __init__(self, driver: StoreDriver) -> None:
        if driver.read_only or not callable(getattr(driver, "uri_for", None)):
            raise ValueError(f"{driver!r} cannot hold staged data")
        self.driver = driver
        self.scheme = driver.scheme
        self._addressable: _Addressable = driver  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StagingArea({self.driver!r})"

    def uri_for(self, image_id: str) -> str:
        """Where the staged data of ``image_id`` is (the URI may carry credentials)."""
        return self._addressable.uri_for(image_id)

    def discard(self, image_id: str) -> None:
        """Remove the staged data of ``image_id`` if there is any; failures are logged."""
        uri = self.uri_for(image_id)
        try:
            self.driver.delete(uri)
        except StoreNotFound:
            pass
        except StoreError:
            LOG.warning(
                "Could not remove the staged data at %s", self.public_uri(uri), exc_info=True
            )

    # --- StoreDriver, delegated ----------------------------------------------------

    def begin_write(self, image_id: str, size: int | None = None) -> StoreWriter:
        return self.driver.begin_write(image_id, size)

    def read(
        self,
        uri: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        return self.driver.read(uri, offset, length, chunk_size)

    def delete(self, uri: str) -> None:
        self.driver.delete(uri)

    def stat(self, uri: str) -> int:
        return self.driver.stat(uri)

    def local_path(self, uri: str) -> str | None:
        return self.driver.local_path(uri)

    def public_uri(self, uri: str) -> str:
        return self.driver.public_uri(uri)

    def owns(self, uri: str) -> bool:
        return self.driver.owns(uri)

    def discard_temporaries(self, image_id: str) -> list[str]:
        return self.driver.discard_temporaries(image_id)

    def cleanup_stale_temporaries(
        self, older_than_seconds: float, *, dry_run: bool = False
    ) -> list[str]:
        return self.driver.cleanup_stale_temporaries(older_than_seconds, dry_run=dry_run)
