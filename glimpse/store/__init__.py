"""Storage drivers: the one boundary between Glimpse and the bytes of images.

A driver moves bytes and nothing else. It does not hash, count quotas or know
about image statuses; :mod:`glimpse.data.pipeline` does that once, in one pass,
for every driver alike.
"""

from glimpse.store.base import StoredObject, StoreDriver, StoreWriter
from glimpse.store.errors import (
    StoreConflict,
    StoreError,
    StoreFull,
    StoreNotFound,
    StoreUnavailable,
    StoreUnsupported,
)

__all__ = [
    "StoreConflict",
    "StoreDriver",
    "StoreError",
    "StoreFull",
    "StoreNotFound",
    "StoreUnavailable",
    "StoreUnsupported",
    "StoreWriter",
    "StoredObject",
]
