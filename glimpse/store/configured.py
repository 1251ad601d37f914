"""The store drivers a configuration describes, built and checked at startup.

Building a driver does no I/O: a store that is unreachable when the service
starts fails the requests that need it, and only those.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from oslo_config import cfg

from glimpse import config
from glimpse.config import backends, staging
from glimpse.config.backends import StoreConfigError
from glimpse.store.base import StoreDriver
from glimpse.store.filesystem import FilesystemStore
from glimpse.store.staging import STAGING_STORE_ID, StagingArea

MiB = 1 << 20


@dataclasses.dataclass
class StoreSettings:
    """What the configuration says about the stores."""

    drivers: dict[str, StoreDriver]
    default_id: str
    #: True with ``enabled_backends`` (the multi-store API is on).
    multi: bool
    descriptions: dict[str, str]
    weights: dict[str, int]


def from_conf(conf: cfg.ConfigOpts) -> StoreSettings:
    """Build every configured driver; :class:`StoreConfigError` when the configuration is unfit."""
    enabled = backends.register_store_options(conf)
    if enabled:
        return _multi_store(conf, enabled)
    return _single_store(conf)


def staging_from_conf(conf: cfg.ConfigOpts, stores: dict[str, StoreDriver]) -> StagingArea:
    """The staging area ``[os_glance_staging_store]`` describes (after :func:`from_conf`).

    Refuses a staging area that is the place of one of ``stores``: staged data and image
    data are both named by the image id, so each would take the other for its own.
    """
    group = conf[staging.GROUP]
    store_type = group.store_type
    if store_type == "file":
        driver: StoreDriver = FilesystemStore(config.staging_dir(conf), store_id=STAGING_STORE_ID)
    else:
        if conf.node_staging_uri:
            raise StoreConfigError(
                f"node_staging_uri names a staging folder, but [{staging.GROUP}] store_type "
                f"is {store_type}: remove node_staging_uri, or set store_type = file."
            )
        driver = _driver(store_type, STAGING_STORE_ID, conf, staging.GROUP, "")
    area = StagingArea(driver)
    probe = "00000000-0000-0000-0000-000000000000"
    staged_at = area.public_uri(area.uri_for(probe))
    for store_id, store in stores.items():
        uri_for = getattr(store, "uri_for", None)
        if uri_for is not None and store.public_uri(uri_for(probe)) == staged_at:
            where = staged_at.rpartition("/")[0]
            raise StoreConfigError(
                f"The staging area ([{staging.GROUP}]) and store '{store_id}' are the same "
                f"place ({where}); give the staging area a folder, container or bucket of "
                "its own."
            )
    return area


def _multi_store(conf: cfg.ConfigOpts, enabled: dict[str, str]) -> StoreSettings:
    default_id = conf.glance_store.default_backend
    if not default_id:
        raise StoreConfigError(
            "[glance_store] default_backend is required with enabled_backends: name the "
            f"store new image data goes to (one of {', '.join(enabled)})."
        )
    if default_id not in enabled:
        raise StoreConfigError(
            f"[glance_store] default_backend '{default_id}' is not a store of "
            f"enabled_backends ({', '.join(enabled)})."
        )
    drivers: dict[str, StoreDriver] = {}
    descriptions: dict[str, str] = {}
    weights: dict[str, int] = {}
    for store_id, store_type in enabled.items():
        group = conf[store_id]
        datadir = os.path.join(config.data_dir(conf), "images", store_id)
        drivers[store_id] = _driver(store_type, store_id, conf, store_id, datadir)
        if group.store_description:
            descriptions[store_id] = str(group.store_description)
        weights[store_id] = int(group.weight)
    if enabled[default_id] == "http":
        raise StoreConfigError(
            f"default_backend '{default_id}' is an http store, which is read-only."
        )
    _check_distinct_folders(drivers)
    return StoreSettings(drivers, default_id, True, descriptions, weights)


def _single_store(conf: cfg.ConfigOpts) -> StoreSettings:
    types = [t for t in conf.glance_store.stores if t]
    for store_type in types:
        if store_type not in backends.STORE_TYPES:
            raise StoreConfigError(
                f"[glance_store] stores names the unknown store type '{store_type}'; the "
                f"types are {', '.join(backends.STORE_TYPES)}."
            )
    default_id = conf.glance_store.default_store
    if default_id not in types:
        raise StoreConfigError(
            f"[glance_store] default_store '{default_id}' is not one of [glance_store] stores "
            f"({', '.join(types)})."
        )
    if default_id == "http":
        raise StoreConfigError("default_store cannot be http: the http store is read-only.")
    datadir = config.filesystem_datadir(conf)
    drivers = {
        store_type: _driver(store_type, store_type, conf, "glance_store", datadir)
        for store_type in types
    }
    return StoreSettings(drivers, default_id, False, {}, {})


def _driver(
    store_type: str, store_id: str, conf: cfg.ConfigOpts, group_name: str, datadir: str
) -> StoreDriver:
    """The driver of one store, reading its options from ``[group_name]``."""
    group = _Group(group_name, conf[group_name])
    try:
        if store_type == "file":
            return FilesystemStore(
                group.filesystem_store_datadir or datadir,
                store_id=store_id,
                direct_io=bool(group.filesystem_store_direct_io),
            )
        if store_type == "http":
            return _http(store_id, group, conf)
        if store_type == "swift":
            return _swift(store_id, group)
        return _s3(store_id, group)
    except ValueError as exc:
        if isinstance(exc, StoreConfigError):
            raise
        raise StoreConfigError(f"Store '{store_id}' ({store_type}): {exc}") from exc
    except OSError as exc:
        raise StoreConfigError(f"Store '{store_id}' ({store_type}): {exc}") from exc


class _Group:
    """A configuration group that knows its name, for messages."""

    def __init__(self, name: str, values: Any) -> None:
        self.name = name
        self._values = values

    def __getattr__(self, option: str) -> Any:
        return getattr(self._values, option)


def _required(store_id: str, group: Any, *names: str) -> list[str]:
    missing = [name for name in names if not getattr(group, name)]
    if missing:
        raise StoreConfigError(f"Store '{store_id}' needs {', '.join(missing)} in [{group.name}].")
    return [str(getattr(group, name)) for name in names]


def _http(store_id: str, group: Any, conf: cfg.ConfigOpts) -> StoreDriver:
    from glimpse.imports.web_download import UriFilter
    from glimpse.store.http import HttpStore

    return HttpStore(
        # The filter web-download obeys: every location is a URL fetched for a user.
        uri_filter=UriFilter.from_conf(conf),
        ca_certificates_file=group.https_ca_certificates_file,
        insecure=bool(group.https_insecure),
        proxies=dict(group.http_proxy_information or {}),
        store_id=store_id,
    )


def _swift(store_id: str, group: Any) -> StoreDriver:
    from glimpse.store.swift import SwiftStore

    address, user, key = _required(
        store_id, group, "swift_store_auth_address", "swift_store_user", "swift_store_key"
    )
    return SwiftStore(
        address,
        user,
        key,
        group.swift_store_container,
        auth_version=group.swift_store_auth_version,
        large_object_size=group.swift_store_large_object_size * MiB,
        large_object_chunk_size=group.swift_store_large_object_chunk_size * MiB,
        create_container_on_put=bool(group.swift_store_create_container_on_put),
        user_domain_id=group.swift_store_user_domain_id,
        user_domain_name=group.swift_store_user_domain_name,
        project_domain_id=group.swift_store_project_domain_id,
        project_domain_name=group.swift_store_project_domain_name,
        region=group.swift_store_region,
        endpoint_type=group.swift_store_endpoint_type,
        service_type=group.swift_store_service_type,
        insecure=bool(group.swift_store_auth_insecure),
        cacert=group.swift_store_cacert,
        buffer_dir=group.swift_upload_buffer_dir,
        retries=int(group.swift_store_retries),
        store_id=store_id,
    )


def _s3(store_id: str, group: Any) -> StoreDriver:
    from glimpse.store.s3 import S3Store

    host, access_key, secret_key, bucket = _required(
        store_id,
        group,
        "s3_store_host",
        "s3_store_access_key",
        "s3_store_secret_key",
        "s3_store_bucket",
    )
    return S3Store(
        host,
        access_key,
        secret_key,
        bucket,
        region_name=group.s3_store_region_name or "",
        bucket_url_format=group.s3_store_bucket_url_format,
        create_bucket_on_put=bool(group.s3_store_create_bucket_on_put),
        large_object_size=group.s3_store_large_object_size * MiB,
        large_object_chunk_size=group.s3_store_large_object_chunk_size * MiB,
        cacert=group.s3_store_cacert or None,
        buffer_dir=group.s3_upload_buffer_dir,
        store_id=store_id,
    )


def _check_distinct_folders(drivers: dict[str, StoreDriver]) -> None:
    # Two stores in one folder could not tell their locations apart.
    seen: dict[str, str] = {}
    for store_id, driver in drivers.items():
        if isinstance(driver, FilesystemStore):
            other = seen.setdefault(driver.datadir, store_id)
            if other != store_id:
                raise StoreConfigError(
                    f"Stores '{other}' and '{store_id}' use the same folder {driver.datadir}; "
                    "give each file store its own filesystem_store_datadir."
                )
