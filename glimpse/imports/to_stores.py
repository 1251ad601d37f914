"""Writing an import's data to each of its stores, in a glimpse-worker.

The data comes from the staging area: staged by the user (glance-direct), fetched
there (web-download), or, for ``copy-image``, copied there from a store already
holding the active image. Each target store then gets the staged bytes through the
single-pass pipeline, so every copy is hashed as it is written.

``all_stores_must_succeed`` (default true): every store must be written, or none
keeps the data; the image turns active, with all its new locations, at the end.
When false, a store that fails is recorded in ``os_glance_failed_import`` and the
import goes on; the image turns active with the first store written, and the
import fails only if no store could be written.

Whatever the outcome, no partial object is left in a store, and when an import
fails every store it did not write ends up in ``os_glance_failed_import``.
``copy-image`` never changes the status of the image it copies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from glimpse.data.pipeline import PipelineResult, SizeMismatch, iter_store, store_stream
from glimpse.db.models import Image, ImageLocation, utcnow
from glimpse.imports import queue
from glimpse.imports.errors import ImportFailed
from glimpse.imports.queue import Claim
from glimpse.notifications import payloads
from glimpse.runtime import Runtime
from glimpse.services import image_data, import_targets, locations
from glimpse.services.imports import IMPORT_TASK_PROPERTY
from glimpse.services.quotas import parse_storage_quota, storage_used
from glimpse.services.records import ImageRecord
from glimpse.store.base import StoreDriver, StoreWriter
from glimpse.store.errors import StoreConflict, StoreError, StoreNotFound

LOG = logging.getLogger(__name__)


class Progress(Protocol):
    done: int
    total: int | None


def is_copy(claim: Claim) -> bool:
    """Whether the task is a ``copy-image`` import."""
    method = (claim.input.get("import_req") or {}).get("method") or {}
    return bool(method.get("name") == import_targets.COPY_IMAGE)


def targets_of(rt: Runtime, claim: Claim) -> tuple[list[str], bool]:
    """The stores a task writes to, and whether all of them must succeed."""
    stores = claim.input.get("stores")
    if not isinstance(stores, list) or not stores:
        stores = [claim.input.get("backend") or rt.stores.default_id]
    return [str(s) for s in stores], bool(claim.input.get("all_stores_must_succeed", True))


async def import_staged(
    rt: Runtime,
    claim: Claim,
    image_id: str,
    progress: Progress,
    expected_hash: Any,
    source: tuple[StoreDriver, str],
) -> None:
    """Write the data at ``source`` (staged, or a worker's working copy of it) to every
    target store and activate the image."""
    await _write_all(rt, claim, image_id, progress, source, copy=False, expected_hash=expected_hash)


async def copy_image(rt: Runtime, claim: Claim, image_id: str, progress: Progress) -> None:
    """Copy an active image's data to more stores (``copy-image``)."""
    staging = rt.stores.staging
    source = (staging, staging.uri_for(image_id))
    try:
        await _stage_copy(rt, image_id, progress)
        await _write_all(rt, claim, image_id, progress, source, copy=True, expected_hash=None)
    finally:
        await run_in_threadpool(staging.discard, image_id)


def record_failure(rt: Runtime, claim: Claim, image: Image) -> None:
    """The task failed: an image being imported goes back to queued, the lock is
    released and every store not written is listed as failed."""
    was_importing = image.status == "importing"
    if was_importing:
        image.status = "queued"
        image.size = None
        image.virtual_size = None
        image.updated_at = utcnow()
    _release_lock(image, claim)
    if rt.stores.multi:
        importing = import_targets.split(
            import_targets.property_value(image, import_targets.IMPORTING_TO_PROPERTY)
        )
        for store_id in importing:
            import_targets.finished(image, store_id, succeeded=False)
        return
    if not was_importing:
        return
    # Single-store: the one store is recorded as failed.
    _drop_properties(image, import_targets.IMPORTING_TO_PROPERTY)
    stores, _ = targets_of(rt, claim)
    import_targets.set_property(image, import_targets.FAILED_IMPORT_PROPERTY, stores[0])


# --- the writes ----------------------------------------------------------------------


async def _write_all(
    rt: Runtime,
    claim: Claim,
    image_id: str,
    progress: Progress,
    source: tuple[StoreDriver, str],
    *,
    copy: bool,
    expected_hash: Any,
) -> None:
    stores, must_succeed = targets_of(rt, claim)
    written: list[tuple[StoreDriver, PipelineResult]] = []
    kept: list[PipelineResult] = []
    committed = 0
    failures: list[str] = []
    reference = await run_in_threadpool(_reference_digests, rt, image_id) if copy else None
    for store_id in stores:
        driver = rt.stores.get(store_id)
        try:
            if driver is None:
                raise ImportFailed(f"Store {store_id!r} is not configured.")
            result = await _write_one(rt, image_id, driver, progress, source, copy=copy)
        except ImportFailed as exc:
            LOG.warning("Import task %s: store %s failed: %s", claim.task_id, store_id, exc)
            failures.append(f"{store_id}: {exc}")
            if must_succeed:
                await _abandon(rt, image_id, written)
                raise ImportFailed(f"Writing to store {store_id} failed: {exc}") from exc
            await run_in_threadpool(_store_done, rt, image_id, store_id, False)
            continue
        assert driver is not None
        problem, fatal = _check_digests(result, reference, expected_hash, kept)
        if problem is not None:
            await run_in_threadpool(_discard, driver, result.stored.uri)
            if fatal or must_succeed:
                await _abandon(rt, image_id, written)
                raise ImportFailed(problem)
            failures.append(f"{store_id}: {problem}")
            await run_in_threadpool(_store_done, rt, image_id, store_id, False)
            continue
        kept.append(result)
        if must_succeed:
            written.append((driver, result))
            await run_in_threadpool(_store_done, rt, image_id, store_id, True)
            continue
        try:
            await run_in_threadpool(_add_locations, rt, image_id, [(driver, result)], copy)
        except BaseException:
            await run_in_threadpool(_discard, driver, result.stored.uri)
            raise
        committed += 1
    if must_succeed:
        try:
            await run_in_threadpool(_add_locations, rt, image_id, written, copy)
        except BaseException:
            await _abandon(rt, image_id, written)
            raise
        committed = len(written)
    if not committed:
        raise ImportFailed("No store could be written: " + "; ".join(failures))
    await run_in_threadpool(_complete, rt, claim, image_id)


async def _write_one(
    rt: Runtime,
    image_id: str,
    driver: StoreDriver,
    progress: Progress,
    source: tuple[StoreDriver, str],
    *,
    copy: bool,
) -> PipelineResult:
    """Stream the data at ``source`` into one store; ImportFailed with the reason otherwise."""
    source_driver, source_uri = source
    try:
        size_limit, on_limit = await run_in_threadpool(_limits, rt, image_id, copy)
    except ImportFailed:
        raise
    except Exception as exc:
        raise ImportFailed(str(getattr(exc, "message", exc))) from exc
    try:
        size = await run_in_threadpool(source_driver.stat, source_uri)
    except StoreError as exc:
        raise ImportFailed(f"The staged data cannot be read: {exc}") from exc
    # With its size, an object store streams the data rather than buffering it.
    writer = await _begin_write(rt, image_id, driver, size)
    try:
        progress.done = 0
        progress.total = size
        body = await iter_store(source_driver, source_uri)
    except BaseException as exc:
        await run_in_threadpool(writer.abort)
        if isinstance(exc, StoreError):
            raise ImportFailed(f"The staged data cannot be read: {exc}") from exc
        raise

    async def counted() -> AsyncIterator[bytes]:
        async for chunk in body:
            progress.done += len(chunk)
            yield chunk

    try:
        return await store_stream(
            counted(),
            writer,
            hash_algo=str(rt.conf.hashing_algorithm),
            size_limit=size_limit,
            expected_size=size,
            on_limit=on_limit,
        )
    except SizeMismatch as exc:
        raise ImportFailed(str(exc)) from exc
    except StoreError as exc:
        raise ImportFailed(image_data.store_failure(exc).message) from exc
    except Exception as exc:
        message = getattr(exc, "message", None)
        if message:
            raise ImportFailed(message) from exc
        raise


def _limits(rt: Runtime, image_id: str, copy: bool) -> tuple[int | None, Any]:
    """The size limit of one store write, announced with ``image.prepare``."""
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        if image is None or image.deleted:
            raise ImportFailed(f"Image {image_id} was deleted during its import.")
        record = ImageRecord.of(image)
        if not copy:
            size_limit, on_limit, _quota = image_data.storage_limits(rt, session, image)
        else:
            # A copy adds the image's size once more to what its owner stores.
            quota = parse_storage_quota(rt.conf.user_storage_quota)
            if quota and storage_used(session, image.owner) + (image.size or 0) > quota:
                raise ImportFailed(
                    f"Copying the image would exceed its owner's storage quota ({quota} bytes)."
                )
            size_limit = int(rt.conf.image_size_cap)

            def on_limit(limit: int) -> Exception:
                return ImportFailed(f"The image is larger than {limit} bytes.")

    rt.notifier.info("image.prepare", payloads.image(record))
    return size_limit, on_limit


async def _begin_write(rt: Runtime, image_id: str, driver: StoreDriver, size: int) -> StoreWriter:
    try:
        try:
            return await run_in_threadpool(driver.begin_write, image_id, size)
        except StoreConflict:
            # Data an earlier attempt wrote but never recorded; unless a location of the
            # image points at it, nobody can reach it.
            uri_for = getattr(driver, "uri_for", None)
            if uri_for is None or await run_in_threadpool(_referenced, rt, image_id, uri_for):
                raise ImportFailed(
                    f"Store {driver.store_id} already holds data for this image."
                ) from None
            await run_in_threadpool(_discard, driver, uri_for(image_id))
            return await run_in_threadpool(driver.begin_write, image_id, size)
    except StoreError as exc:
        raise ImportFailed(image_data.store_failure(exc).message) from exc


def _referenced(rt: Runtime, image_id: str, uri_for: Any) -> bool:
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        uri = uri_for(image_id)
        return image is not None and any(loc.value == uri for loc in image.locations)


def _reference_digests(rt: Runtime, image_id: str) -> dict[str, Any]:
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        if image is None or image.deleted:
            raise ImportFailed(f"Image {image_id} was deleted during its import.")
        return {
            "size": image.size,
            "checksum": image.checksum,
            "os_hash_algo": image.os_hash_algo,
            "os_hash_value": image.os_hash_value,
        }


def _check_digests(
    result: PipelineResult,
    reference: dict[str, Any] | None,
    expected_hash: Any,
    kept: list[PipelineResult],
) -> tuple[str | None, bool]:
    """Why a written copy cannot be kept, if so, and whether no other store could do better
    (the staged data is not what the user announced)."""
    if reference is not None:
        if reference["size"] is not None and result.size != reference["size"]:
            return f"The copy is {result.size} bytes, the image {reference['size']}.", False
        if reference["checksum"] and result.checksum != reference["checksum"]:
            return "The checksum of the copy differs from the image's.", False
        same_algo = reference["os_hash_algo"] == result.os_hash_algo
        if same_algo and reference["os_hash_value"] != result.os_hash_value:
            return "The os_hash_value of the copy differs from the image's.", False
        return None, False
    if isinstance(expected_hash, dict):
        algo = expected_hash.get("algorithm")
        actual = result.checksum if algo == "md5" else result.os_hash_value
        if str(expected_hash.get("value", "")).lower() != actual:
            message = (
                f"The {algo} digest of the imported data is {actual}, not the expected "
                f"{expected_hash.get('value')}."
            )
            return message, True
    if kept and kept[0].os_hash_value != result.os_hash_value:
        return "The data written differs from the data written to the first store.", False
    return None, False


# --- records -------------------------------------------------------------------------


def _store_done(rt: Runtime, image_id: str, store_id: str, succeeded: bool) -> None:
    if not rt.stores.multi:
        return
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        if image is not None and not image.deleted:
            import_targets.finished(image, store_id, succeeded=succeeded)


def _add_locations(
    rt: Runtime,
    image_id: str,
    written: list[tuple[StoreDriver, PipelineResult]],
    copy: bool,
) -> None:
    """Record written stores as locations; the first one activates an imported image."""
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        allowed = ("active", "deactivated") if copy else ("importing", "active")
        if image is None or image.deleted or image.status not in allowed:
            raise ImportFailed(f"Image {image_id} was deleted during its import.")
        now = utcnow()
        activated = image.status == "importing"
        if activated:
            result = written[0][1]
            image.status = "active"
            image.size = result.size
            if image.virtual_size is None and image.disk_format in ("raw", "iso"):
                image.virtual_size = result.size
            image.checksum = result.checksum
            image.os_hash_algo = result.os_hash_algo
            image.os_hash_value = result.os_hash_value
        position = len(locations.live(image))
        for driver, result in written:
            metadata = dict(result.stored.metadata)
            metadata.setdefault("store", driver.store_id)
            image.locations.append(
                ImageLocation(
                    value=result.stored.uri,
                    meta_data=json.dumps(metadata),
                    status="active",
                    position=position,
                    created_at=now,
                    updated_at=now,
                    deleted=False,
                )
            )
            position += 1
            if rt.stores.multi:
                import_targets.finished(image, driver.store_id, succeeded=True)
        image.updated_at = now
        record = ImageRecord.of(image)
    events = ("image.upload", "image.activate") if activated else ("image.upload",)
    for event_type in (*events, "image.update"):
        rt.notifier.info(event_type, payloads.image(record))


def _complete(rt: Runtime, claim: Claim, image_id: str) -> None:
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        if image is not None and not image.deleted:
            _release_lock(image, claim)
            if not rt.stores.multi:
                _drop_properties(
                    image,
                    import_targets.IMPORTING_TO_PROPERTY,
                    import_targets.FAILED_IMPORT_PROPERTY,
                )
        finished = queue.finish(rt, session, claim, "success", result={"image_id": image_id})
    rt.notifier.info("task.success", payloads.task(finished))


def _release_lock(image: Image, claim: Claim) -> None:
    for prop in list(image.properties):
        if prop.name == IMPORT_TASK_PROPERTY and prop.value == claim.task_id:
            image.properties.remove(prop)


def _drop_properties(image: Image, *names: str) -> None:
    for prop in list(image.properties):
        if prop.name in names:
            image.properties.remove(prop)


# --- copy-image source ---------------------------------------------------------------


async def _stage_copy(rt: Runtime, image_id: str, progress: Progress) -> None:
    """Copy the image's data from the first readable store into the staging area."""
    sources = await run_in_threadpool(_sources, rt, image_id)
    staging = rt.stores.staging
    await run_in_threadpool(staging.discard, image_id)
    last_error: Exception | None = None
    for driver, uri in sources:
        try:
            body = await iter_store(driver, uri)
        except StoreError as exc:
            last_error = exc
            continue
        progress.done = 0

        async def counted(chunks: AsyncIterator[bytes] = body) -> AsyncIterator[bytes]:
            async for chunk in chunks:
                progress.done += len(chunk)
                yield chunk

        try:
            writer = await run_in_threadpool(staging.begin_write, image_id)
        except StoreError as exc:
            # The staging area itself fails: another source would not help.
            await body.aclose()
            raise ImportFailed(image_data.store_failure(exc, "The staging area").message) from exc
        try:
            await store_stream(
                counted(),
                writer,
                hash_algo="md5",
                size_limit=int(rt.conf.image_size_cap),
                expected_size=None,
                on_limit=lambda limit: ImportFailed(f"The image is larger than {limit} bytes."),
            )
        except StoreError as exc:
            last_error = exc
            await run_in_threadpool(staging.discard, image_id)
            continue
        return
    raise ImportFailed(f"The image's data could not be read from any store: {last_error}")


def _sources(rt: Runtime, image_id: str) -> list[tuple[StoreDriver, str]]:
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        if image is None or image.deleted:
            raise ImportFailed(f"Image {image_id} was deleted before its copy ran.")
        if image.status != "active":
            raise ImportFailed(f"Image {image_id} is {image.status}; only active images copy.")
        found = []
        current = sorted(
            locations.live(image),
            key=lambda loc: -rt.stores.weight(locations.metadata_of(loc)),
        )
        for loc in current:
            try:
                driver = rt.stores.for_location(loc.value, locations.metadata_of(loc))
            except StoreNotFound:
                continue
            found.append((driver, loc.value))
    if not found:
        raise ImportFailed(f"Image {image_id} has no data in any configured store.")
    return found


# --- cleanup -------------------------------------------------------------------------


async def _abandon(
    rt: Runtime, image_id: str, written: list[tuple[StoreDriver, PipelineResult]]
) -> None:
    """The import fails: remove what it wrote, and count those stores as failed too."""
    for driver, result in written:
        await run_in_threadpool(_discard, driver, result.stored.uri)
        await run_in_threadpool(_store_done, rt, image_id, driver.store_id, False)
    written.clear()


def _discard(driver: StoreDriver, uri: str) -> None:
    try:
        driver.delete(uri)
    except StoreNotFound:
        pass
    except StoreError:
        LOG.warning("Could not remove %s", driver.public_uri(uri), exc_info=True)
