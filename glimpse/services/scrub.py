"""Scrubbing: removing the data of images deleted with ``delayed_delete``, or restoring them.

An image deleted with ``delayed_delete`` is ``pending_delete``: its row is soft-deleted
(the API answers 404), its properties, tags and members are soft-deleted at the same
``deleted_at``, and its locations stay, marked ``pending_delete``, so the data is still
in the stores. Once ``scrub_time`` seconds have passed a scrub pass deletes that data:

* data already missing from its store counts as deleted;
* a location the store refuses to delete (read-only stores such as http) is dropped
  and its data left in place, as Glance does;
* any other store error, or a location no configured store can reach, keeps the image
  ``pending_delete`` for the next pass; the locations that did succeed are ``deleted``.

When every location is gone the image becomes ``deleted``. Until then an operator may
:func:`restore` it, whole.

Each image is scrubbed, or restored, in one transaction that holds its row locked while
the store calls run, so a restore racing with a pass (or two scrubbers on different
nodes) never revives an image whose data is being deleted.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from glimpse import errors
from glimpse.db.models import (
    Image,
    ImageLocation,
    ImageMember,
    ImageProperty,
    ImageTag,
    utcnow,
)
from glimpse.runtime import Runtime
from glimpse.services import locations
from glimpse.store.errors import StoreError, StoreNotFound, StoreUnsupported

LOG = logging.getLogger(__name__)

PENDING_DELETE = "pending_delete"


class Outcome(enum.Enum):
    """What happened to one image in a pass."""

    SCRUBBED = "scrubbed"
    #: A store could not delete some data; the image stays pending_delete.
    KEPT = "kept"
    #: No longer due (restored, scrubbed by another scrubber, or the pass was stopped).
    SKIPPED = "skipped"
    #: The database failed while scrubbing it; it stays pending_delete.
    DB_ERROR = "db_error"


@dataclasses.dataclass
class PassResult:
    """The images a pass looked at, by outcome."""

    by_outcome: dict[Outcome, list[str]] = dataclasses.field(
        default_factory=lambda: {outcome: [] for outcome in Outcome}
    )

    @property
    def scrubbed(self) -> list[str]:
        return self.by_outcome[Outcome.SCRUBBED]

    @property
    def kept(self) -> list[str]:
        return self.by_outcome[Outcome.KEPT]

    @property
    def db_errors(self) -> list[str]:
        return self.by_outcome[Outcome.DB_ERROR]


@dataclasses.dataclass(frozen=True)
class PendingImage:
    """An image a pass would scrub, as ``--dry-run`` shows it."""

    image_id: str
    deleted_at: datetime.datetime
    #: Its pending_delete locations, without credentials.
    locations: tuple[str, ...]


def cutoff(rt: Runtime, now: datetime.datetime | None = None) -> datetime.datetime:
    """Images deleted at or before this instant are due (``deleted_at + scrub_time <= now``)."""
    return (now or utcnow()) - datetime.timedelta(seconds=int(rt.conf.scrub_time))


def due(rt: Runtime, now: datetime.datetime | None = None) -> list[str]:
    """Ids of the pending_delete images whose ``scrub_time`` has passed, oldest first.

    Database errors propagate: a pass that cannot read its work has failed.
    """
    with rt.db.transaction() as session:
        return list(session.scalars(_due(rt, now).with_only_columns(Image.id)))


def plan(rt: Runtime, now: datetime.datetime | None = None) -> list[PendingImage]:
    """What a pass would delete now; reads only."""
    with rt.db.transaction() as session:
        return [
            PendingImage(
                image_id=image.id,
                # Never None here: the query compares it.
                deleted_at=image.deleted_at or datetime.datetime.min,
                locations=tuple(
                    rt.stores.public_uri(loc.value, _metadata(loc)) for loc in _pending(image)
                ),
            )
            for image in session.scalars(_due(rt, now))
        ]


def _due(rt: Runtime, now: datetime.datetime | None) -> Select[Image]:
    return (
        select(Image)
        .where(Image.status == PENDING_DELETE, Image.deleted_at <= cutoff(rt, now))
        .order_by(Image.deleted_at, Image.id)
    )


def run_pass(
    rt: Runtime, now: datetime.datetime | None = None, stop: threading.Event | None = None
) -> PassResult:
    """Scrub every due image, ``scrub_pool_size`` at a time.

    Raises :class:`sqlalchemy.exc.SQLAlchemyError` when the due images cannot be read;
    a database error while scrubbing one image is logged and reported in the result.
    Setting ``stop`` skips the images not started yet.
    """
    now = now or utcnow()
    limit = cutoff(rt, now)
    # Locations removed from live images (PATCH, DELETE /v2/stores/...) first.
    locations.scrub_removed(rt, limit)
    image_ids = due(rt, now)
    result = PassResult()
    if not image_ids:
        return result

    def scrub_one(image_id: str) -> Outcome:
        if stop is not None and stop.is_set():
            return Outcome.SKIPPED
        try:
            return scrub_image(rt, image_id, limit)
        except SQLAlchemyError:
            LOG.exception(
                "Image %s: database error while scrubbing; it stays pending_delete", image_id
            )
            return Outcome.DB_ERROR

    workers = min(int(rt.conf.scrub_pool_size), len(image_ids))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scrub") as pool:
        for image_id, outcome in zip(image_ids, pool.map(scrub_one, image_ids), strict=True):
            result.by_outcome[outcome].append(image_id)
    return result


def scrub_image(rt: Runtime, image_id: str, deleted_before: datetime.datetime) -> Outcome:
    """Delete the pending data of one image, if it is still pending_delete and due."""
    with rt.db.transaction() as session:
        image = _locked(session, image_id)
        if (
            image is None
            or image.status != PENDING_DELETE
            or image.deleted_at is None
            or image.deleted_at > deleted_before
        ):
            return Outcome.SKIPPED
        now = utcnow()
        complete = True
        for loc in _pending(image):
            if _delete_data(rt, image_id, loc):
                loc.status = "deleted"
                loc.deleted = True
                loc.deleted_at = now
                loc.updated_at = now
            else:
                complete = False
        if not complete:
            return Outcome.KEPT
        # deleted_at stays the time of the user's delete: purge ages count from it.
        image.status = "deleted"
        image.updated_at = now
    LOG.info("Image %s scrubbed", image_id)
    return Outcome.SCRUBBED


def restore(rt: Runtime, image_id: str) -> None:
    """Bring a pending_delete image back to ``active``, whole.

    Glance revived the image row only. Here the properties, tags and members soft-deleted
    with the image (same ``deleted_at``) and its pending_delete locations come back too,
    so the restored image downloads as before. Locations a pass already scrubbed stay
    deleted.

    Raises :class:`~glimpse.errors.NotFound` for an unknown id and
    :class:`~glimpse.errors.Conflict` for an image that is not pending_delete.
    """
    with rt.db.transaction() as session:
        image = _locked(session, image_id)
        if image is None:
            raise errors.NotFound(f"Image {image_id} not found")
        if image.status != PENDING_DELETE:
            raise errors.Conflict(f"cannot restore the image from {image.status} to active")
        deleted_at = image.deleted_at
        now = utcnow()
        children: list[ImageProperty | ImageTag | ImageMember] = [
            *image.properties,
            *image.tags,
            *image.members,
        ]
        for child in children:
            if child.deleted and child.deleted_at == deleted_at:
                child.deleted = False
                child.deleted_at = None
                child.updated_at = now
        for loc in _pending(image):
            loc.status = "active"
            loc.updated_at = now
        image.status = "active"
        image.deleted = False
        image.deleted_at = None
        image.updated_at = now
    LOG.info("Image %s restored to active", image_id)


def _locked(session: Session, image_id: str) -> Image | None:
    query = select(Image).where(Image.id == image_id)
    # SQLite transactions begin IMMEDIATE: the whole database is already ours.
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    return session.scalars(query).first()


def _pending(image: Image) -> list[ImageLocation]:
    return [loc for loc in image.locations if loc.status == PENDING_DELETE and not loc.deleted]


def _metadata(loc: ImageLocation) -> dict[str, Any]:
    try:
        metadata = json.loads(loc.meta_data or "{}")
    except ValueError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _delete_data(rt: Runtime, image_id: str, loc: ImageLocation) -> bool:
    """Delete one location's data; False when it must be tried again next pass."""
    metadata = _metadata(loc)
    shown = rt.stores.public_uri(loc.value, metadata)
    try:
        driver = rt.stores.for_location(loc.value, metadata)
    except StoreNotFound:
        # Not "data missing": a store this scrubber lacks may still hold it.
        LOG.error(
            "Image %s: no configured store can delete %s; it stays pending_delete", image_id, shown
        )
        return False
    try:
        driver.delete(loc.value)
    except StoreNotFound:
        LOG.info("Image %s: no data at %s; counted as scrubbed", image_id, shown)
    except StoreUnsupported:
        LOG.info("Image %s: store %s cannot delete %s; data left", image_id, driver.store_id, shown)
    except StoreError as exc:
        LOG.warning(
            "Image %s: could not delete %s (%s); it stays pending_delete", image_id, shown, exc
        )
        return False
    except Exception:
        LOG.exception("Image %s: deleting %s failed; it stays pending_delete", image_id, shown)
        return False
    return True
