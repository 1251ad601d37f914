"""The configured stores, by id, and which one holds a given location."""

from __future__ import annotations

import urllib.parse

from oslo_config import cfg

from glimpse.store.base import StoreDriver
from glimpse.store.errors import StoreNotFound
from glimpse.store.staging import StagingArea


class Stores:
    """Every store this deployment writes to or reads from."""

    def __init__(
        self,
        drivers: dict[str, StoreDriver],
        default_id: str,
        staging: StagingArea,
        *,
        multi: bool = False,
        descriptions: dict[str, str] | None = None,
        weights: dict[str, int] | None = None,
    ) -> None:
        self.drivers = drivers
        self.default_id = default_id
        #: Where glance-direct stages data and web-download and copy-image fetch to;
        #: shared by every node that stages or imports (``[os_glance_staging_store]``).
        self.staging = staging
        #: True with ``enabled_backends``: the multi-store API (store ids, /v2/info/stores).
        self.multi = multi
        #: ``store_description`` of the stores that have one.
        self.descriptions = dict(descriptions or {})
        #: ``weight`` of each store; the location in the heaviest store is read first.
        self.weights = dict(weights or {})

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> Stores:
        """The stores of ``enabled_backends``, or the single-store ``[glance_store] stores``.

        Raises :class:`~glimpse.config.backends.StoreConfigError` for an unfit configuration.
        """
        from glimpse.store import configured

        settings = configured.from_conf(conf)
        staging = configured.staging_from_conf(conf, settings.drivers)
        return cls(
            settings.drivers,
            settings.default_id,
            staging,
            multi=settings.multi,
            descriptions=settings.descriptions,
            weights=settings.weights,
        )

    @property
    def default(self) -> StoreDriver:
        return self.drivers[self.default_id]

    def get(self, store_id: str) -> StoreDriver | None:
        return self.drivers.get(store_id)

    def for_location(self, uri: str, metadata: dict[str, object] | None = None) -> StoreDriver:
        """The driver that can read ``uri``: the store named in its metadata, else by scheme.

        Among the stores of the URI's scheme the one that owns it wins; when none
        does, the first one answers (its calls then report the data missing).
        """
        named = (metadata or {}).get("store") or (metadata or {}).get("backend")
        if isinstance(named, str) and named in self.drivers and self.drivers[named].owns(uri):
            return self.drivers[named]
        candidates = self.by_scheme(uri)
        for driver in candidates:
            if driver.owns(uri):
                return driver
        if candidates:
            return candidates[0]
        scheme = urllib.parse.urlsplit(uri).scheme
        raise StoreNotFound(f"No configured store can read {scheme}:// locations")

    def by_scheme(self, uri: str) -> list[StoreDriver]:
        """The stores whose drivers read locations of ``uri``'s scheme."""
        scheme = urllib.parse.urlsplit(uri).scheme
        return [driver for driver in self.drivers.values() if scheme in driver.schemes]

    def owner_of(self, uri: str) -> StoreDriver | None:
        """The store ``uri`` is a location of, if any."""
        for driver in self.by_scheme(uri):
            if driver.owns(uri):
                return driver
        return None

    def public_uri(self, uri: str, metadata: dict[str, object] | None = None) -> str:
        """``uri`` without credentials, fit for responses and logs."""
        try:
            return self.for_location(uri, metadata).public_uri(uri)
        except StoreNotFound:
            scheme, separator, rest = uri.partition("://")
            return f"{scheme}{separator}{rest.rpartition('@')[2]}"

    def weight(self, metadata: dict[str, object] | None) -> int:
        """The ``weight`` of the store named in location metadata (0 when unknown)."""
        named = (metadata or {}).get("store")
        return self.weights.get(named, 0) if isinstance(named, str) else 0
