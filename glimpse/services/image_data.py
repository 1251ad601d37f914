"""Image data: upload (queued → saving → active), download with ranges, and crash recovery.

The bytes go through :func:`glimpse.data.pipeline.store_stream` once: size limits,
both digests and the store write happen in the same pass. The image turns
``active`` only after the store has made the data durable; any failure puts it
back to ``queued`` with no data kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from sqlalchemy import delete as sql_delete
from sqlalchemy import select, update
from starlette.concurrency import run_in_threadpool

from glimpse import errors, node
from glimpse.context import RequestContext
from glimpse.data.pipeline import PipelineResult, SizeMismatch, store_stream
from glimpse.db.models import Image, ImageLocation, ImageUpload, utcnow
from glimpse.imports.inspection import StreamInspector, UnsafeImage
from glimpse.notifications import payloads
from glimpse.runtime import Runtime
from glimpse.services import access
from glimpse.services.quotas import parse_storage_quota, storage_used
from glimpse.services.records import ImageRecord
from glimpse.store.base import StoreDriver
from glimpse.store.errors import (
    StoreAuthError,
    StoreConflict,
    StoreError,
    StoreFull,
    StoreNotFound,
    StoreUnavailable,
    StoreUnsupported,
)
from glimpse.store.filesystem import FilesystemStore

LOG = logging.getLogger(__name__)
#: How often a write in progress proves it is alive, and when silence means it died.
HEARTBEAT_SECONDS = 15
STALE_AFTER_SECONDS = 120
NODE = node.NAME


@dataclasses.dataclass
class UploadRequest:
    """What the HTTP layer hands over for an upload."""

    chunks: AsyncIterator[bytes]
    content_length: int | None = None
    declared_size: int | None = None
    expected_hash: tuple[str, str] | None = None
    store_id: str | None = None


@dataclasses.dataclass
class _Limits:
    limit: int | None
    quota_limited: bool
    quota: int
    disk_format: str | None = None
    container_format: str | None = None


@dataclasses.dataclass
class DataSource:
    """Where a download reads from, and which bytes."""

    image: ImageRecord
    driver: StoreDriver
    uri: str
    offset: int
    length: int
    total: int
    partial: bool

    @property
    def local_path(self) -> str | None:
        return self.driver.local_path(self.uri)


def _limit_error(limits: _Limits, cap: int) -> Callable[[int], Exception]:
    def make(limit: int) -> Exception:
        if limits.quota_limited:
            return errors.RequestEntityTooLarge(
                f"Denying attempt to upload image because it exceeds the quota: The size of "
                f"the data will exceed the limit ({limits.quota} bytes)."
            )
        return errors.RequestEntityTooLarge(
            f"The incoming image is too large: the image size cap is {cap} bytes."
        )

    return make


async def upload(rt: Runtime, context: RequestContext, image_id: str, req: UploadRequest) -> None:
    """Receive an image's data and make it active, or leave it queued with nothing kept."""
    access.require_writable_context(context)
    hash_algo = str(rt.conf.hashing_algorithm)
    driver, limits = await run_in_threadpool(_begin, rt, context, image_id, req, "upload")
    try:
        result = await _receive(rt, driver, image_id, req, limits, hash_algo)
    except BaseException as exc:
        rt.notifier.error("image.upload", payloads.upload_failure(image_id, exc))
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_revert_to_queued, rt, image_id)
        raise
    try:
        _verify_expected_hash(result, req.expected_hash)
        await run_in_threadpool(_finish, rt, image_id, driver, result, limits.quota)
    except BaseException as exc:
        rt.notifier.error("image.upload", payloads.upload_failure(image_id, exc))
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_discard, driver, result.stored.uri)
            await run_in_threadpool(_revert_to_queued, rt, image_id)
        raise


async def stage(rt: Runtime, context: RequestContext, image_id: str, req: UploadRequest) -> None:
    """Receive data into the staging area for a later glance-direct import (queued → uploading)."""
    access.require_writable_context(context)
    if "glance-direct" not in rt.conf.enabled_import_methods:
        raise errors.NotFound("The glance-direct import method is not enabled.")
    hash_algo = str(rt.conf.hashing_algorithm)
    driver, limits = await run_in_threadpool(_begin, rt, context, image_id, req, "stage")
    try:
        result = await _receive(rt, driver, image_id, req, limits, hash_algo)
    except errors.Conflict as exc:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_revert_to_queued, rt, image_id)
        raise errors.Conflict(f"Image {image_id} already has data on staging.") from exc
    except BaseException:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_revert_to_queued, rt, image_id)
        raise
    try:
        await run_in_threadpool(_finish_stage, rt, image_id)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_discard, driver, result.stored.uri)
            await run_in_threadpool(_revert_to_queued, rt, image_id)
        raise


def _finish_stage(rt: Runtime, image_id: str) -> None:
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        if image is None or image.deleted or image.status != "uploading":
            raise errors.Gone(
                f"Image {image_id} could not be found after staging. The image may have been "
                "deleted meanwhile."
            )
        image.updated_at = utcnow()
        session.execute(sql_delete(ImageUpload).where(ImageUpload.image_id == image_id))


def discard_staged(rt: Runtime, image_id: str) -> None:
    """Remove an image's staged data, if any."""
    rt.stores.staging.discard(image_id)


async def _inspected(
    chunks: AsyncIterator[bytes], inspector: StreamInspector
) -> AsyncIterator[bytes]:
    """Feed the format inspector the head of the stream, until it has decided."""
    async for chunk in chunks:
        if not inspector.decided:
            inspector.feed(chunk)
        yield chunk


async def _receive(
    rt: Runtime,
    driver: StoreDriver,
    image_id: str,
    req: UploadRequest,
    limits: _Limits,
    hash_algo: str,
) -> PipelineResult:
    expected = req.content_length if req.content_length is not None else req.declared_size
    try:
        # The pipeline never writes more than `expected`, and commits only once it all came.
        writer = await run_in_threadpool(driver.begin_write, image_id, expected)
    except StoreConflict as exc:
        raise errors.Conflict(f"Image {image_id} already has data in the store.") from exc
    except StoreError as exc:
        raise store_failure(exc, _place(rt, driver)) from exc
    heartbeat = asyncio.ensure_future(_heartbeat(rt, image_id))
    inspector = StreamInspector() if driver is not rt.stores.staging else None
    chunks = _inspected(req.chunks, inspector) if inspector is not None else req.chunks
    try:
        result = await store_stream(
            chunks,
            writer,
            hash_algo=hash_algo,
            size_limit=limits.limit,
            expected_size=expected,
            on_limit=_limit_error(limits, int(rt.conf.image_size_cap)),
        )
    except SizeMismatch as exc:
        raise errors.BadRequest(
            f"The image data is {exc.received} bytes long but {exc.expected} were declared."
        ) from exc
    except StoreError as exc:
        raise store_failure(exc, _place(rt, driver)) from exc
    finally:
        heartbeat.cancel()
    if inspector is not None:
        try:
            found = inspector.finish(
                limits.disk_format,
                bool(rt.conf.image_format.require_image_format_match),
                container_format=limits.container_format,
                vmdk_allowed_types=list(rt.conf.image_format.vmdk_allowed_types),
                gpt_nonfatal_checks=list(rt.conf.image_format.gpt_safety_checks_nonfatal),
            )
        except UnsafeImage:
            await run_in_threadpool(_discard, driver, result.stored.uri)
            raise
        virtual_size = result.size if found.format == "raw" else found.virtual_size
        result = dataclasses.replace(result, virtual_size=virtual_size)
    if req.declared_size is not None and result.size != req.declared_size:
        await run_in_threadpool(_discard, driver, result.stored.uri)
        raise errors.BadRequest(
            f"The image data is {result.size} bytes long but x-openstack-image-size says "
            f"{req.declared_size}."
        )
    return result


def store_failure(exc: StoreError, place: str = "The image store") -> errors.GlimpseError:
    """The API error for a store failing a write or read: the store's fault, not the caller's.

    ``place`` names the store in the message ("The staging area" when staging).
    """
    if isinstance(exc, StoreFull):
        return errors.RequestEntityTooLarge(f"Image storage media is full: {exc}")
    if isinstance(exc, StoreUnavailable):
        return errors.ServiceUnavailable(f"{place} is unavailable: {exc}")
    if isinstance(exc, StoreAuthError):
        # The store's own credentials, which only an operator can fix.
        return errors.ServiceUnavailable(f"{place} refused its credentials: {exc}")
    if isinstance(exc, StoreUnsupported):
        return errors.Gone(f"Adding images to this store is disabled: {exc}")
    return errors.ServiceUnavailable(f"{place} failed: {exc}")


def _place(rt: Runtime, driver: StoreDriver) -> str:
    return "The staging area" if driver is rt.stores.staging else "The image store"


def _verify_expected_hash(result: PipelineResult, expected: tuple[str, str] | None) -> None:
    if expected is None:
        return
    algo, value = expected
    actual = result.checksum if algo == "md5" else result.os_hash_value
    if actual.lower() != value.lower():
        raise errors.BadRequest(
            f"The {algo} digest of the uploaded data is {actual}, not the expected {value}."
        )


async def _heartbeat(rt: Runtime, image_id: str) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        with contextlib.suppress(Exception):
            await run_in_threadpool(_beat, rt, image_id)


def _beat(rt: Runtime, image_id: str) -> None:
    with rt.db.transaction() as session:
        session.execute(
            update(ImageUpload)
            .where(ImageUpload.image_id == image_id)
            .values(heartbeat_at=utcnow())
        )


def _begin(
    rt: Runtime, context: RequestContext, image_id: str, req: UploadRequest, kind: str
) -> tuple[StoreDriver, _Limits]:
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id, for_update=True)
        access.enforce(rt.policy, context, "upload_image", image)
        access.require_modify(context, image, "You are not permitted to upload data to this image.")
        next_status = "saving" if kind == "upload" else "uploading"
        if image.status != "queued":
            raise errors.Conflict(
                f"Image status transition from {image.status} to {next_status} is not allowed"
            )
        if kind == "upload" and not (image.disk_format and image.container_format):
            raise errors.BadRequest(
                "Properties disk_format, container_format must be set prior to saving data."
            )
        driver = rt.stores.staging if kind == "stage" else _choose_store(rt, req.store_id)
        limits = _limits(rt, session, image)
        limits.disk_format = image.disk_format
        limits.container_format = image.container_format
        declared = req.content_length if req.content_length is not None else req.declared_size
        if declared is not None and limits.limit is not None and declared > limits.limit:
            raise _limit_error(limits, int(rt.conf.image_size_cap))(limits.limit)
        image.status = next_status
        image.updated_at = utcnow()
        now = utcnow()
        session.execute(sql_delete(ImageUpload).where(ImageUpload.image_id == image_id))
        session.add(
            ImageUpload(
                image_id=image_id,
                kind=kind,
                node=NODE,
                pid=os.getpid(),
                store_id=driver.store_id,
                started_at=now,
                heartbeat_at=now,
            )
        )
        record = ImageRecord.of(image)
    rt.notifier.info("image.update", payloads.image(record))
    if kind == "upload":
        rt.notifier.info("image.prepare", payloads.image(record))
    return driver, limits


def storage_limits(
    rt: Runtime, session: Any, image: Image
) -> tuple[int | None, Callable[[int], Exception], int]:
    """The most bytes ``image`` may receive, the error for crossing it, and the quota (0: none)."""
    limits = _limits(rt, session, image)
    return limits.limit, _limit_error(limits, int(rt.conf.image_size_cap)), limits.quota


def _choose_store(rt: Runtime, store_id: str | None) -> StoreDriver:
    if store_id is None:
        return rt.stores.default
    driver = rt.stores.get(store_id)
    if driver is None:
        raise errors.BadRequest(f"Store for identifier {store_id} not found")
    if driver.read_only:
        raise errors.Gone(f"Store {store_id} is read-only: adding images to it is disabled.")
    return driver


def _limits(rt: Runtime, session: Any, image: Image) -> _Limits:
    cap = int(rt.conf.image_size_cap)
    quota = parse_storage_quota(rt.conf.user_storage_quota)
    if not quota:
        return _Limits(cap, False, 0)
    remaining = quota - storage_used(session, image.owner, excluding=image.id)
    if remaining <= 0:
        raise errors.RequestEntityTooLarge(
            f"Denying attempt to upload image because it exceeds the quota: the owner already "
            f"uses its whole storage quota ({quota} bytes)."
        )
    if remaining < cap:
        return _Limits(remaining, True, quota)
    return _Limits(cap, False, quota)


def _finish(
    rt: Runtime, image_id: str, driver: StoreDriver, result: PipelineResult, quota: int
) -> None:
    with rt.db.transaction() as session:
        query = select(Image).where(Image.id == image_id)
        if session.get_bind().dialect.name != "sqlite":
            query = query.with_for_update()
        image = session.scalars(query).first()
        if image is None or image.deleted or image.status != "saving":
            raise errors.Gone(
                f"Image {image_id} could not be found after upload. The image may have been "
                "deleted during the upload."
            )
        if quota and storage_used(session, image.owner, excluding=image_id) + result.size > quota:
            raise errors.RequestEntityTooLarge(
                "Denying attempt to upload image because it exceeds the quota: The size of the "
                f"data will exceed the limit ({quota} bytes)."
            )
        now = utcnow()
        image.status = "active"
        image.size = result.size
        image.virtual_size = result.virtual_size
        image.checksum = result.checksum
        image.os_hash_algo = result.os_hash_algo
        image.os_hash_value = result.os_hash_value
        image.updated_at = now
        metadata = dict(result.stored.metadata)
        metadata.setdefault("store", driver.store_id)
        image.locations.append(
            ImageLocation(
                value=result.stored.uri,
                meta_data=json.dumps(metadata),
                status="active",
                position=len(image.locations),
                created_at=now,
                updated_at=now,
                deleted=False,
            )
        )
        session.execute(sql_delete(ImageUpload).where(ImageUpload.image_id == image_id))
        record = ImageRecord.of(image)
    for event_type in ("image.upload", "image.activate", "image.update"):
        rt.notifier.info(event_type, payloads.image(record))


def _discard(driver: StoreDriver, uri: str) -> None:
    try:
        driver.delete(uri)
    except StoreNotFound:
        pass
    except StoreError:
        LOG.warning(
            "Could not remove data at %s after a failed upload",
            driver.public_uri(uri),
            exc_info=True,
        )


def _revert_to_queued(rt: Runtime, image_id: str) -> None:
    reverted = None
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        if image is not None and not image.deleted and image.status in ("saving", "uploading"):
            image.status = "queued"
            image.size = None
            image.virtual_size = None
            image.updated_at = utcnow()
            reverted = ImageRecord.of(image)
        session.execute(sql_delete(ImageUpload).where(ImageUpload.image_id == image_id))
    if reverted is not None:
        rt.notifier.info("image.update", payloads.image(reverted))


def recover_interrupted_writes(
    rt: Runtime, stale_after: float = STALE_AFTER_SECONDS, *, at_startup: bool = False
) -> list[str]:
    """Undo writes whose process died: image back to ``queued``, temporaries removed.

    A write belongs to a dead process when it ran on this node under a pid that
    no longer exists, or when its heartbeat is older than ``stale_after``
    seconds (a crashed node). ``at_startup`` says this process has not started
    any write yet, so a row carrying its own pid is a previous incarnation's: a
    restarted container gets the same hostname and, often, the same pid.
    Returns the ids of the images put back.
    """
    cutoff = utcnow() - datetime.timedelta(seconds=stale_after)
    recovered = []
    # Images whose data, should the write have committed before the process died,
    # is referenced by no location: left in place it would refuse every new upload.
    orphaned = []
    written: dict[str, str | None] = {}  # image id: the store its write went to
    with rt.db.transaction() as session:
        for row in session.scalars(select(ImageUpload)).all():
            same_node_dead = row.node == NODE and (
                (at_startup and row.pid == os.getpid()) or not node.process_alive(row.pid)
            )
            if not (same_node_dead or row.heartbeat_at < cutoff):
                continue
            image = session.get(Image, row.image_id)
            if image is not None and not image.deleted and image.status in ("saving", "uploading"):
                image.status = "queued"
                image.size = None
                image.virtual_size = None
                image.updated_at = utcnow()
            if image is None or image.deleted or image.status == "queued":
                if not any(not location.deleted for location in (image.locations if image else [])):
                    orphaned.append(row.image_id)
            written[row.image_id] = row.store_id
            session.delete(row)
            recovered.append(row.image_id)
    staging = rt.stores.staging
    for image_id in recovered:
        for driver in rt.stores.drivers.values():
            if isinstance(driver, FilesystemStore):
                driver.discard_temporaries(image_id)
                if image_id in orphaned:
                    _discard(driver, driver.uri_for(image_id))
        # Wherever the staging area is (a folder or an object store): what a dead stage
        # left half-written, and the data of one that committed just before its process
        # died, which nothing would ever import.
        try:
            staging.discard_temporaries(image_id)
        except StoreError:
            LOG.warning("Could not remove what a dead stage of %s left", image_id, exc_info=True)
        if image_id in orphaned:
            staging.discard(image_id)
        LOG.warning("Image %s: an interrupted data write was undone; it is queued again", image_id)
    for image_id, store_id in written.items():
        _discard_remote_leftovers(rt, image_id, store_id, orphaned=image_id in orphaned)
    return recovered


def _discard_remote_leftovers(
    rt: Runtime, image_id: str, store_id: str | None, *, orphaned: bool
) -> None:
    """Remove what a dead write left in an object store: Swift segments, S3 multipart uploads.

    A store that fails now keeps them for ``glimpse-manage store purge_uploads``.
    """
    driver = rt.stores.get(store_id or "")
    if driver is None or isinstance(driver, FilesystemStore):
        return  # folders and the staging area were seen to above
    try:
        removed = driver.discard_temporaries(image_id)
    except StoreError as exc:
        LOG.warning(
            "Image %s: what its interrupted write left in store %s stays until "
            "'glimpse-manage store purge_uploads' removes it: %s",
            image_id,
            store_id,
            exc,
        )
        return
    if removed:
        LOG.warning("Image %s: removed %s left in store %s", image_id, ", ".join(removed), store_id)
    uri_for = getattr(driver, "uri_for", None)
    if orphaned and uri_for is not None:
        # A write that committed just before its process died: no location names it.
        _discard(driver, uri_for(image_id))


def open_download(
    rt: Runtime,
    context: RequestContext,
    image_id: str,
    range_header: str | None,
    content_range_header: str | None = None,
) -> DataSource | None:
    """Where to read the requested bytes from; None when the image has no data (204)."""
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id)
        access.enforce(rt.policy, context, "download_image", image)
        if image.status == "deactivated" and not context.is_admin:
            raise errors.Forbidden(
                "The requested image has been deactivated. Image data download is forbidden."
            )
        record = ImageRecord.of(image)
    locations = [loc for loc in record.locations if loc.status == "active"]
    # The heaviest store first; equal weights keep the image's location order.
    locations.sort(key=lambda loc: -rt.stores.weight(loc.metadata))
    if record.status not in ("active", "deactivated") or not locations:
        return None
    last_error: Exception | None = None
    for location in locations:
        try:
            driver = rt.stores.for_location(location.url, location.metadata)
            total = record.size
            if total is None or driver.local_path(location.url) is not None:
                # A local file is served by path once the headers are out, so its
                # presence is checked now, while the status can still say so.
                stored_size = driver.stat(location.url)
                total = stored_size if total is None else total
        except StoreError as exc:
            last_error = exc
            continue
        offset, length, partial = _parse_range(range_header, content_range_header, total)
        return DataSource(record, driver, location.url, offset, length, total, partial)
    if isinstance(last_error, StoreNotFound):
        # As Glance: data missing from every store reads as "no data", 204.
        LOG.warning("Image %s: no data at any of its locations: %s", image_id, last_error)
        return None
    raise errors.ServiceUnavailable(f"Image data is not reachable in any store: {last_error}")


def _parse_range(
    range_header: str | None, content_range_header: str | None, total: int
) -> tuple[int, int, bool]:
    if range_header:
        spec = range_header.strip()
        if "," in spec:
            raise errors.BadRequest("Multiple ranges are not supported.")
        unit, _, rng = spec.partition("=")
        start_text, dash, end_text = rng.strip().partition("-")
        if unit.strip().lower() != "bytes" or not dash:
            raise errors.RangeNotSatisfiable(headers={"Content-Range": f"bytes */{total}"})
        try:
            if start_text == "":
                suffix = int(end_text)
                if suffix <= 0 or total == 0:
                    raise ValueError
                start, end = max(total - suffix, 0), total - 1
            else:
                start = int(start_text)
                end = int(end_text) if end_text else total - 1
                if start < 0 or end < start:
                    raise ValueError
        except ValueError:
            raise errors.RangeNotSatisfiable(
                headers={"Content-Range": f"bytes */{total}"}
            ) from None
        if start >= total:
            raise errors.RangeNotSatisfiable(headers={"Content-Range": f"bytes */{total}"})
        end = min(end, total - 1)
        return start, end - start + 1, True
    if content_range_header:
        # Older clients asked for a range this way: "bytes a-b/*".
        try:
            unit, _, rest = content_range_header.strip().partition(" ")
            rng, _, _ = rest.partition("/")
            start_text, _, end_text = rng.partition("-")
            start, end = int(start_text), int(end_text)
            if unit != "bytes" or start < 0 or end < start or start >= total:
                raise ValueError
        except ValueError:
            raise errors.RangeNotSatisfiable(
                headers={"Content-Range": f"bytes */{total}"}
            ) from None
        end = min(end, total - 1)
        return start, end - start + 1, True
    return 0, total, False


def delete_data(rt: Runtime, locations: list[tuple[str, dict[str, Any]]]) -> None:
    """Remove stored data of a deleted image; missing data counts as removed."""
    for uri, metadata in locations:
        try:
            driver = rt.stores.for_location(uri, metadata)
            driver.delete(uri)
        except (StoreNotFound, StoreUnsupported):
            # Gone already, or external data (http) that is not ours to delete.
            continue
        except StoreError:
            LOG.warning(
                "Could not delete image data at %s; it is left orphaned", uri, exc_info=True
            )
