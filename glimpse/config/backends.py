"""Stores: ``[DEFAULT] enabled_backends`` and the options of each store.

Two forms, as in Glance:

* single-store: ``[glance_store] stores`` lists store types and ``default_store``
  names the one new data goes to; each type reads its options from
  ``[glance_store]`` (``filesystem_store_datadir``, ``swift_store_*``, ``s3_store_*``...);
* multi-store: ``[DEFAULT] enabled_backends = fast:file, objects:swift`` names each
  store and its type, ``[glance_store] default_backend`` picks the default, and each
  store reads its options from the group named after its id (``[fast]``), which
  also holds ``store_description`` and ``weight``.

The driver options are declared by the drivers themselves (``options()`` in each
module of :mod:`glimpse.store`) and only registered here, once the configuration
says which drivers are in use: importing the Swift and S3 clients costs about a
second that processes without those stores should not pay.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from oslo_config import cfg

from glimpse.config import staging

#: Store types Glimpse has drivers for, and the module declaring each one's options.
STORE_TYPES: dict[str, str] = {
    "file": "glimpse.store.filesystem",
    "http": "glimpse.store.http",
    "swift": "glimpse.store.swift",
    "s3": "glimpse.store.s3",
}
#: Store ids with this prefix belong to Glimpse itself (staging, tasks), as in Glance.
RESERVED_PREFIX = "os_glance_"
# Attribute of a ConfigOpts naming the store groups registered on it.
_REGISTERED_GROUPS = "_glimpse_store_groups"

_opts: list[cfg.Opt] = [
    cfg.DictOpt(
        "enabled_backends",
        help="Key:value pairs of store identifier and store type, e.g. "
        "'fast:file, objects:swift'. Types: file, http, swift, s3. Setting it enables "
        "multi-store: each store reads its options from the group named after its id, "
        "and [glance_store] default_backend must name one of them. Identifiers "
        "starting with 'os_glance_' are reserved.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [(None, _opts)]


class StoreConfigError(ValueError):
    """The store configuration cannot work; the message says what to fix."""


def common_options() -> list[cfg.Opt]:
    """Options every store of ``enabled_backends`` has beside its driver's."""
    return [
        cfg.StrOpt(
            "store_description",
            help="A description of the store, shown to users by GET /v2/info/stores.",
        ),
        cfg.IntOpt(
            "weight",
            default=0,
            help="Preference of the store when an image has data in several stores: "
            "downloads and direct_url use the location in the store of highest weight.",
        ),
    ]


def driver_options(store_type: str) -> list[cfg.Opt]:
    """The options the driver of ``store_type`` declares."""
    module = importlib.import_module(STORE_TYPES[store_type])
    options: Callable[[], list[cfg.Opt]] = module.options
    return options()


def enabled_backends(conf: cfg.ConfigOpts) -> dict[str, str]:
    """``enabled_backends`` checked: store id → store type; empty in single-store form."""
    try:
        backends: dict[str, str] = dict(conf.enabled_backends or {})
    except (cfg.ConfigFileValueError, ValueError) as exc:
        raise StoreConfigError(
            f"enabled_backends must be 'id:type' pairs separated by commas: {exc}"
        ) from None
    for store_id, store_type in backends.items():
        if not store_id:
            raise StoreConfigError("enabled_backends names a store with an empty id.")
        if store_id.startswith(RESERVED_PREFIX):
            raise StoreConfigError(
                f"Store id '{store_id}' in enabled_backends is reserved: ids starting with "
                f"'{RESERVED_PREFIX}' belong to Glimpse's internal stores. Rename the store."
            )
        if store_type not in STORE_TYPES:
            raise StoreConfigError(
                f"Store '{store_id}' in enabled_backends has the unknown type "
                f"'{store_type}'; the types are {', '.join(STORE_TYPES)}."
            )
        taken = set(conf) - backends_registered(conf)
        if store_id == "DEFAULT" or store_id in taken:
            raise StoreConfigError(
                f"Store id '{store_id}' in enabled_backends is the name of one of Glimpse's "
                "own configuration groups or options; choose another id."
            )
    return backends


def backends_registered(conf: cfg.ConfigOpts) -> set[str]:
    """The store groups :func:`register_store_options` declared on ``conf``."""
    registered: set[str] = getattr(conf, _REGISTERED_GROUPS, set())
    return registered


def register_store_options(conf: cfg.ConfigOpts) -> dict[str, str]:
    """Declare the options of the stores in use; return ``enabled_backends`` (checked).

    Multi-store: one group per store id. Single-store: the options of every type in
    ``[glance_store] stores``, in ``[glance_store]``. Idempotent.
    """
    backends = enabled_backends(conf)
    _register_staging_options(conf)
    if backends:
        registered = backends_registered(conf)
        for store_id, store_type in backends.items():
            conf.register_opts(driver_options(store_type) + common_options(), group=store_id)
            registered.add(store_id)
        # Remembered on the object, so a second call knows these groups are ours.
        setattr(conf, _REGISTERED_GROUPS, registered)
        return backends
    for store_type in conf.glance_store.stores:
        if store_type in STORE_TYPES:
            conf.register_opts(_single_store_options(store_type), group="glance_store")
    return backends


def _single_store_options(store_type: str) -> list[cfg.Opt]:
    # filesystem_store_datadir is declared with [glance_store] itself.
    return [opt for opt in driver_options(store_type) if opt.name != "filesystem_store_datadir"]


def _register_staging_options(conf: cfg.ConfigOpts) -> None:
    # [os_glance_staging_store] declares store_type and filesystem_store_datadir itself
    # (glimpse.config.staging); an object-store staging area adds its driver's options.
    try:
        store_type = conf[staging.GROUP].store_type
    except (cfg.ConfigFileValueError, ValueError):
        raise StoreConfigError(
            f"[{staging.GROUP}] store_type must be one of {', '.join(staging.STAGING_TYPES)}."
        ) from None
    if store_type != "file":
        conf.register_opts(driver_options(store_type), group=staging.GROUP)


def sample_groups() -> list[tuple[cfg.OptGroup | str, list[cfg.Opt]]]:
    """For the sample configuration: the driver options in [glance_store] (single-store),
    the object-store options of [os_glance_staging_store], and one placeholder group per
    store type (multi-store groups are named by the operator)."""
    groups: list[tuple[cfg.OptGroup | str, list[cfg.Opt]]] = [
        ("glance_store", [opt for t in STORE_TYPES for opt in _single_store_options(t)])
    ]
    groups.append(
        (staging.GROUP, [opt for t in staging.STAGING_TYPES[1:] for opt in driver_options(t)])
    )
    for store_type in STORE_TYPES:
        group = cfg.OptGroup(
            f"{store_type}_store_id",
            help=f"Options of a {store_type} store of enabled_backends. Name the group after "
            "the store's id: with 'enabled_backends = fast:file' they go in [fast].",
        )
        groups.append((group, driver_options(store_type) + common_options()))
    return groups
