"""Options of the ``[glance_store]`` group (single-store form)."""

from __future__ import annotations

from oslo_config import cfg

_opts = [
    cfg.ListOpt("stores", default=["file", "http"], help="Store types enabled (single-store)."),
    cfg.StrOpt("default_store", default="file", help="Store type new image data is written to."),
    cfg.StrOpt(
        "filesystem_store_datadir",
        help="Folder of the filesystem store. Defaults to images/ in the data folder.",
    ),
    cfg.StrOpt(
        "default_backend", help="With enabled_backends: the store id used when none is named."
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [("glance_store", _opts)]
