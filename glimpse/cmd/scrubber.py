"""``glimpse-scrubber``: removes the data of images deleted with ``delayed_delete``.

::

    glimpse-scrubber                     one pass, then exit (1 on a database error)
    glimpse-scrubber --daemon            a pass every wakeup_time seconds until SIGTERM
    glimpse-scrubber --dry-run           list what a pass would delete; change nothing
    glimpse-scrubber --restore IMAGE_ID  bring a pending_delete image back to active

The daemon writes its pid to ``scrubber_pid_file``; ``--restore`` refuses to run while
the process named there is alive, as Glance's did.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

from oslo_config import cfg
from sqlalchemy.exc import SQLAlchemyError

from glimpse import config, errors, log
from glimpse.runtime import Runtime
from glimpse.services import scrub

LOG = logging.getLogger("glimpse.scrubber")

_CLI_OPTS = [
    cfg.BoolOpt(
        "daemon",
        short="D",
        default=False,
        help="Run a scrub pass every wakeup_time seconds until stopped, instead of once.",
    ),
    cfg.StrOpt(
        "restore",
        metavar="IMAGE_ID",
        help="Restore this pending_delete image to active instead of scrubbing.",
    ),
    cfg.BoolOpt(
        "dry-run",
        default=False,
        help="List the images and locations a pass would delete now, and change nothing.",
    ),
]


def pid_file(conf: cfg.ConfigOpts) -> str:
    """``scrubber_pid_file``, or ``glimpse-scrubber.pid`` in the data folder."""
    return str(
        conf.scrubber_pid_file or os.path.join(config.data_dir(conf), "glimpse-scrubber.pid")
    )


def running_daemon(path: str) -> int | None:
    """The pid of the live scrubber daemon named in the pid file ``path``, if any."""
    pid = _read_pid(path)
    if pid is None or pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    # A stale pid file may name a pid the system gave to another program since.
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return pid if b"scrubber" in handle.read() else None
    except FileNotFoundError:
        return None
    except OSError:
        return pid


@contextlib.contextmanager
def _pid_file_held(path: str) -> Iterator[None]:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(f"{os.getpid()}\n")
    os.replace(temporary, path)
    try:
        yield
    finally:
        # Leave a pid file alone that another daemon has rewritten since.
        if _read_pid(path) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _error(message: str) -> int:
    print(f"ERROR: {message}", file=sys.stderr)
    return 1


def run(conf: cfg.ConfigOpts) -> int:
    """Carry out the command line in ``conf``; returns the exit status."""
    if conf.restore is not None and conf.daemon:
        return _error("--restore and --daemon cannot be used together; use one of them.")
    if conf.dry_run and (conf.daemon or conf.restore is not None):
        return _error("--dry-run cannot be combined with --daemon or --restore.")
    path = pid_file(conf)
    if conf.restore is not None:
        pid = running_daemon(path)
        if pid is not None:
            return _error(
                f"the glimpse-scrubber daemon is running (pid {pid}, pid file {path}); "
                "stop it before restoring an image."
            )
    elif conf.daemon:
        pid = running_daemon(path)
        if pid is not None:
            return _error(f"a glimpse-scrubber daemon is already running (pid {pid}, {path}).")

    rt = Runtime.build(conf)
    try:
        if conf.restore is not None:
            return _restore(rt, conf.restore)
        if conf.dry_run:
            return _dry_run(rt)
        if conf.daemon:
            with _pid_file_held(path):
                return _daemon(rt)
        return _one_pass(rt)
    finally:
        rt.close()


def _restore(rt: Runtime, image_id: str) -> int:
    try:
        scrub.restore(rt, image_id)
    except errors.GlimpseError as exc:
        return _error(exc.message)
    except SQLAlchemyError as exc:
        return _error(f"database error: {exc}")
    print(f"Image {image_id} restored to active.")
    return 0


def _dry_run(rt: Runtime) -> int:
    try:
        pending = scrub.plan(rt)
    except SQLAlchemyError as exc:
        return _error(f"cannot read pending_delete images: {exc}")
    if not pending:
        print("Nothing to scrub.")
        return 0
    print(f"A scrub pass would delete the data of {len(pending)} image(s):")
    for image in pending:
        print(f"{image.image_id} (deleted at {image.deleted_at.isoformat()}Z)")
        for uri in image.locations:
            print(f"  {uri}")
        if not image.locations:
            print("  (no data left; the image would be marked deleted)")
    return 0


def _one_pass(rt: Runtime) -> int:
    try:
        result = scrub.run_pass(rt)
    except SQLAlchemyError:
        LOG.critical("Cannot read pending_delete images from the database", exc_info=True)
        return 1
    _log_result(result)
    return 1 if result.db_errors else 0


def _daemon(rt: Runtime) -> int:
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        LOG.info("Signal %d received; stopping after the images in progress", signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    LOG.info("Scrubber daemon started (pid %d); a pass every %ss", os.getpid(), rt.conf.wakeup_time)
    while not stop.is_set():
        try:
            _log_result(scrub.run_pass(rt, stop=stop))
        except SQLAlchemyError:
            LOG.critical(
                "Cannot read pending_delete images from the database; retrying in %ss",
                rt.conf.wakeup_time,
                exc_info=True,
            )
        stop.wait(rt.conf.wakeup_time)
    LOG.info("Scrubber daemon stopped")
    return 0


def _log_result(result: scrub.PassResult) -> None:
    if result.scrubbed or result.kept or result.db_errors:
        LOG.info(
            "Scrub pass: %d image(s) scrubbed, %d left pending_delete after store errors, "
            "%d database error(s)",
            len(result.scrubbed),
            len(result.kept),
            len(result.db_errors),
        )


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    conf = cfg.ConfigOpts()
    config.register(conf)
    conf.register_cli_opts(_CLI_OPTS)
    config.parse(conf, args)
    log.setup(conf)
    sys.exit(run(conf))


if __name__ == "__main__":
    main()
