"""``glimpse-manage``: database administration, and sweeping the stores.

::

    glimpse-manage db sync|version|upgrade|check|purge|...    the database
    glimpse-manage store purge_uploads [--older_than SECONDS] [--store ID] [--dry_run]
                                       what unfinished writes left in the stores
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from oslo_config import cfg
from oslo_utils import strutils

from glimpse import config, errors
from glimpse.config.backends import StoreConfigError
from glimpse.db import migrate
from glimpse.db.engine import Database
from glimpse.services import purge, store_leftovers
from glimpse.services.metadefs import definition_files
from glimpse.store.registry import Stores


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


def _db_load_metadefs(conf: cfg.ConfigOpts, db: Database) -> int:
    command = conf.command
    try:
        mode = definition_files.LoadMode.of(command.merge, command.prefer_new, command.overwrite)
        paths = definition_files.locate(Path(command.path) if command.path else None)
    except errors.GlimpseError as exc:
        print(f"ERROR: {exc.message}", file=sys.stderr)
        return 1
    if not _metadef_tables_ready(db):
        return 1
    results = definition_files.load(db, paths, mode, progress=_metadef_progress("Loading"))
    failed = [r for r in results if r.outcome is definition_files.Outcome.FAILED]
    for result in failed:
        print(f"ERROR: {result.path}: {result.error}", file=sys.stderr)
    counts = {o: sum(r.outcome is o for r in results) for o in definition_files.Outcome}
    summary = ", ".join(f"{n} {outcome.value}" for outcome, n in counts.items() if n)
    source = command.path or definition_files.SHIPPED
    print(f"Loaded {len(paths)} definition file(s) from {source} ({mode.value}): {summary}.")
    if counts[definition_files.Outcome.SKIPPED]:
        print("Namespaces that already exist were skipped; --merge adds to them.")
    return 1 if failed else 0


def _db_unload_metadefs(conf: cfg.ConfigOpts, db: Database) -> int:
    if not _metadef_tables_ready(db):
        return 1
    for table, rows in definition_files.unload(db).items():
        print(f"Deleted {rows} row(s) from {table}.")
    return 0


def _db_export_metadefs(conf: cfg.ConfigOpts, db: Database) -> int:
    if not _metadef_tables_ready(db):
        return 1
    directory = Path(conf.command.path or ".")
    try:
        written = definition_files.export(db, directory, progress=_metadef_progress("Exporting"))
    except OSError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"Exported {len(written)} namespace(s) to {directory}.")
    return 0


def _metadef_tables_ready(db: Database) -> bool:
    if migrate.is_current(db.engine):
        return True
    print(
        "ERROR: the database schema is not current; run 'glimpse-manage db sync'.",
        file=sys.stderr,
    )
    return False


def _metadef_progress(verb: str) -> definition_files.Progress | None:
    """A counter on one line of a terminal; nothing when stderr is a file or a pipe."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, namespace: str) -> None:
        end = "\n" if done >= total else ""
        line = f"\r\033[K{verb} {done}/{total}: {namespace}"
        print(line, end=end, file=sys.stderr, flush=True)

    return show


def _add_metadef_arguments(action: str, parser: Any) -> None:
    if action == "load_metadefs":
        parser.add_argument(
            "--path",
            default=None,
            help="A definition file, or a folder of *.json files "
            "(default: the definitions shipped with Glimpse).",
        )
        parser.add_argument(
            "--merge",
            action="store_true",
            help="Add what the files define to namespaces that already exist, keeping "
            "their existing items (without it, existing namespaces are skipped).",
        )
        parser.add_argument(
            "--prefer_new",
            action="store_true",
            help="With --merge: also update existing items, and the namespace itself, "
            "from the files.",
        )
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="With --merge: drop everything an existing namespace defines and "
            "reload it from its file.",
        )
    elif action == "export_metadefs":
        parser.add_argument(
            "--path",
            default=None,
            help="Folder to write one <Namespace>.json per namespace to, replacing files "
            "of the same name (default: the current folder).",
        )


#: Glance's legacy spellings take positional values: ``db_load_metadefs [path] [merge]
#: [prefer_new] [overwrite]`` and ``db_export_metadefs [path]``.
_LEGACY_POSITIONALS = {
    "load_metadefs": ("--path", "--merge", "--prefer_new", "--overwrite"),
    "export_metadefs": ("--path",),
}


def _legacy_arguments(action: str, rest: list[str]) -> list[str]:
    """The positional values of a legacy command as options; a flag's value counts as set
    unless it reads as false ("False", "0", "no")."""
    converted: list[str] = []
    for option in _LEGACY_POSITIONALS.get(action, ()):
        if not rest or rest[0].startswith("-"):
            break
        value, rest = rest[0], rest[1:]
        if option == "--path":
            converted += [option, value]
        elif strutils.bool_from_string(value, default=True):
            converted.append(option)
    return [*converted, *rest]


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

#: Leftovers younger than a day may belong to an upload that is merely slow.
_UPLOAD_LEFTOVER_AGE = 86400


def _store_purge_uploads(conf: cfg.ConfigOpts) -> int:
    command = conf.command
    try:
        older_than = float(command.older_than)
    except ValueError:
        print(f"ERROR: --older_than takes seconds, not {command.older_than!r}.", file=sys.stderr)
        return 1
    try:
        stores = Stores.from_conf(conf)
        results = store_leftovers.sweep(
            stores, older_than, dry_run=command.dry_run, store_ids=command.store
        )
    except StoreConfigError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except errors.GlimpseError as exc:
        print(f"ERROR: {exc.message}", file=sys.stderr)
        return 1
    verb = "would remove" if command.dry_run else "removed"
    for result in results:
        if result.error is not None:
            print(f"ERROR: store {result.store_id}: {result.error}", file=sys.stderr)
            continue
        print(
            f"Store {result.store_id}: {verb} {len(result.removed)} leftover(s) of writes "
            f"untouched for {older_than:g} s."
        )
        for name in result.removed:
            print(f"  {name}")
    return 1 if any(result.error is not None for result in results) else 0


_COMMANDS = {
    "version": _db_version,
    "sync": _db_sync,
    "upgrade": _db_upgrade,
    "check": _db_check,
    "load_metadefs": _db_load_metadefs,
    "unload_metadefs": _db_unload_metadefs,
    "export_metadefs": _db_export_metadefs,
    "purge": _db_purge,
    "purge_images_table": _db_purge_images_table,
}
_LEGACY = {
    "db_version": "version",
    "db_sync": "sync",
    "db_upgrade": "upgrade",
    "db_load_metadefs": "load_metadefs",
    "db_unload_metadefs": "unload_metadefs",
    "db_export_metadefs": "export_metadefs",
}


_STORE_COMMANDS = {"purge_uploads": _store_purge_uploads}


def _add_subcommands(subparsers: object) -> None:
    store = subparsers.add_parser("store")  # type: ignore[attr-defined]
    store_actions = store.add_subparsers(dest="action")
    store_actions.required = True
    purge_uploads = store_actions.add_parser(
        "purge_uploads",
        help="Remove what unfinished writes left in the stores: temporary files, Swift "
        "segments, S3 multipart uploads.",
    )
    purge_uploads.add_argument(
        "--older_than",
        default=str(_UPLOAD_LEFTOVER_AGE),
        metavar="SECONDS",
        help="Only leftovers untouched for this long; longer than the longest pause an "
        f"upload may take (default {_UPLOAD_LEFTOVER_AGE}, a day).",
    )
    purge_uploads.add_argument(
        "--store",
        action="append",
        default=None,
        metavar="ID",
        help="Sweep this store only (repeatable; default: every store and the staging area).",
    )
    purge_uploads.add_argument(
        "--dry_run",
        "--dry-run",
        action="store_true",
        help="List what would be removed, and remove nothing.",
    )
    db = subparsers.add_parser("db")  # type: ignore[attr-defined]
    actions = db.add_subparsers(dest="action")
    actions.required = True
    for name in _COMMANDS:
        parser = actions.add_parser(name)
        if name in ("sync", "upgrade"):
            parser.add_argument("--version", default=None)
        _add_metadef_arguments(name, parser)
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
            action = _LEGACY[arg]
            args = [*args[:i], "db", action, *_legacy_arguments(action, args[i + 1 :])]
            break
    conf = cfg.ConfigOpts()
    config.register(conf)
    conf.register_cli_opt(cfg.SubCommandOpt("command", title="Commands", handler=_add_subcommands))
    config.parse(conf, args)
    if conf.command.name == "store":
        sys.exit(_STORE_COMMANDS[conf.command.action](conf))
    db = Database(config.database_url(conf))
    try:
        sys.exit(_COMMANDS[conf.command.action](conf, db))
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
