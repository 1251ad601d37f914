"""Options of the ``[database]`` group."""

from __future__ import annotations

from oslo_config import cfg

_opts = [
    cfg.StrOpt(
        "connection",
        secret=True,
        help="SQLAlchemy URL of the database, e.g. postgresql+psycopg://user:pw@host/glance or "
        "mysql+pymysql://user:pw@host/glance. Defaults to SQLite in the data folder.",
    ),
    cfg.IntOpt("max_pool_size", default=5, min=1, help="Connections kept open per process."),
    cfg.IntOpt(
        "max_overflow", default=50, min=0, help="Connections opened beyond the pool under load."
    ),
    cfg.IntOpt(
        "pool_timeout", default=30, min=1, help="Seconds to wait for a free pool connection."
    ),
    cfg.IntOpt(
        "connection_recycle_time",
        default=3600,
        help="Seconds after which a pooled connection is replaced.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [("database", _opts)]
