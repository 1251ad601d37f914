"""``glimpse-worker``: claims import jobs from the database and runs them.

Any number of workers on any number of nodes may run against one database; a
job whose worker died is taken over when its lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from glimpse import config, log
from glimpse.config.backends import StoreConfigError
from glimpse.db import migrate
from glimpse.imports import queue, runner, working_copy
from glimpse.notifications import NotificationConfigError
from glimpse.runtime import Runtime
from glimpse.services.property_protection import PropertyProtectionConfigError

LOG = logging.getLogger("glimpse.worker")


async def serve(rt: Runtime, stop: asyncio.Event, worker_id: str | None = None) -> None:
    """Claim and run jobs until ``stop`` is set; jobs under way are finished first."""
    me = worker_id or queue.worker_identity()
    running: set[asyncio.Task[None]] = set()
    concurrency = int(rt.conf.worker.concurrency)
    poll = float(rt.conf.worker.poll_seconds)
    LOG.info("Worker %s ready", me)
    while not stop.is_set():
        claimed = None
        if len(running) < concurrency:
            try:
                claimed = await run_in_threadpool(queue.claim, rt, me)
            except Exception:
                LOG.exception("Claiming a job failed; retrying")
        if claimed is not None:
            job = asyncio.ensure_future(_run(rt, claimed))
            running.add(job)
            job.add_done_callback(running.discard)
            continue
        waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(stop.wait())}
        waiters |= set(running)  # type: ignore[arg-type]
        done, _ = await asyncio.wait(waiters, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            if waiter not in running and not waiter.done():
                waiter.cancel()
        del done
    if running:
        await asyncio.gather(*running, return_exceptions=True)


async def _run(rt: Runtime, claimed: queue.Claim) -> None:
    # Every line logged for the task names it and the request that queued it.
    with log.fields(
        request_id=claimed.request_id, user_id=claimed.user_id, task_id=claimed.task_id
    ):
        LOG.info("Running task %s (attempt %d)", claimed.task_id, claimed.attempts)
        await runner.run(rt, claimed)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    conf = config.new_conf(args)
    log.setup(conf)
    try:
        rt = Runtime.build(conf)
    except (PropertyProtectionConfigError, NotificationConfigError, StoreConfigError) as exc:
        sys.exit(f"ERROR: {exc}")
    if not migrate.is_current(rt.db.engine):
        sys.exit("ERROR: the database schema is not current; run 'glimpse-manage db sync'.")
    working_copy.remove_abandoned(rt)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await serve(rt, stop)

    try:
        asyncio.run(run())
    finally:
        rt.close()


if __name__ == "__main__":
    main()
