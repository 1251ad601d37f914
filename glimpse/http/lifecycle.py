"""What the API process does beside serving requests: config reload and write recovery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from glimpse import log
from glimpse.data.pipeline import validate_hash_algorithm
from glimpse.runtime import Runtime
from glimpse.services import image_data

LOG = logging.getLogger(__name__)
RECOVERY_INTERVAL_SECONDS = 60


def reload_config(rt: Runtime) -> None:
    """Re-read the config files and apply the mutable options (SIGHUP).

    A new value that would break data writes is refused and the old one kept,
    so a typo in the file never fails requests.
    """
    previous = rt.conf.hashing_algorithm
    try:
        rt.conf.mutate_config_files()
    except Exception:
        LOG.exception("Reloading the configuration failed; keeping the current one")
        return
    log.apply_level(rt.conf)
    try:
        validate_hash_algorithm(rt.conf.hashing_algorithm)
    except ValueError as exc:
        LOG.error(
            "Ignoring hashing_algorithm %r from the reloaded configuration: %s",
            rt.conf.hashing_algorithm,
            exc,
        )
        rt.conf.set_override("hashing_algorithm", previous)
        return
    LOG.info("Configuration reloaded; hashing_algorithm is %s", rt.conf.hashing_algorithm)


async def _recover_periodically(rt: Runtime) -> None:
    while True:
        await asyncio.sleep(RECOVERY_INTERVAL_SECONDS)
        try:
            await run_in_threadpool(image_data.recover_interrupted_writes, rt)
        except Exception:
            LOG.exception("Recovering interrupted writes failed; retrying later")


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    rt: Runtime = app.state.runtime
    loop = asyncio.get_running_loop()
    hup_installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, reload_config, rt)
        hup_installed = True
    recovery = asyncio.ensure_future(_recover_periodically(rt))
    try:
        yield
    finally:
        recovery.cancel()
        if hup_installed:
            loop.remove_signal_handler(signal.SIGHUP)
