"""Options of the ``[task]`` group."""

from __future__ import annotations

from oslo_config import cfg

_opts: list[cfg.Opt] = [
    cfg.IntOpt(
        "task_time_to_live",
        default=48,
        min=0,
        help="Hours a finished task stays visible before it expires.",
    ),
    cfg.StrOpt(
        "work_dir",
        help="Folder where a glimpse-worker keeps its local copy of an image while an import "
        "plugin that reads the data (image_conversion) works on it, when the staging area "
        "is an object store ([os_glance_staging_store] store_type). It needs room for the "
        "image and its converted form. Defaults to work/ in the data folder.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [("task", _opts)]
