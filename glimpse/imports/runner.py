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
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from glimpse.data.pipeline import PipelineResult, SizeMismatch, iter_store, store_stream
from glimpse.db.models import Image, ImageLocation, ImageProperty, utcnow
from glimpse.imports import queue, web_download
from glimpse.imports.queue import Claim, LeaseLost
from glimpse.notifications import payloads
from glimpse.runtime import Runtime
from glimpse.services import image_data
from glimpse.services.imports import IMPORT_TASK_PROPERTY
from glimpse.services.records import ImageRecord
from glimpse.services.tasks import TaskRecord
from glimpse.store.base import StoreDriver
from glimpse.store.errors import StoreConflict, StoreError, StoreNotFound

LOG = logging.getLogger(__name__)
FAILED_IMPORT_PROPERTY = "os_glance_failed_import"
IMPORTING_TO_PROPERTY = "os_glance_importing_to_stores"


class ImportFailed(Exception):
    """The import cannot succeed; the message is shown to the user in the task."""


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
    current = asyncio.current_task()
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(queue.renew, rt, claim, progress.done, progress.total)
        except LeaseLost:
            LOG.error("Lost the lease of task %s", claim.task_id)
            raise
        except Exception:
            LOG.warning("Could not renew the lease of task %s", claim.task_id, exc_info=True)
        del current


async def _run(rt: Runtime, claim: Claim, progress: _Progress) -> None:
    image_id = claim.input.get("image_id")
    if claim.attempts > int(rt.conf.worker.max_attempts):
        await _fail(rt, claim, image_id, "The import was interrupted too many times (its worker "
                    "stopped during each attempt); try importing again.")
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
    from glimpse.services import tasks as task_service  # noqa: F401  (documents the link)

    properties = dict(claim.input.get("image_properties") or {})
    with rt.db.transaction() as session:
        from glimpse.db.models import Task

        task = session.get(Task, claim.task_id)
        assert task is not None
        if task.image_id:
            return task.image_id
        import uuid

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
            ImageProperty(name=str(k), value=str(v), created_at=now, updated_at=now,
                          deleted=False)
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
    await run_in_threadpool(_load, rt, image_id)
    request = claim.input.get("import_req") or {}
    method = request.get("method") or {}
    name = method.get("name") if claim.task_type != "import" else "web-download"
    staging = rt.stores.staging
    staged_uri = staging.uri_for(image_id)
    if name == "web-download":
        uri = method.get("uri") if claim.task_type != "import" else claim.input.get("import_from")
        await _download_to_staging(rt, claim, image_id, str(uri), method.get("decompress"),
                                   progress)
    elif name == "glance-direct":
        try:
            size = await run_in_threadpool(staging.stat, staged_uri)
        except StoreNotFound:
            raise ImportFailed("The staged data of the image is missing; stage it again.") from None
        progress.total = size
    else:
        raise ImportFailed(f"Import method {name!r} is not supported.")

    await run_in_threadpool(_prepare_staged, rt, claim, image_id)
    store_id = claim.input.get("backend")
    driver = rt.stores.get(store_id) if store_id else rt.stores.default
    if driver is None:
        raise ImportFailed(f"Store {store_id!r} is not configured.")
    result = await _copy_to_store(rt, claim, image_id, driver, progress)
    expected = method.get("expected_hash")
    if isinstance(expected, dict):
        algo = expected.get("algorithm")
        actual = result.checksum if algo == "md5" else result.os_hash_value
        if str(expected.get("value", "")).lower() != actual:
            await run_in_threadpool(_discard, driver, result.stored.uri)
            raise ImportFailed(
                f"The {algo} digest of the imported data is {actual}, not the expected "
                f"{expected.get('value')}."
            )
    try:
        await run_in_threadpool(_activate, rt, claim, image_id, driver, result)
    except BaseException:
        await run_in_threadpool(_discard, driver, result.stored.uri)
        raise
    await run_in_threadpool(_discard, staging, staged_uri)


async def _download_to_staging(
    rt: Runtime, claim: Claim, image_id: str, uri: str, decompress: str | None,
    progress: _Progress,
) -> None:
    staging = rt.stores.staging
    # A previous attempt may have left a complete download behind; fetch again.
    await run_in_threadpool(_discard, staging, staging.uri_for(image_id))
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
            counted(), writer, hash_algo="sha256", size_limit=cap, expected_size=None,
            on_limit=lambda limit: ImportFailed(
                f"The image at {uri} is larger than the size cap of {limit} bytes."
            ),
        )
    except StoreError as exc:
        raise ImportFailed(f"The staging area failed: {exc}") from exc
    finally:
        await source.aclose()


def _prepare_staged(rt: Runtime, claim: Claim, image_id: str) -> None:
    """Inspect the staged file and run the configured plugins on it."""
    from glimpse.imports import inspection, plugins

    staging = rt.stores.staging
    path = staging.local_path(staging.uri_for(image_id))
    assert path is not None
    image = _load(rt, image_id)
    loaded = plugins.load_plugins(rt.conf)
    names = [p.name for p in loaded]
    changes: dict[str, Any] = {}
    props: dict[str, str] = {}
    if "image_conversion" not in names:
        try:
            found = inspection.inspect_file(
                path,
                image["disk_format"],
                require_match=bool(rt.conf.image_format.require_image_format_match),
                container_format=image["container_format"],
                vmdk_allowed_types=list(rt.conf.image_format.vmdk_allowed_types),
                gpt_nonfatal_checks=list(rt.conf.image_format.gpt_safety_checks_nonfatal),
            )
        except inspection.UnsafeImage as exc:
            raise ImportFailed(f"The image data was refused: {exc}") from exc
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
        if output.staged_path != path:
            os.replace(output.staged_path, path)
        changes.update(output.image_changes)
        props.update(output.property_changes)
        image.update({k: v for k, v in output.image_changes.items()})
        image["properties"].update(output.property_changes)
    if changes or props:
        _apply_changes(rt, claim, image_id, changes, props)


def _apply_changes(rt: Runtime, claim: Claim, image_id: str, changes: dict[str, Any],
                   props: dict[str, str]) -> None:
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
                image.properties.append(ImageProperty(
                    name=key, value=value, created_at=now, updated_at=now, deleted=False))
        image.updated_at = now


async def _copy_to_store(rt: Runtime, claim: Claim, image_id: str, driver: StoreDriver,
                         progress: _Progress) -> PipelineResult:
    staging = rt.stores.staging
    staged_uri = staging.uri_for(image_id)

    def limits() -> tuple[int | None, Any, int]:
        with rt.db.transaction() as session:
            image = session.get(Image, image_id)
            assert image is not None
            found = image_data.storage_limits(rt, session, image)
            record = ImageRecord.of(image)
        rt.notifier.info("image.prepare", payloads.image(record))
        return found

    try:
        size_limit, on_limit, _quota = await run_in_threadpool(limits)
    except Exception as exc:
        raise ImportFailed(str(exc)) from exc
    writer = await _begin_write(driver, image_id)
    body = await iter_store(staging, staged_uri)
    progress.done = 0
    progress.total = await run_in_threadpool(staging.stat, staged_uri)

    async def counted() -> AsyncIterator[bytes]:
        async for chunk in body:
            progress.done += len(chunk)
            yield chunk

    try:
        return await store_stream(
            counted(), writer, hash_algo=str(rt.conf.hashing_algorithm), size_limit=size_limit,
            expected_size=None, on_limit=on_limit,
        )
    except SizeMismatch as exc:
        raise ImportFailed(str(exc)) from exc
    except StoreError as exc:
        raise ImportFailed(f"Writing to store {driver.store_id} failed: {exc}") from exc
    except Exception as exc:
        message = getattr(exc, "message", None)
        if message:
            raise ImportFailed(message) from exc
        raise


async def _begin_write(driver: StoreDriver, image_id: str) -> Any:
    try:
        return await run_in_threadpool(driver.begin_write, image_id)
    except StoreConflict:
        # Data an earlier attempt wrote but never activated: no location refers to it.
        uri_for = getattr(driver, "uri_for", None)
        if uri_for is None:
            raise ImportFailed(
                f"Store {driver.store_id} already holds data for this image."
            ) from None
        await run_in_threadpool(_discard, driver, uri_for(image_id))
        return await run_in_threadpool(driver.begin_write, image_id)


def _activate(rt: Runtime, claim: Claim, image_id: str, driver: StoreDriver,
              result: PipelineResult) -> None:
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        if image is None or image.deleted or image.status != "importing":
            queue.finish(rt, session, claim, "failure",
                         message=f"Image {image_id} was deleted during its import.")
            raise ImportFailed(f"Image {image_id} was deleted during its import.")
        now = utcnow()
        image.status = "active"
        image.size = result.size
        if image.virtual_size is None and image.disk_format in ("raw", "iso"):
            image.virtual_size = result.size
        image.checksum = result.checksum
        image.os_hash_algo = result.os_hash_algo
        image.os_hash_value = result.os_hash_value
        image.updated_at = now
        metadata = dict(result.stored.metadata)
        metadata.setdefault("store", driver.store_id)
        image.locations.append(ImageLocation(
            value=result.stored.uri, meta_data=json.dumps(metadata), status="active",
            position=len(image.locations), created_at=now, updated_at=now, deleted=False))
        for prop in list(image.properties):
            if prop.name in (IMPORT_TASK_PROPERTY, IMPORTING_TO_PROPERTY, FAILED_IMPORT_PROPERTY):
                image.properties.remove(prop)
        finished = queue.finish(rt, session, claim, "success", result={"image_id": image_id})
        record = ImageRecord.of(image)
    for event_type in ("image.upload", "image.activate", "image.update"):
        rt.notifier.info(event_type, payloads.image(record))
    rt.notifier.info("task.success", payloads.task(finished))


def _discard(driver: StoreDriver, uri: str) -> None:
    try:
        driver.delete(uri)
    except StoreNotFound:
        pass
    except StoreError:
        LOG.warning("Could not remove %s", uri, exc_info=True)


async def _fail(rt: Runtime, claim: Claim, image_id: Any, message: str) -> None:
    reverted: list[ImageRecord] = []

    def record() -> TaskRecord:
        with rt.db.transaction() as session:
            if isinstance(image_id, str):
                image = session.get(Image, image_id)
                if image is not None and not image.deleted and image.status == "importing":
                    image.status = "queued"
                    image.size = None
                    image.virtual_size = None
                    image.updated_at = utcnow()
                    store = claim.input.get("backend") or rt.stores.default_id
                    for prop in list(image.properties):
                        if prop.name in (IMPORT_TASK_PROPERTY, IMPORTING_TO_PROPERTY):
                            image.properties.remove(prop)
                    now = utcnow()
                    failed = [p for p in image.properties if p.name == FAILED_IMPORT_PROPERTY]
                    if failed:
                        failed[0].value = store
                    else:
                        image.properties.append(ImageProperty(
                            name=FAILED_IMPORT_PROPERTY, value=store, created_at=now,
                            updated_at=now, deleted=False))
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
        staging = rt.stores.staging
        await run_in_threadpool(_discard, staging, staging.uri_for(image_id))
    LOG.info("Import task %s failed: %s", claim.task_id, message)
