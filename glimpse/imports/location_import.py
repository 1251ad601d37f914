"""Running a ``location_import`` task (``POST /v2/images/{id}/locations``, Images API 2.17)
in a glimpse-worker.

1. The location is checked as a PATCH-added one is (a store reads it, it holds data;
   http(s) hosts must resolve to addresses ``[import_filtering_opts]`` allows) and
   attached to the queued image, which takes its size.
2. Without ``do_secure_hash`` the image turns active at once, with the
   ``validation_data`` (if any) as its hash, unchecked.
3. With it, the data is read once through the store driver and hashed by the upload
   pipeline (:func:`~glimpse.data.pipeline.digest_stream`), up to ``http_retries``
   times. Given ``validation_data``, the image stays ``importing`` until the hash
   matches, then turns active; a mismatch or unreadable data fails the task and puts
   the image back to ``queued`` without the location (its data, which Glimpse did not
   write, is left alone). Without it, the image is active from step 1, as in Glance,
   and gets its checksum and hash when they are known; data that cannot be read then
   leaves it active without them.
4. Deleting the image cancels the task: the worker checks every ``poll_seconds``.

A retried task (its worker died) starts again from step 1, finding the location
already attached. Messages and logs name the location only in its public form.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import urllib.parse
from typing import Any

from starlette.concurrency import run_in_threadpool

from glimpse import errors
from glimpse.data.pipeline import PipelineResult, SizeMismatch, digest_stream, iter_store
from glimpse.db.models import Image, ImageLocation, utcnow
from glimpse.imports import queue
from glimpse.imports.errors import ImportFailed
from glimpse.imports.queue import Claim
from glimpse.imports.to_stores import Progress
from glimpse.notifications import payloads
from glimpse.runtime import Runtime
from glimpse.services import locations
from glimpse.services.imports import IMPORT_TASK_PROPERTY
from glimpse.services.records import ImageRecord
from glimpse.services.tasks import LOCATION_URL_INPUT, TaskRecord
from glimpse.store.base import StoreDriver
from glimpse.store.errors import StoreError

LOG = logging.getLogger(__name__)


class _Canceled(Exception):
    """The image was deleted (or another operation took it over) while the task ran."""


@dataclasses.dataclass(frozen=True)
class _Plan:
    image_id: str
    url: str
    public: str
    driver: StoreDriver
    size: int
    hash_algo: str
    #: ``validation_data``, empty when none was given.
    validation: dict[str, str]


async def run(rt: Runtime, claim: Claim, progress: Progress) -> None:
    """Run a claimed ``location_import`` task to its end (success or failure)."""
    image_id = str(claim.input.get("image_id"))
    url = str(claim.input.get(LOCATION_URL_INPUT) or "")
    try:
        if claim.attempts > int(rt.conf.worker.max_attempts):
            raise ImportFailed(
                "Adding the location was interrupted too many times (its worker stopped "
                "during each attempt); add it again."
            )
        # Nothing to fetch for an image deleted (or taken over) while the task waited.
        await run_in_threadpool(_ensure_held, rt, claim, image_id)
        plan = await _check(rt, claim, image_id, url)
        hashing = await run_in_threadpool(_attach, rt, claim, plan)
        if not hashing:
            return
        progress.total = plan.size
        try:
            digests = await _hash(rt, claim, plan, progress)
        except ImportFailed as exc:
            if plan.validation:
                raise
            # Active already, as in Glance: it stays so, without checksum and hash.
            await run_in_threadpool(_unhashed, rt, claim, plan, str(exc))
            return
        await run_in_threadpool(_record, rt, claim, plan, digests)
    except queue.LeaseLost:
        raise
    except _Canceled as exc:
        await run_in_threadpool(_fail, rt, claim, image_id, url, str(exc))
    except ImportFailed as exc:
        await run_in_threadpool(_fail, rt, claim, image_id, url, _scrub(str(exc), url))
    except Exception as exc:
        message = _scrub(str(exc), url)
        LOG.error(
            "Location import task %s failed: %s: %s", claim.task_id, type(exc).__name__, message
        )
        await run_in_threadpool(
            _fail, rt, claim, image_id, url, f"Adding the location failed: {message}"
        )


# --- 1. check and attach ---------------------------------------------------------------


async def _check(rt: Runtime, claim: Claim, image_id: str, url: str) -> _Plan:
    """The location's store and size, once it passed every check that needs the network."""
    public = rt.stores.public_uri(url)
    # For http(s): the filter, then the store's stat checks what the host resolves to
    # (and every redirect) before it connects.
    try:
        driver, size = await run_in_threadpool(locations.check_location, rt, url)
    except errors.GlimpseError as exc:
        raise ImportFailed(exc.message) from None
    validation = {str(k): str(v) for k, v in (claim.input.get("validation_data") or {}).items()}
    algo = validation.get("os_hash_algo") or str(rt.conf.hashing_algorithm)
    return _Plan(image_id, url, public, driver, size, algo, validation)


def _attach(rt: Runtime, claim: Claim, plan: _Plan) -> bool:
    """Attach the location (once); return whether its data is to be hashed now.

    Without ``do_secure_hash`` the task ends here.
    """
    secure = bool(rt.conf.do_secure_hash)
    finished: TaskRecord | None = None
    changed = False
    with rt.db.transaction() as session:
        image = _held_image(session, claim, plan.image_id)
        current = locations.live(image)
        if not any(location.value == plan.url for location in current):
            if image.status != "queued":
                raise ImportFailed(
                    f"It's not allowed to add locations if image status is {image.status}."
                )
            try:
                locations.check_location_quota(rt, len(current) + 1)
                locations.check_storage_quota(rt, image, plan.size, len(current) + 1)
            except errors.GlimpseError as exc:
                raise ImportFailed(exc.message) from None
            now = utcnow()
            metadata = {"store": plan.driver.store_id} if rt.stores.multi else {}
            image.locations.append(
                ImageLocation(
                    value=plan.url,
                    meta_data=json.dumps(metadata),
                    status="active",
                    position=len(current),
                    created_at=now,
                    updated_at=now,
                    deleted=False,
                )
            )
            if image.size is None:
                image.size = plan.size
            if secure:
                image.os_hash_algo = plan.hash_algo
                image.status = "importing" if plan.validation else "active"
            else:
                if plan.validation:
                    image.os_hash_algo = plan.validation["os_hash_algo"]
                    image.os_hash_value = plan.validation["os_hash_value"]
                image.status = "active"
            image.updated_at = now
            changed = True
        if not secure:
            _release_lock(image, claim)
            finished = queue.finish(rt, session, claim, "success", result=_result(plan))
        record = ImageRecord.of(image)
    if changed:
        rt.notifier.info("image.update", payloads.image(record))
    if finished is not None:
        rt.notifier.info("task.success", payloads.task(finished))
        LOG.info("Location import task %s added %s", claim.task_id, plan.public)
    return finished is None


# --- 2. hash ---------------------------------------------------------------------------


async def _hash(rt: Runtime, claim: Claim, plan: _Plan, progress: Progress) -> PipelineResult:
    """The location's digests, read through its store driver; ImportFailed after
    ``http_retries`` failed reads, _Canceled as soon as the image is deleted."""
    attempts = max(1, int(rt.conf.http_retries))
    failure = ""
    for attempt in range(1, attempts + 1):
        progress.done = 0
        try:
            return await _hash_once(rt, claim, plan, progress)
        except (StoreError, SizeMismatch) as exc:
            failure = _scrub(str(exc), plan.url)
            LOG.warning(
                "Reading %s to hash it failed (attempt %d of %d): %s",
                plan.public,
                attempt,
                attempts,
                failure,
            )
        if attempt < attempts:
            await asyncio.sleep(min(attempt, 5))
    raise ImportFailed(f"Hash calculation failed for image {plan.image_id} data: {failure}")


async def _hash_once(rt: Runtime, claim: Claim, plan: _Plan, progress: Progress) -> PipelineResult:
    chunks = await iter_store(plan.driver, plan.url)

    async def counted() -> Any:
        async for chunk in chunks:
            progress.done += len(chunk)
            yield chunk

    hashing = asyncio.ensure_future(
        digest_stream(counted(), hash_algo=plan.hash_algo, expected_size=plan.size)
    )
    watch = asyncio.ensure_future(_watch(rt, claim, plan.image_id))
    try:
        await asyncio.wait({hashing, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (hashing, watch):
            if not future.done():
                future.cancel()
                with contextlib.suppress(BaseException):
                    await future
        await chunks.aclose()
    if watch.done() and not watch.cancelled():
        canceled = watch.exception()
        if canceled is not None:
            raise canceled
    return hashing.result()


async def _watch(rt: Runtime, claim: Claim, image_id: str) -> None:
    """Raise _Canceled once the image is deleted or no longer held by the task."""
    interval = float(rt.conf.worker.poll_seconds)
    while True:
        await asyncio.sleep(interval)
        if not await run_in_threadpool(_still_held, rt, claim, image_id):
            raise _Canceled(
                f"Hash calculation for image {image_id} has been canceled: the image was deleted."
            )


def _still_held(rt: Runtime, claim: Claim, image_id: str) -> bool:
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        return image is not None and not image.deleted and _holds(image, claim)


# --- 3. record -------------------------------------------------------------------------


def _record(rt: Runtime, claim: Claim, plan: _Plan, digests: PipelineResult) -> None:
    """Verify the digests against ``validation_data`` and activate, or fail and revert."""
    expected = plan.validation.get("os_hash_value")
    with rt.db.transaction() as session:
        image = _held_image(session, claim, plan.image_id)
        if expected is not None and expected.lower() != digests.os_hash_value:
            message = (
                f"os_hash_value: ({expected}) not matched with actual os_hash_value: "
                f"({digests.os_hash_value})"
            )
            _revert(image, plan.url)
            _release_lock(image, claim)
            finished = queue.finish(rt, session, claim, "failure", message=message)
            event = "task.failure"
        else:
            image.checksum = digests.checksum
            image.os_hash_algo = digests.os_hash_algo
            image.os_hash_value = digests.os_hash_value
            image.status = "active"
            image.updated_at = utcnow()
            _release_lock(image, claim)
            finished = queue.finish(rt, session, claim, "success", result=_result(plan))
            event = "task.success"
        record = ImageRecord.of(image)
    rt.notifier.info("image.update", payloads.image(record))
    rt.notifier.info(event, payloads.task(finished))
    LOG.info("Location import task %s: %s (%s)", claim.task_id, finished.status, plan.public)


def _unhashed(rt: Runtime, claim: Claim, plan: _Plan, reason: str) -> None:
    """The image is active, but its data could not be hashed: it keeps no hash."""
    with rt.db.transaction() as session:
        image = _held_image(session, claim, plan.image_id)
        image.os_hash_algo = None
        image.updated_at = utcnow()
        _release_lock(image, claim)
        finished = queue.finish(
            rt,
            session,
            claim,
            "success",
            result=_result(plan),
            message=f"The location was added, but the image has no checksum or hash: {reason}",
        )
        record = ImageRecord.of(image)
    rt.notifier.info("image.update", payloads.image(record))
    rt.notifier.info("task.success", payloads.task(finished))
    LOG.warning("Location import task %s: %s", claim.task_id, reason)


def _fail(rt: Runtime, claim: Claim, image_id: str, url: str, message: str) -> None:
    """Fail the task; an image it still holds goes back to queued, without the location."""
    reverted: ImageRecord | None = None
    with rt.db.transaction() as session:
        image = session.get(Image, image_id)
        if image is not None and not image.deleted and _holds(image, claim):
            if image.status in ("queued", "importing"):
                _revert(image, url)
                reverted = ImageRecord.of(image)
            _release_lock(image, claim)
        finished = queue.finish(rt, session, claim, "failure", message=message)
    if reverted is not None:
        rt.notifier.info("image.update", payloads.image(reverted))
    rt.notifier.info("task.failure", payloads.task(finished))
    LOG.info("Location import task %s failed: %s", claim.task_id, message)


# --- the image -------------------------------------------------------------------------


def _held_image(session: Any, claim: Claim, image_id: str) -> Image:
    """The image, if it still exists and the task still holds its import lock."""
    image = session.get(Image, image_id)
    if image is None or image.deleted:
        raise _Canceled(f"Image {image_id} was deleted; the location was not added.")
    if not _holds(image, claim):
        raise ImportFailed(
            f"Another operation on image {image_id} took it over; the location was not added."
        )
    return image


def _ensure_held(rt: Runtime, claim: Claim, image_id: str) -> None:
    with rt.db.transaction() as session:
        _held_image(session, claim, image_id)


def _holds(image: Image, claim: Claim) -> bool:
    return any(
        prop.name == IMPORT_TASK_PROPERTY and prop.value == claim.task_id and not prop.deleted
        for prop in image.properties
    )


def _release_lock(image: Image, claim: Claim) -> None:
    for prop in list(image.properties):
        if prop.name == IMPORT_TASK_PROPERTY and prop.value == claim.task_id:
            image.properties.remove(prop)


def _revert(image: Image, url: str) -> None:
    """Back to queued, without the location the task attached (its data is not ours)."""
    now = utcnow()
    for location in locations.live(image):
        if location.value == url:
            location.deleted = True
            location.deleted_at = now
            location.status = "deleted"
            location.updated_at = now
    for position, location in enumerate(locations.live(image)):
        location.position = position
    image.status = "queued"
    image.size = None
    image.checksum = None
    image.os_hash_algo = None
    image.os_hash_value = None
    image.updated_at = now


def _result(plan: _Plan) -> dict[str, Any]:
    return {"image_id": plan.image_id}


def _scrub(text: str, url: str) -> str:
    """``text`` without the credentials ``url`` carries (a library may quote the URL)."""
    userinfo = urllib.parse.urlsplit(url).netloc.rpartition("@")[0] if url else ""
    if not userinfo:
        return text
    for secret in {userinfo, urllib.parse.unquote(userinfo)}:
        text = text.replace(secret + "@", "").replace(secret, "***")
    return text
