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
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [("task", _opts)]
