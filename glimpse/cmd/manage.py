"""``glimpse-manage``: database administration."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from oslo_config import cfg

from glimpse import config
from glimpse.db import migrate
from glimpse.db.engine import Database


def _db_version(conf: cfg.ConfigOpts, db: Database) -> int:
    current = migrate.current(db.engine)
    if not current:
        print(
            "Database is either not under migration control or under legacy migration control, "
            "please run 'glimpse-manage db sync' to place the database under migration control."
        )
        return 1
    print(", ".join(current))
    return 0


def _db_sync(conf: cfg.ConfigOpts, db: Database) -> int:
    if migrate.is_current(db.engine):
        print("Database is up to date. No migrations needed.")
        return 0
    migrate.upgrade(db.engine, conf.command.version or "heads")
    print("Database is synced successfully.")
    return 0


def _db_upgrade(conf: cfg.ConfigOpts, db: Database) -> int:
    migrate.upgrade(db.engine, conf.command.version or "heads")
    print("Upgraded database to: " + ", ".join(migrate.current(db.engine)))
    return 0


def _db_check(conf: cfg.ConfigOpts, db: Database) -> int:
    if migrate.is_current(db.engine):
        print("Database is up to date. No upgrade needed.")
        return 0
    print("Database is not up to date; run 'glimpse-manage db sync'.")
    return 3


_COMMANDS = {
    "version": _db_version,
    "sync": _db_sync,
    "upgrade": _db_upgrade,
    "check": _db_check,
}
_LEGACY = {"db_version": "version", "db_sync": "sync", "db_upgrade": "upgrade"}


def _add_subcommands(subparsers: object) -> None:
    db = subparsers.add_parser("db")  # type: ignore[attr-defined]
    actions = db.add_subparsers(dest="action")
    actions.required = True
    for name in _COMMANDS:
        parser = actions.add_parser(name)
        if name in ("sync", "upgrade"):
            parser.add_argument("--version", default=None)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(args):
        if arg in _LEGACY:
            args = [*args[:i], "db", _LEGACY[arg], *args[i + 1 :]]
            break
    conf = cfg.ConfigOpts()
    config.register(conf)
    conf.register_cli_opt(cfg.SubCommandOpt("command", title="Commands", handler=_add_subcommands))
    conf(args, project="glimpse")
    db = Database(config.database_url(conf))
    try:
        sys.exit(_COMMANDS[conf.command.action](conf, db))
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
