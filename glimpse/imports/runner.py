"""Running one import job in a glimpse-worker: fetch or take the staged data, run the
plugins, write it to the store through the single-pass pipeline, and activate.

Every step is safe to run again: a job whose worker died is claimed by another
worker and starts over from the staged data (glance-direct) or the source URI
(web-download). Any failure leaves the image ``queued`` with no staged or
partial data, and the task ``failure`` with a message the user can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from glimpse.data.pipeline import store_stream
from glimpse.db.models import Image, ImageProperty, Task, utcnow
from glimpse.imports import (
    inspection,
    location_import,
    plugins,
    queue,
    to_stores,
    web_download,
)
from glimpse.imports.errors import ImportFailed
from glimpse.imports.queue import Claim, LeaseLost
from glimpse.imports.working_copy import WorkingCopy
from glimpse.notifications import payloads
from glimpse.runtime import Runtime
from glimpse.services import image_data
from glimpse.services.import_targets import COPY_IMAGE
from glimpse.services.location_import import TASK_TYPE as LOCATION_IMPORT
from glimpse.services.records import ImageRecord
from glimpse.services.tasks import TaskRecord
from glimpse.store.base import StoreDriver
from glimpse.store.errors import StoreError, StoreNotFound

LOG = logging.getLogger(__name__)

__all__ = ["ImportFailed", "run"]


class _Progress:
    def __init__(self) -> None:
        self.done = 0
        self.total: int | None = None


async def run(rt: Runtime, claim: Claim) -> None:
    """Run a claimed task to its end, unless its lease is lost on the way."""
    progress = _Progress()
    beat = asyncio.ensure_future(_heartbeat(rt, claim, progress))
    try:
        await _run(rt, claim, progress)
    except LeaseLost:
        LOG.warning("Task %s was taken over by another worker; stopping", claim.task_id)
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError, LeaseLost):
            await beat


async def _heartbeat(rt: Runtime, claim: Claim, progress: _Progress) -> None:
    interval = int(rt.conf.worker.heartbeat_seconds)
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(queue.renew, rt, claim, progress.done, progress.total)
        except LeaseLost:
            LOG.error("Lost the lease of task %s", claim.task_id)
            raise
        except Exception:
            LOG.warning("Could not renew the lease of task %s", claim.task_id, exc_info=True)


async def _run(rt: Runtime, claim: Claim, progress: _Progress) -> None:
    if claim.task_type == LOCATION_IMPORT:
        await location_import.run(rt, claim, progress)
        return
    image_id = claim.input.get("image_id")
    if claim.attempts > int(rt.conf.worker.max_attempts):
        await _fail(
            rt,
            claim,
            image_id,
            "The import was interrupted too many times (its worker "
            "stopped during each attempt); try importing again.",
        )
        return
    try:
        if claim.task_type == "import":
            image_id = await run_in_threadpool(_legacy_image, rt, claim)
        if not isinstance(image_id, str):
            raise ImportFailed("The task names no image.")
        await _import(rt, claim, image_id, progress)
    except LeaseLost:
        raise
    except ImportFailed as exc:
        await _fail(rt, claim, image_id, str(exc))
    except Exception as exc:
        LOG.exception("Import task %s failed", claim.task_id)
        await _fail(rt, claim, image_id, f"Import failed: {exc}")


def _legacy_image(rt: Runtime, claim: Claim) -> str:
    """The image a legacy ``import`` task creates (once, even if the task is retried)."""
    properties = dict(claim.input.get("image_properties") or {})
    with rt.db.transaction() as session:
        task = session.get(Task, claim.task_id)
        assert task is not None
        if task.image_id:
            return task.image_id
        now = utcnow()
        image = Image(
            id=str(uuid.uuid4()),
            name=properties.pop("name", None),
            status="importing",
            visibility=properties.pop("visibility", "shared"),
            protected=False,
            os_hidden=False,
            owner=claim.owner,
            disk_format=properties.pop("disk_format", claim.input.get("import_from_format")),
            container_format=properties.pop("container_format", "bare"),
            min_ram=int(properties.pop("min_ram", 0) or 0),
            min_disk=int(properties.pop("min_disk", 0) or 0),
            created_at=now,
            updated_at=now,
            deleted=False,
        )
        image.properties = [
            ImageProperty(name=str(k), value=str(v), created_at=now, updated_at=now, deleted=False)
            for k, v in properties.items()
        ]
        session.add(image)
        task.image_id = image.id
        task.input = json.dumps({**claim.input, "image_id": image.id})
        created = ImageRecord.of(image)
    rt.notifier.info("image.create", payloads.image(created))
    return created.id


def _load(rt: Runtime, image_id: str) -> dict[str, Any]:
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        if image is None or image.deleted:
            raise ImportFailed(f"Image {image_id} was deleted before its import ran.")
        if image.status != "importing":
            raise ImportFailed(f"Image {image_id} is {image.status}, not importing.")
        return {
            "id": image.id,
            "owner": image.owner,
            "disk_format": image.disk_format,
            "container_format": image.container_format,
            "properties": {p.name: p.value for p in image.properties if not p.deleted},
        }


async def _import(rt: Runtime, claim: Claim, image_id: str, progress: _Progress) -> None:
    request = claim.input.get("import_req") or {}
    method = request.get("method") or {}
    name = method.get("name") if claim.task_type != "import" else "web-download"
    if name == COPY_IMAGE:
        await to_stores.copy_image(rt, claim, image_id, progress)
        return
    await run_in_threadpool(_load, rt, image_id)
    staging = rt.stores.staging
    staged_uri = staging.uri_for(image_id)
    loaded = plugins.load_plugins(rt.conf)
    if name == "web-download":
        uri = method.get("uri") if claim.task_type != "import" else claim.input.get("import_from")
        await _download_to_staging(
            rt, claim, image_id, str(uri), method.get("decompress"), progress
        )
    elif name == "glance-direct":
        try:
            size = await run_in_threadpool(staging.stat, staged_uri)
        except StoreNotFound:
            raise ImportFailed("The staged data of the image is missing; stage it again.") from None
        progress.total = size
    else:
        raise ImportFailed(f"Import method {name!r} is not supported.")

    source: tuple[StoreDriver, str] = (staging, staged_uri)
    copy: WorkingCopy | None = None
    if staging.local_path(staged_uri) is None and any(p.reads_data for p in loaded):
        # The plugins need a file: the object-store staging area's data comes to this host.
        copy = await run_in_threadpool(WorkingCopy.fetch, rt, image_id)
        source = (copy.store, copy.uri)
    try:
        await run_in_threadpool(_prepare_staged, rt, claim, image_id, source, loaded)
        await to_stores.import_staged(
            rt, claim, image_id, progress, method.get("expected_hash"), source
        )
    finally:
        if copy is not None:
            await run_in_threadpool(copy.remove)
    await run_in_threadpool(staging.discard, image_id)


async def _download_to_staging(
    rt: Runtime,
    claim: Claim,
    image_id: str,
    uri: str,
    decompress: str | None,
    progress: _Progress,
) -> None:
    staging = rt.stores.staging
    # A previous attempt may have left a complete download behind; fetch again.
    await run_in_threadpool(staging.discard, image_id)
    try:
        source = await web_download.stream(rt.conf, uri, decompress=decompress)
    except web_download.WebDownloadError as exc:
        raise ImportFailed(f"Downloading {uri} failed: {exc}") from exc
    progress.total = getattr(source, "content_length", None)

    async def counted() -> AsyncIterator[bytes]:
        try:
            async for chunk in source:
                progress.done += len(chunk)
                yield chunk
        except web_download.WebDownloadError as exc:
            raise ImportFailed(f"Downloading {uri} failed: {exc}") from exc

    cap = int(rt.conf.image_size_cap)
    try:
        writer = await run_in_threadpool(staging.begin_write, image_id)
        await store_stream(
            counted(),
            writer,
            hash_algo="sha256",
            size_limit=cap,
            expected_size=None,
            on_limit=lambda limit: ImportFailed(
                f"The image at {uri} is larger than the size cap of {limit} bytes."
            ),
        )
    except StoreError as exc:
        raise ImportFailed(image_data.store_failure(exc, "The staging area").message) from exc
    finally:
        await source.aclose()


def _prepare_staged(
    rt: Runtime,
    claim: Claim,
    image_id: str,
    source: tuple[StoreDriver, str],
    loaded: list[plugins.ImportPlugin],
) -> None:
    """Inspect the staged data and run the configured plugins on it.

    ``source`` holds the data: the staged file or object, or a working copy on this host
    when a plugin reads the data and the staging area is an object store.
    """
    driver, uri = source
    path = driver.local_path(uri)
    image = _load(rt, image_id)
    names = [p.name for p in loaded]
    changes: dict[str, Any] = {}
    props: dict[str, str] = {}
    if "image_conversion" not in names:
        try:
            found = _inspect(rt, image, driver, uri)
        except inspection.UnsafeImage as exc:
            raise ImportFailed(f"The image data was refused: {exc}") from exc
        except StoreError as exc:
            raise ImportFailed(f"The staged data cannot be read: {exc}") from exc
        if found.virtual_size is not None:
            changes["virtual_size"] = found.virtual_size
    roles = list(claim.input.get("roles") or [])
    for plugin in loaded:
        try:
            output = plugin.run(
                plugins.PluginInput(conf=rt.conf, image=image, staged_path=path, roles=roles)
            )
        except plugins.PluginError as exc:
            raise ImportFailed(f"The {plugin.name} step failed: {exc}") from exc
        except inspection.UnsafeImage as exc:
            raise ImportFailed(f"The image data was refused: {exc}") from exc
        if output.staged_path != path and output.staged_path is not None and path is not None:
            os.replace(output.staged_path, path)
        changes.update(output.image_changes)
        props.update(output.property_changes)
        image.update({k: v for k, v in output.image_changes.items()})
        image["properties"].update(output.property_changes)
    if changes or props:
        _apply_changes(rt, claim, image_id, changes, props)


def _inspect(
    rt: Runtime, image: dict[str, Any], driver: StoreDriver, uri: str
) -> inspection.Inspection:
    """Inspect the staged data where it is: a local file, or the head of a staged object."""
    formats = rt.conf.image_format
    inspect = functools.partial(
        inspection.inspect_stream,
        declared_format=image["disk_format"],
        require_match=bool(formats.require_image_format_match),
        container_format=image["container_format"],
        vmdk_allowed_types=list(formats.vmdk_allowed_types),
        gpt_nonfatal_checks=list(formats.gpt_safety_checks_nonfatal),
    )
    length = driver.stat(uri)
    chunks = driver.read(uri)
    try:
        return inspect(chunks, length)
    finally:
        # Only the head is read: release the rest of the file or object.
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _apply_changes(
    rt: Runtime, claim: Claim, image_id: str, changes: dict[str, Any], props: dict[str, str]
) -> None:
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        if image is None or image.deleted:
            raise ImportFailed(f"Image {image_id} was deleted during its import.")
        for key in ("disk_format", "container_format", "virtual_size"):
            if key in changes:
                setattr(image, key, changes[key])
        now = utcnow()
        existing = {p.name: p for p in image.properties if not p.deleted}
        for key, value in props.items():
            if key in existing:
                existing[key].value = value
            else:
                image.properties.append(
                    ImageProperty(
                        name=key, value=value, created_at=now, updated_at=now, deleted=False
                    )
                )
        image.updated_at = now


async def _fail(rt: Runtime, claim: Claim, image_id: Any, message: str) -> None:
    reverted: list[ImageRecord] = []

    def record() -> TaskRecord:
        with rt.db.transaction() as session:
            if isinstance(image_id, str):
                image = session.get(Image, image_id)
                if image is not None and not image.deleted:
                    was_importing = image.status == "importing"
                    # Back to queued (copy-image: unchanged), lock released, stores failed.
                    to_stores.record_failure(rt, claim, image)
                    if was_importing or to_stores.is_copy(claim):
                        reverted.append(ImageRecord.of(image))
            return queue.finish(rt, session, claim, "failure", message=message)

    try:
        finished = await run_in_threadpool(record)
    except LeaseLost:
        return
    for queued in reverted:
        rt.notifier.info("image.update", payloads.image(queued))
    rt.notifier.info("task.failure", payloads.task(finished))
    if isinstance(image_id, str):
        await run_in_threadpool(rt.stores.staging.discard, image_id)
    LOG.info("Import task %s failed: %s", claim.task_id, message)
