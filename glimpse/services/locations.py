"""Image locations: changed through JSON patch, and removed one store at a time.

With ``show_multiple_locations = True`` a PATCH may ``add /locations/N|-``,
``replace /locations`` and ``remove /locations/N`` (spec §5). Positions count the
image's live locations, in order. A location a user adds must be readable by a
configured store of a scheme users may set (never ``file``, ``filesystem`` or
``swift+config``) and hold data (its store reports a size above 0). An http(s)
location must pass web-download's filter (``[import_filtering_opts]``), as with
Images API 2.17 (:func:`check_filtering`); the http store checks every hop again,
redirects and resolved addresses included, whenever it reads.

Locations are compared and shown in their public form (credentials stripped, see
:meth:`~glimpse.store.registry.Stores.public_uri`), so a client can send back the
list it read. Removing a location deletes its data once the change is committed,
or, with ``delayed_delete``, leaves the data to the scrubber: the location is then
soft-deleted with status ``pending_delete`` until a scrub pass deletes the data.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import urllib.parse
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import object_session

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import Image, ImageLocation, utcnow
from glimpse.imports import web_download
from glimpse.runtime import Runtime
from glimpse.services import access
from glimpse.services.image_patch import PatchOperation
from glimpse.services.quotas import parse_storage_quota, storage_used
from glimpse.services.validation import check_text, check_url, quota_exceeded, storable_text
from glimpse.store.base import StoreDriver
from glimpse.store.errors import StoreError, StoreNotFound, StoreRefused, StoreUnsupported

LOG = logging.getLogger(__name__)
#: Schemes users may never set: they would expose files or credentials of the service.
RESTRICTED_SCHEMES = frozenset({"file", "filesystem", "swift+config"})
_VALIDATION_KEYS = ("checksum", "os_hash_algo", "os_hash_value")

#: Data to delete once the change is committed: (uri, metadata) of each removed location.
Doomed = list[tuple[str, dict[str, Any]]]


def live(image: Image) -> list[ImageLocation]:
    """The image's locations as users see and address them, in order."""
    found = [loc for loc in image.locations if not loc.deleted and loc.status == "active"]
    return sorted(found, key=lambda loc: loc.position)


def metadata_of(location: ImageLocation) -> dict[str, Any]:
    try:
        metadata = json.loads(location.meta_data or "{}")
    except ValueError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


def apply_operations(
    rt: Runtime, context: RequestContext, image: Image, operations: list[PatchOperation]
) -> Doomed:
    """Apply location operations, in order, to ``image`` (attached, row locked).

    Returns the data to delete after the transaction commits.
    """
    doomed: Doomed = []
    for operation in operations:
        if operation.op == "add":
            _add(rt, context, image, operation.path[1], operation.value)
        elif operation.op == "replace":
            _replace(rt, context, image, operation.value)
        else:
            doomed += _remove_at(rt, context, image, operation.path[1])
    # The loaded collection keeps its load order; responses list locations in it.
    image.locations.sort(key=lambda loc: (loc.deleted, loc.position))
    return doomed


def detach(rt: Runtime, image: Image, location: ImageLocation) -> Doomed:
    """Take ``location`` off ``image``; return its data to delete, unless delayed delete keeps it.

    With ``delayed_delete`` the row stays, soft-deleted with status ``pending_delete``,
    for the scrubber (:func:`glimpse.services.scrub.run_pass`).
    """
    now = utcnow()
    location.deleted = True
    location.deleted_at = now
    location.updated_at = now
    _renumber(live(image))
    if _shared(location):
        # Another live location (of this image or another one) holds the same data.
        location.status = "deleted"
        return []
    if rt.conf.delayed_delete:
        location.status = "pending_delete"
        return []
    location.status = "deleted"
    return [(location.value, metadata_of(location))]


def scrub_removed(rt: Runtime, deleted_before: datetime.datetime) -> list[str]:
    """Delete the data of locations :func:`detach` left to the scrubber, removed by then.

    Returns the public URIs scrubbed. Data a store cannot delete right now stays
    pending for the next pass; missing data, or a read-only store, counts as done.
    """
    scrubbed = []
    with rt.db.transaction() as session:
        query = select(ImageLocation).where(
            ImageLocation.deleted.is_(True),
            ImageLocation.status == "pending_delete",
            ImageLocation.deleted_at <= deleted_before,
        )
        for location in session.scalars(query).all():
            metadata = metadata_of(location)
            shown = rt.stores.public_uri(location.value, metadata)
            try:
                rt.stores.for_location(location.value, metadata).delete(location.value)
            except (StoreNotFound, StoreUnsupported):
                pass
            except StoreError as exc:
                LOG.warning("Could not delete removed location %s (%s); kept", shown, exc)
                continue
            location.status = "deleted"
            location.updated_at = utcnow()
            scrubbed.append(shown)
    return scrubbed


# --- add ---------------------------------------------------------------------------


def _add(rt: Runtime, context: RequestContext, image: Image, where: str, value: Any) -> None:
    access.enforce(rt.policy, context, "set_image_location", image)
    if image.status not in ("queued", "active"):
        raise errors.Conflict(
            f"It's not allowed to add locations if image status is {image.status}."
        )
    url, metadata = _parse_location(value)
    current = live(image)
    position = _position(where, len(current), for_add=True)
    if position is None:
        raise errors.BadRequest("Invalid position for adding a location.")
    check_location_quota(rt, len(current) + 1)
    validation = _validation_data(rt, image, [value])
    driver, size = check_location(rt, url)
    if rt.stores.multi:
        metadata["store"] = driver.store_id
    shown = rt.stores.public_uri(url, metadata)
    for existing in current:
        if (
            rt.stores.public_uri(existing.value, metadata_of(existing)) == shown
            and metadata_of(existing) == metadata
        ):
            raise errors.BadRequest(f"The location {shown} already exists")
    check_storage_quota(rt, image, size, len(current) + 1)
    now = utcnow()
    new = ImageLocation(
        value=url,
        meta_data=json.dumps(metadata),
        status="active",
        position=position,
        created_at=now,
        updated_at=now,
        deleted=False,
    )
    image.locations.append(new)
    current.insert(position, new)
    _renumber(current)
    _activate(image, size, validation)


# --- replace -----------------------------------------------------------------------


def _replace(rt: Runtime, context: RequestContext, image: Image, value: Any) -> None:
    if isinstance(value, list) and not value:
        raise errors.Forbidden("Cannot set locations to empty list.")
    if not isinstance(value, list):
        raise errors.BadRequest("Invalid locations: a list of locations is expected.")
    access.enforce(rt.policy, context, "set_image_location", image)
    if image.status not in ("queued", "active"):
        raise errors.Conflict(
            f"It's not allowed to replace locations if image status is {image.status}."
        )
    wanted = [_parse_location(item) for item in value]
    validation = _validation_data(rt, image, value)
    current = live(image)
    shown_now = sorted(rt.stores.public_uri(loc.value, metadata_of(loc)) for loc in current)
    shown_wanted = sorted(rt.stores.public_uri(url, metadata) for url, metadata in wanted)
    if current and shown_now != shown_wanted:
        raise errors.BadRequest(
            "Original locations is not empty: the new list must hold the same URLs "
            f"({', '.join(shown_now)}) in any order."
        )
    if current:
        _reorder(rt, image, current, wanted)
        return
    check_location_quota(rt, len(wanted))
    checked: list[tuple[str, dict[str, Any], int]] = []
    for url, metadata in wanted:
        driver, size = check_location(rt, url)
        if rt.stores.multi:
            metadata["store"] = driver.store_id
        checked.append((url, metadata, size))
    seen: set[tuple[str, str]] = set()
    for url, metadata, _size in checked:
        key = (rt.stores.public_uri(url, metadata), json.dumps(metadata, sort_keys=True))
        if key in seen:
            raise errors.BadRequest(f"The location {key[0]} already exists")
        seen.add(key)
    check_storage_quota(rt, image, checked[0][2], len(checked))
    now = utcnow()
    for position, (url, metadata, _size) in enumerate(checked):
        image.locations.append(
            ImageLocation(
                value=url,
                meta_data=json.dumps(metadata),
                status="active",
                position=position,
                created_at=now,
                updated_at=now,
                deleted=False,
            )
        )
    _activate(image, checked[0][2], validation)


def _reorder(
    rt: Runtime, image: Image, current: list[ImageLocation], wanted: list[tuple[str, Any]]
) -> None:
    """Same URLs: put them in the new order and take the new metadata (keeping the store)."""
    remaining = list(current)
    ordered: list[ImageLocation] = []
    now = utcnow()
    for url, metadata in wanted:
        shown = rt.stores.public_uri(url, metadata)
        match = next(
            loc for loc in remaining if rt.stores.public_uri(loc.value, metadata_of(loc)) == shown
        )
        remaining.remove(match)
        store = metadata_of(match).get("store")
        if rt.stores.multi and store is not None:
            metadata["store"] = store
        if metadata != metadata_of(match):
            match.meta_data = json.dumps(metadata)
            match.updated_at = now
        ordered.append(match)
    _renumber(ordered)


# --- remove ------------------------------------------------------------------------


def _remove_at(rt: Runtime, context: RequestContext, image: Image, where: str) -> Doomed:
    access.enforce(rt.policy, context, "delete_image_location", image)
    if image.status != "active":
        raise errors.Conflict(
            f"It's not allowed to remove locations if image status is {image.status}."
        )
    current = live(image)
    if len(current) == 1:
        raise errors.Forbidden("Cannot remove last location in the image.")
    position = _position(where, len(current), for_add=False)
    if position is None:
        raise errors.BadRequest("Invalid position for removing a location.")
    return detach(rt, image, current[position])


# --- checks ------------------------------------------------------------------------


def _parse_location(value: Any) -> tuple[str, dict[str, Any]]:
    """``{"url": ..., "metadata": {...}}`` as the image schema has it; 400 otherwise."""
    if not isinstance(value, dict):
        raise errors.BadRequest("Invalid location: an object with 'url' and 'metadata' expected.")
    url, metadata = value.get("url"), value.get("metadata")
    if not isinstance(url, str) or not url:
        raise errors.BadRequest("Invalid location: 'url' must be a non-empty string.")
    if len(url) > 255:
        raise errors.BadRequest("Invalid location: 'url' is longer than 255 characters.")
    if not isinstance(metadata, dict):
        raise errors.BadRequest("Invalid location: 'metadata' must be an object.")
    check_text(url, "Location")
    check_url(url, "Location")
    check_text(metadata, "Location metadata")
    storable_text(json.dumps(metadata), "Location metadata")
    return url, dict(metadata)


def _position(where: str, count: int, *, for_add: bool) -> int | None:
    if where == "-":
        return count if for_add else None
    try:
        position = int(where)
    except ValueError:
        return None
    if str(position) != where or position < 0:
        return None
    limit = count if for_add else count - 1
    return position if position <= limit else None


def check_filtering(rt: Runtime, url: str) -> None:
    """An http(s) ``url`` must pass ``[import_filtering_opts]``; 400 otherwise.

    Glance filters http(s) locations the same way (LP #2161330). Glimpse's filter
    also refuses literal loopback, private and link-local addresses unless the
    operator allows them; the http store checks what a host name resolves to, and
    every redirect, when it reads. Credentials in the URL are not filtered: the
    store sends them to that host only.
    """
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        return
    public = rt.stores.public_uri(url)
    try:
        web_download.check_uri(rt.conf, public)
    except web_download.UriRefused as exc:
        raise _not_filtered(public, exc.message) from None


def _not_filtered(public: str, reason: str) -> errors.BadRequest:
    return errors.BadRequest(f"URI for add location does not pass filtering: {public} ({reason})")


def check_location(rt: Runtime, url: str) -> tuple[StoreDriver, int]:
    """The store that holds ``url`` and its size; 400 "Invalid location" otherwise."""
    check_filtering(rt, url)
    scheme = urllib.parse.urlsplit(url).scheme
    candidates = rt.stores.by_scheme(url) if scheme not in RESTRICTED_SCHEMES else []
    if not candidates:
        raise errors.BadRequest("Invalid location")
    driver = rt.stores.owner_of(url) or candidates[0]
    if driver.lends_credentials(url):
        # The store would read it with its own secret: anyone could reach any object of
        # the store's account (or another image's data) without knowing that secret.
        raise errors.BadRequest(
            "Invalid location: it must carry the credentials to read it (the store's own "
            "are not lent)."
        )
    try:
        size = driver.stat(url)
    except StoreRefused as exc:
        raise _not_filtered(rt.stores.public_uri(url), str(exc)) from exc
    except StoreError as exc:
        # As Glance: whatever the store says (missing, unreachable, refused), the
        # location cannot be used.
        raise errors.BadRequest(f"Invalid location: {exc}") from exc
    if size <= 0:
        raise errors.BadRequest("Invalid location: the store reports no data there.")
    return driver, size


def check_location_quota(rt: Runtime, count: int) -> None:
    quota = int(rt.conf.image_location_quota)
    if quota_exceeded(count, quota):
        raise errors.RequestEntityTooLarge(
            "The limit has been exceeded on the number of allowed image locations. "
            f"Attempted: {count}, Maximum: {quota}"
        )


def check_storage_quota(rt: Runtime, image: Image, size: int, locations: int) -> None:
    quota = parse_storage_quota(rt.conf.user_storage_quota)
    if not quota:
        return
    session = object_session(image)
    assert session is not None
    used = storage_used(session, image.owner, excluding=image.id)
    if used + (image.size or size) * locations > quota:
        raise errors.RequestEntityTooLarge(
            "Denying attempt to upload image because it exceeds the quota: the image "
            f"locations would use more than the {quota} bytes allowed."
        )


def _validation_data(rt: Runtime, image: Image, values: list[Any]) -> dict[str, str]:
    """New checksums given with the locations (``validation_data``), checked as Glance does."""
    given: dict[str, str] = {}
    for value in values:
        data = value.get("validation_data") if isinstance(value, dict) else None
        if data is None:
            continue
        if not isinstance(data, dict) or set(data) - set(_VALIDATION_KEYS):
            raise errors.BadRequest(
                "Invalid validation_data: only checksum, os_hash_algo and os_hash_value."
            )
        if "os_hash_algo" not in data or "os_hash_value" not in data:
            raise errors.BadRequest("validation_data requires os_hash_algo and os_hash_value.")
        for key, item in data.items():
            if not isinstance(item, str):
                raise errors.BadRequest(f"validation_data {key} must be a string.")
            if given.get(key, item) != item:
                raise errors.Conflict(f"Conflicting values for {key}")
            given[key] = item
    new: dict[str, str] = {}
    for key, item in given.items():
        current = getattr(image, key)
        if item == current:
            continue
        if current:
            raise errors.Conflict(f"{key} is already set with a different value")
        new[key] = item
    if not new:
        return {}
    if image.status != "queued":
        raise errors.Conflict(
            f"New value(s) for {', '.join(new)} may only be provided when image status is 'queued'"
        )
    if "checksum" in new and not _is_hex(new["checksum"], 16):
        raise errors.Conflict(f"checksum ({new['checksum']}) is not a valid md5 hexdigest")
    algo = new.get("os_hash_algo", "")
    if algo != rt.conf.hashing_algorithm:
        raise errors.Conflict(f"os_hash_algo must be {rt.conf.hashing_algorithm}, not {algo}")
    size = hashlib.new(algo).digest_size
    if not _is_hex(new.get("os_hash_value", ""), size):
        raise errors.Conflict(
            f"os_hash_value ({new.get('os_hash_value')}) is not a valid {algo} hexdigest "
            f"({size} bytes)"
        )
    return new


def _is_hex(text: str, size: int) -> bool:
    try:
        return len(bytes.fromhex(text)) == size
    except ValueError:
        return False


def _activate(image: Image, size: int, validation: dict[str, str]) -> None:
    """A queued image with a location has data: it becomes active (formats required)."""
    if image.size is None:
        image.size = size
    if image.status != "queued":
        return
    if not (image.disk_format and image.container_format):
        raise errors.BadRequest(
            "Properties disk_format, container_format must be set prior to saving data."
        )
    for key, item in validation.items():
        setattr(image, key, item)
    image.status = "active"


def _shared(location: ImageLocation) -> bool:
    session = object_session(location)
    if session is None:
        return False
    query = select(ImageLocation.id).where(
        ImageLocation.value == location.value,
        ImageLocation.deleted.is_(False),
        ImageLocation.id != location.id,
    )
    return session.scalars(query.limit(1)).first() is not None


def _renumber(ordered: list[ImageLocation]) -> None:
    for position, location in enumerate(ordered):
        location.position = position
