"""The configured stores, by id, and which one holds a given location."""

from __future__ import annotations

import urllib.parse

from oslo_config import cfg

from glimpse import config
from glimpse.store.base import StoreDriver
from glimpse.store.errors import StoreNotFound
from glimpse.store.filesystem import FilesystemStore


class Stores:
    """Every store this deployment writes to or reads from."""

    def __init__(
        self, drivers: dict[str, StoreDriver], default_id: str, staging: FilesystemStore
    ) -> None:
        self.drivers = drivers
        self.default_id = default_id
        #: Where glance-direct stages data and web-download fetches to; shared by every
        #: node that stages or imports (``node_staging_uri``).
        self.staging = staging

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> Stores:
        """Single-store deployments: the filesystem store under the data folder."""
        datadir = config.filesystem_datadir(conf)
        staging = FilesystemStore(config.staging_dir(conf), store_id="os_glance_staging_store")
        return cls({"file": FilesystemStore(datadir, store_id="file")}, "file", staging)

    @property
    def default(self) -> StoreDriver:
        return self.drivers[self.default_id]

    def get(self, store_id: str) -> StoreDriver | None:
        return self.drivers.get(store_id)

    def for_location(self, uri: str, metadata: dict[str, object] | None = None) -> StoreDriver:
        """The driver that can read ``uri``: the store named in its metadata, else by scheme."""
        named = (metadata or {}).get("store") or (metadata or {}).get("backend")
        if isinstance(named, str) and named in self.drivers:
            return self.drivers[named]
        scheme = urllib.parse.urlsplit(uri).scheme
        for driver in self.drivers.values():
            if driver.scheme == scheme or scheme.startswith(driver.scheme + "+"):
                return driver
        raise StoreNotFound(f"No configured store can read {scheme}:// locations")
