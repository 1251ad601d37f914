"""``glimpse-api``: serve the Images API.

With no configuration it serves http://127.0.0.1:9292 on the embedded default:
SQLite and a filesystem store in one data folder, no Keystone.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import ipaddress
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn
from oslo_config import cfg

from glimpse import config, log
from glimpse.config.backends import StoreConfigError
from glimpse.data.pipeline import validate_hash_algorithm
from glimpse.db import migrate
from glimpse.http.app import ASGIApp, create_app
from glimpse.notifications import NotificationConfigError
from glimpse.runtime import Runtime
from glimpse.services import image_data
from glimpse.services.property_protection import PropertyProtectionConfigError
from glimpse.services.quotas import parse_storage_quota

LOG = logging.getLogger("glimpse.api")
_ARGS_ENV = "GLIMPSE_API_ARGS"
#: uvicorn's httptools protocol with zero-copy downloads (glimpse/http/uvicorn_protocol.py).
UVICORN_PROTOCOL = "glimpse.http.uvicorn_protocol:UvicornProtocol"


def _is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(conf: cfg.ConfigOpts) -> Runtime:
    """Check the configuration and build the runtime; exit with a message if unfit."""
    # keystone validates tokens; trusted-auth is the operator's statement that a front
    # proxy sets the identity headers. Only the unauthenticated mode trusts anyone.
    flavor = conf.paste_deploy.flavor or ""
    authenticated = flavor.startswith(("keystone", "trusted-auth"))
    if not authenticated and not _is_loopback(conf.bind_host):
        if not conf.allow_insecure_noauth_bind:
            sys.exit(
                "ERROR: without authentication ([paste_deploy] flavor) every caller is trusted; "
                "refusing "
                f"to listen on {conf.bind_host}. Listen on loopback, configure Keystone, or set "
                "allow_insecure_noauth_bind = true."
            )
    try:
        validate_hash_algorithm(conf.hashing_algorithm)
    except ValueError as exc:
        sys.exit(f"ERROR: invalid hashing_algorithm: {exc}")
    try:
        parse_storage_quota(conf.user_storage_quota)
    except ValueError as exc:
        sys.exit(f"ERROR: {exc}")
    try:
        rt = Runtime.build(conf)
    except (PropertyProtectionConfigError, NotificationConfigError, StoreConfigError) as exc:
        sys.exit(f"ERROR: {exc}")
    return rt


def prepare(conf: cfg.ConfigOpts) -> Runtime:
    """Check the configuration and database, and build the runtime; exit with a message if unfit."""
    rt = check(conf)
    if not migrate.is_current(rt.db.engine):
        if rt.db.backend == "sqlite":
            # The embedded default keeps its own schema current; shared databases are
            # migrated by the operator with glimpse-manage, once, not by each API node.
            migrate.upgrade(rt.db.engine)
        else:
            sys.exit("ERROR: the database schema is not current; run 'glimpse-manage db sync'.")
    image_data.recover_interrupted_writes(rt, at_startup=True)
    return rt


def app_factory() -> ASGIApp:
    """Build the app in a server worker process, from the arguments the parent passed on."""
    args = json.loads(os.environ.get(_ARGS_ENV, "[]"))
    conf = config.new_conf(args)
    log.setup(conf)
    return create_app(prepare(conf))


def check_http_server(conf: cfg.ConfigOpts) -> None:
    """Exit with a message when the chosen HTTP server is not installed."""
    if conf.http_server == "granian" and importlib.util.find_spec("granian") is None:
        sys.exit(
            "ERROR: http_server = granian, but granian is not installed; install it with "
            "pip install 'glimpse[granian]' or choose http_server = uvicorn."
        )


def start_embedded_workers(conf: cfg.ConfigOpts, args: list[str]) -> list[subprocess.Popen[bytes]]:
    """glimpse-worker processes beside the API, so a single command has working imports."""
    count = int(conf.worker.embedded_workers)
    return [
        subprocess.Popen(
            [sys.executable, "-m", "glimpse.cmd.worker", *args], preexec_fn=_die_with_parent
        )
        for _ in range(count)
    ]


def _die_with_parent() -> None:
    # An embedded worker must not outlive its API process, even one killed with SIGKILL.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_embedded_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        if proc.poll() is None:
            proc.terminate()
    for proc in workers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    conf = config.new_conf(args)
    log.setup(conf)
    check_http_server(conf)
    rt = prepare(conf)
    workers = start_embedded_workers(conf, args)
    try:
        _serve(conf, rt, args)
    finally:
        stop_embedded_workers(workers)


def _serve(conf: cfg.ConfigOpts, rt: Runtime, args: list[str]) -> None:
    workers = conf.workers or os.cpu_count() or 1
    LOG.info(
        "Glimpse API on http://%s:%s (%s, %d worker(s))",
        conf.bind_host,
        conf.bind_port,
        conf.http_server,
        workers,
    )
    if conf.http_server == "granian":
        # granian always serves from worker processes, which build their own runtime.
        rt.close()
        os.environ[_ARGS_ENV] = json.dumps(args)
        _serve_granian(conf, args, workers)
        return
    if workers == 1:
        uvicorn.run(
            create_app(rt),
            host=conf.bind_host,
            port=conf.bind_port,
            log_config=None,  # glimpse.log has set up logging
            log_level="info",
            access_log=False,
            http=UVICORN_PROTOCOL,
            timeout_graceful_shutdown=int(conf.graceful_shutdown_timeout),
        )
        return
    rt.close()
    os.environ[_ARGS_ENV] = json.dumps(args)
    uvicorn.run(
        "glimpse.cmd.api:app_factory",
        factory=True,
        host=conf.bind_host,
        port=conf.bind_port,
        workers=workers,
        log_config=None,
        log_level="info",
        access_log=False,
        http=UVICORN_PROTOCOL,
        # A worker still importing and migrating on a loaded host must not be killed
        # as unhealthy (uvicorn's default is 5 s).
        timeout_worker_healthcheck=60,
        timeout_graceful_shutdown=int(conf.graceful_shutdown_timeout),
    )


def reloadable(args: list[str]) -> bool:
    """Whether the configuration files as they are now would start; logs why not."""
    try:
        check(config.new_conf(args)).close()
    except SystemExit as exc:
        LOG.error("Not reloading: %s", exc.code)
        return False
    except cfg.Error as exc:
        LOG.error("Not reloading: the configuration cannot be read: %s", exc)
        return False
    return True


def _serve_granian(conf: cfg.ConfigOpts, args: list[str], workers: int) -> None:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server import Server

    class GlimpseGranian(Server):  # type: ignore[misc,valid-type]
        def signal_handler_reload(self, *args_: Any, **kwargs: Any) -> None:
            # granian retires the old workers even when the new ones cannot start:
            # a configuration that would not start must not replace working ones.
            if reloadable(args):
                super().signal_handler_reload(*args_, **kwargs)

    timeout = int(conf.graceful_shutdown_timeout)
    server = GlimpseGranian(
        "glimpse.cmd.api:app_factory",
        address=conf.bind_host,
        port=conf.bind_port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        websockets=False,
        log_level=LogLevels.info,
        # granian's own lines go through the root logger, in Glimpse's format.
        log_dictconfig={"loggers": {"_granian": {"level": "INFO", "propagate": True}}},
        log_access=False,
        # Requests in flight (uploads) get this long after SIGTERM, or after SIGHUP
        # replaced their worker; granian counts whole seconds from 1.
        workers_kill_timeout=max(1, timeout),
        respawn_failed_workers=True,
    )
    log.setup(conf)  # granian's logging set-up closed our handler
    server.serve()


if __name__ == "__main__":
    main()
