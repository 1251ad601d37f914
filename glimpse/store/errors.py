"""Errors raised by storage drivers.

They are deliberately separate from :mod:`glimpse.errors`: a driver knows what
went wrong with the bytes, not which HTTP status that means for a given
operation (a missing object is a 404 on download but harmless on delete). The
service layer maps them.

::

    StoreError                 any failure of a store
    ├── StoreNotFound          no data at that URI (or the URI is not this store's)
    ├── StoreConflict          data already exists where a write would put it
    ├── StoreFull              no space left: disk full, quota of the backend, file too large
    ├── StoreUnavailable       the backend cannot be reached or refuses service right now
    ├── StoreAuthError         the backend rejected the store's credentials or permissions
    ├── StoreRefused           the driver will not reach that URI: the operator's filter forbids it
    └── StoreUnsupported       the driver lacks an optional feature
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error a storage driver raises."""


class StoreNotFound(StoreError):
    """There is no data at the given URI, or the URI does not belong to this store."""


class StoreConflict(StoreError):
    """A write would replace data that already exists; drivers never overwrite."""


class StoreFull(StoreError):
    """The backend has no room for the data (ENOSPC, EDQUOT, EFBIG or the remote equivalent)."""


class StoreUnavailable(StoreError):
    """The backend cannot serve the request now; retrying later may succeed."""


class StoreAuthError(StoreError):
    """The backend refused the store's credentials (401) or their rights (403).

    Not a :class:`StoreUnavailable`: retrying cannot help until an operator
    fixes the store's configuration or the backend's accounts.
    """


class StoreRefused(StoreError):
    """The driver will not reach the URI, or a URI it redirects to: a filter the operator
    configured forbids it (the http store applies ``[import_filtering_opts]``).

    The message says why, without the URI.
    """


class StoreUnsupported(StoreError):
    """The driver does not implement an optional feature (e.g. ranged reads)."""
