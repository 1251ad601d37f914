"""The stores as the API shows them (``GET /v2/info/stores`` and, for administrators,
``/v2/info/stores/detail``) and removing an image's data from one of them
(``DELETE /v2/stores/{store_id}/{image_id}``). Multi-store only."""

from __future__ import annotations

from typing import Any

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import utcnow
from glimpse.runtime import Runtime
from glimpse.services import access, image_data, locations

NOT_MULTI_STORE = "Multi backend is not supported at this site."


def info(rt: Runtime) -> list[dict[str, Any]]:
    """Each store: its id, description if any, and Glance's string flags."""
    if not rt.stores.multi:
        raise errors.NotFound(NOT_MULTI_STORE)
    shown = []
    for store_id, driver in rt.stores.drivers.items():
        entry: dict[str, Any] = {"id": store_id}
        if store_id in rt.stores.descriptions:
            entry["description"] = rt.stores.descriptions[store_id]
        if store_id == rt.stores.default_id:
            # A string, as Glance sends it (its api-ref shows a boolean).
            entry["default"] = "true"
        if driver.read_only:
            entry["read-only"] = "true"
        shown.append(entry)
    return shown


def info_detail(rt: Runtime, context: RequestContext) -> list[dict[str, Any]]:
    """Each store as :func:`info` shows it, plus its ``type``, ``weight`` and ``properties``.

    404 without multi-store, 403 unless ``stores_info_detail`` allows (administrators).
    """
    shown = info(rt)
    rt.policy.enforce(context, "stores_info_detail", {})
    for entry in shown:
        driver = rt.stores.drivers[entry["id"]]
        entry["type"] = driver.store_type
        entry["weight"] = rt.stores.weights.get(entry["id"], 0)
        entry["properties"] = driver.properties()
    return shown


def delete_from_store(rt: Runtime, context: RequestContext, store_id: str, image_id: str) -> None:
    """Remove the image's data from one store; its other locations stay.

    404 without multi-store or when the image has no data there, 409 for an unknown
    store or an image that is not active, 403 for its last location.
    """
    access.require_writable_context(context)
    if not rt.stores.multi:
        raise errors.NotFound(NOT_MULTI_STORE)
    if rt.stores.get(store_id) is None:
        raise errors.Conflict(f"The selected store {store_id} is not available on this node.")
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id, for_update=True)
        access.require_modify(context, image, "You are not permitted to modify this image.")
        access.enforce(rt.policy, context, "delete_image_location", image)
        if image.status != "active":
            raise errors.Conflict(
                "It's not allowed to remove image data from store if image status is not 'active'"
            )
        current = locations.live(image)
        if len(current) == 1:
            raise errors.Forbidden(
                "Cannot delete image data from the only store containing it. Consider "
                "deleting the image instead if you want to remove all image data"
            )
        found = next(
            (loc for loc in current if locations.metadata_of(loc).get("store") == store_id), None
        )
        if found is None:
            raise errors.NotFound(f"Image {image_id} is not stored in store {store_id}.")
        doomed = locations.detach(rt, image, found)
        image.updated_at = utcnow()
    image_data.delete_data(rt, doomed)
