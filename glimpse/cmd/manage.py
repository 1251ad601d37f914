"""``glimpse-manage``: database administration."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from oslo_config import cfg

from glimpse import config, errors
from glimpse.db import migrate
from glimpse.db.engine import Database
from glimpse.services import purge


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


def _db_purge(conf: cfg.ConfigOpts, db: Database) -> int:
    return _purge(conf, db, purge.purge_deleted_rows)


def _db_purge_images_table(conf: cfg.ConfigOpts, db: Database) -> int:
    code = _purge(conf, db, purge.purge_images)
    if code == 0:
        print("The ids of purged images may now be given to new images (OSSN-0075).")
    return code


def _purge(conf: cfg.ConfigOpts, db: Database, run: Callable[..., dict[str, int]]) -> int:
    age_in_days = conf.command.age_in_days
    if age_in_days is None:
        age_in_days = _PURGE_DEFAULT_AGE[conf.command.action]
    try:
        age, max_rows = purge.check_limits(age_in_days, conf.command.max_rows)
    except errors.GlimpseError as exc:
        print(f"ERROR: {exc.message}", file=sys.stderr)
        return 1
    if not migrate.is_current(db.engine):
        print(
            "ERROR: the database schema is not current; run 'glimpse-manage db sync'.",
            file=sys.stderr,
        )
        return 1
    progress = _show_progress if sys.stderr.isatty() else None
    purged = run(db, age, max_rows, progress=progress)
    for table, rows in purged.items():
        print(f"Purged {rows} row(s) from {table} deleted more than {age} day(s) ago.")
    return 0


def _show_progress(table: str, done: int, total: int) -> None:
    end = "\n" if done >= total else ""
    print(f"\r{table}: {done}/{total} rows purged", end=end, file=sys.stderr, flush=True)


_PURGE_DEFAULT_AGE = {"purge": 30, "purge_images_table": 180}

_COMMANDS = {
    "version": _db_version,
    "sync": _db_sync,
    "upgrade": _db_upgrade,
    "check": _db_check,
    "purge": _db_purge,
    "purge_images_table": _db_purge_images_table,
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
        if name in _PURGE_DEFAULT_AGE:
            parser.add_argument(
                "--age_in_days",
                default=None,
                help=f"Purge rows deleted more than this many days ago "
                f"(default {_PURGE_DEFAULT_AGE[name]}).",
            )
            parser.add_argument(
                "--max_rows",
                default="100",
                help="Most rows to purge per table; -1 purges every row (default 100).",
            )


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
