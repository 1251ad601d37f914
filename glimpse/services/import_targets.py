"""Which stores an import writes to, and the image properties that report its progress.

Multi-store only (Glance's Ussuri semantics). The stores come from, in order:
``all_stores: true`` (every writable store), the body's ``stores`` list, the
``X-Image-Meta-Store`` header, else ``default_backend``. While the import runs,
``os_glance_importing_to_stores`` lists the stores still to be written and
``os_glance_failed_import`` those the import could not write; both are
comma-joined store ids.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from glimpse import errors
from glimpse.db.models import Image, ImageProperty, utcnow
from glimpse.runtime import Runtime

IMPORTING_TO_PROPERTY = "os_glance_importing_to_stores"
FAILED_IMPORT_PROPERTY = "os_glance_failed_import"
COPY_IMAGE = "copy-image"


@dataclasses.dataclass(frozen=True)
class Targets:
    """The stores an import request asks for."""

    stores: list[str]
    all_stores_must_succeed: bool


def requested(rt: Runtime, body: dict[str, Any], header_store: str | None) -> Targets:
    """Read and check the store fields of an import request.

    400 for malformed or contradictory fields; 409 for a store that does not exist
    or cannot be written (Glance answers 409 for an unknown store id here).
    """
    all_stores = body.get("all_stores", False)
    must_succeed = body.get("all_stores_must_succeed", True)
    if not isinstance(all_stores, bool):
        raise errors.BadRequest("'all_stores' must be a boolean.")
    if not isinstance(must_succeed, bool):
        raise errors.BadRequest("'all_stores_must_succeed' must be a boolean.")
    if not rt.stores.multi:
        # As in Glance, the store fields mean nothing here; only this one is refused.
        if not must_succeed:
            raise errors.BadRequest("All_stores_must_succeed can only be set with enabled_backends")
        return Targets([rt.stores.default_id], True)
    if all_stores:
        if "stores" in body or header_store is not None:
            raise errors.BadRequest(
                "All_stores parameter can't be used with x-image-meta-store header or "
                "stores parameter"
            )
        stores = [i for i, driver in rt.stores.drivers.items() if not driver.read_only]
    elif "stores" in body:
        if header_store is not None:
            raise errors.BadRequest(
                "Stores parameter and x-image-meta-store header can't be both specified"
            )
        stores = body["stores"]
        if (
            not isinstance(stores, list)
            or not stores
            or not all(isinstance(s, str) for s in stores)
        ):
            raise errors.BadRequest("'stores' must be a non-empty list of store ids.")
        stores = list(dict.fromkeys(stores))
    else:
        stores = [header_store or rt.stores.default_id]
    for store_id in stores:
        driver = rt.stores.get(store_id)
        if driver is None:
            raise errors.Conflict(f"Unknown store '{store_id}'.")
        if driver.read_only:
            raise errors.Conflict(
                f"Store '{store_id}' is read-only; images cannot be imported to it."
            )
    return Targets(stores, must_succeed)


def stores_holding(image: Image) -> list[str]:
    """Ids of the stores the image's live locations are in."""
    from glimpse.services import locations

    held = [locations.metadata_of(loc).get("store") for loc in locations.live(image)]
    return [store for store in held if isinstance(store, str)]


def for_copy(image: Image, targets: Targets, all_stores: bool) -> Targets:
    """copy-image: ``all_stores`` skips the stores already holding the image, while naming
    one of them is a 400 (as in Glance)."""
    held = stores_holding(image)
    if all_stores:
        return dataclasses.replace(targets, stores=[s for s in targets.stores if s not in held])
    for store_id in targets.stores:
        if store_id in held:
            raise errors.BadRequest(f"Image is already present at store '{store_id}'")
    return targets


def split(value: str | None) -> list[str]:
    return [item for item in (value or "").split(",") if item]


def property_value(image: Image, name: str) -> str | None:
    for prop in image.properties:
        if prop.name == name and not prop.deleted:
            return prop.value
    return None


def set_property(image: Image, name: str, value: str) -> None:
    """Set an ``os_glance_*`` property of an attached image."""
    now = utcnow()
    for prop in image.properties:
        if prop.name == name and not prop.deleted:
            if prop.value != value:
                prop.value = value
                prop.updated_at = now
            return
    image.properties.append(
        ImageProperty(name=name, value=value, created_at=now, updated_at=now, deleted=False)
    )


def start(image: Image, stores: list[str]) -> None:
    """An import to ``stores`` begins: list them as importing, no longer as failed."""
    set_property(image, IMPORTING_TO_PROPERTY, ",".join(stores))
    failed = [s for s in split(property_value(image, FAILED_IMPORT_PROPERTY)) if s not in stores]
    set_property(image, FAILED_IMPORT_PROPERTY, ",".join(failed))


def finished(image: Image, store_id: str, *, succeeded: bool) -> None:
    """One store is done: off the importing list, and onto the failed one if it failed."""
    importing = split(property_value(image, IMPORTING_TO_PROPERTY))
    set_property(image, IMPORTING_TO_PROPERTY, ",".join(s for s in importing if s != store_id))
    if not succeeded:
        failed = split(property_value(image, FAILED_IMPORT_PROPERTY))
        if store_id not in failed:
            failed.append(store_id)
        set_property(image, FAILED_IMPORT_PROPERTY, ",".join(failed))
