"""Options of the ``[worker]`` group: glimpse-worker processes that run imports."""

from __future__ import annotations

from oslo_config import cfg

_opts = [
    cfg.IntOpt(
        "embedded_workers",
        default=1,
        min=0,
        help="glimpse-worker processes glimpse-api starts beside itself, so that imports work "
        "with a single command. Set 0 when workers run as their own service.",
    ),
    cfg.IntOpt(
        "lease_seconds",
        default=60,
        min=5,
        help="How long a claimed job stays a worker's without a heartbeat; after that another "
        "worker takes it over.",
    ),
    cfg.IntOpt(
        "heartbeat_seconds",
        default=10,
        min=1,
        help="How often a worker renews the lease of the job it runs.",
    ),
    cfg.FloatOpt(
        "poll_seconds",
        default=1.0,
        min=0.05,
        help="How often an idle worker looks for new jobs.",
    ),
    cfg.IntOpt(
        "max_attempts",
        default=3,
        min=1,
        help="How many times a job is started before a crash of its worker fails it for good.",
    ),
    cfg.IntOpt(
        "concurrency",
        default=1,
        min=1,
        help="Jobs one worker process runs at once.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [("worker", _opts)]
