"""The service-oriented locations API of Images API 2.17 (Glance 2024.2).

``POST /v2/images/{id}/locations`` lets a service (Nova, Cinder: the ``service``
role) register where it wrote a queued image's data, and a project member point
its own queued image at http(s) data; ``GET /v2/images/{id}/locations`` shows a
service where an image's data lives. Both answer OSSN-0065 and OSSN-0090, which
showed that locations set or read by anyone through the image API (the
``show_multiple_locations`` PATCH) let users swap an image's data or learn the
storage layout: here only services read locations, and users may add only
locations whose data Glimpse checks.

The API process only validates the request and queues a ``location_import``
task, as an import does; a glimpse-worker then checks the location, attaches it
and, with ``do_secure_hash``, reads the data through the store driver to compute
``checksum`` and ``os_hash_value`` and verify the ``validation_data``
(:mod:`glimpse.imports.location_import`). The task holds the image's import
lock (``os_glance_import_task``) until it ends.

Location URLs may carry credentials (Swift, S3, ``http://user:password@``): the
task keeps the URL the worker needs under
:data:`~glimpse.services.tasks.LOCATION_URL_INPUT`, never shown, and
responses, task inputs, messages and logs only ever carry the public form.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from typing import Any

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.notifications import payloads
from glimpse.runtime import Runtime
from glimpse.schemas.location import validate_add_location
from glimpse.services import access, locations, tasks
from glimpse.services.imports import IMPORT_TASK_PROPERTY, check_import_lock, set_property
from glimpse.services.tasks import LOCATION_URL_INPUT, TaskRecord
from glimpse.services.validation import check_text, check_url

TASK_TYPE = "location_import"
#: Only callers with this role (in their token or their service token) may add
#: locations of any store; others only http(s) ones, as in Glance.
SERVICE_ROLE = "service"


def add_location(rt: Runtime, context: RequestContext, image_id: str, body: Any) -> TaskRecord:
    """Validate a request to add a location to a queued image, and queue its task (202).

    The checks come in Glance's order, so each refusal has Glance's status: the
    body (400), the image (404), its status (409), the policy (403), the store a
    caller without the service role may use (403), the hash (400), the URL
    filter (400), the import lock (409).
    """
    access.require_writable_context(context)
    validate_add_location(body)
    url: str = body["url"]
    check_text(url, "Location")
    check_url(url, "Location")
    validation: dict[str, str] = dict(body.get("validation_data") or {})
    public = rt.stores.public_uri(url)
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id, for_update=True)
        if image.status != "queued":
            raise errors.Conflict(
                f"It's not allowed to add locations if image status is {image.status}."
            )
        access.enforce(rt.policy, context, "add_image_location", image)
        if not _is_service(context) and not _http_store_url(rt, url):
            raise errors.Forbidden("http store must be enabled to use location API by normal user.")
        _check_hash(validation)
        _check_url(rt, url)
        if not (image.disk_format and image.container_format):
            raise errors.BadRequest(
                "Properties disk_format, container_format must be set prior to saving data."
            )
        check_import_lock(session, image)
        task = tasks.new_task(
            session,
            context,
            TASK_TYPE,
            {
                "image_id": image_id,
                "loc_url": public,
                "validation_data": validation,
                LOCATION_URL_INPUT: url,
            },
            image_id,
        )
        session.flush()
        set_property(image, IMPORT_TASK_PROPERTY, task.id)
        record = TaskRecord.of(task)
    rt.notifier.info("task.create", payloads.task(record))
    return record


def list_locations(rt: Runtime, context: RequestContext, image_id: str) -> list[dict[str, Any]]:
    """The image's locations, in order, as ``{"url", "metadata"}`` (credentials left out)."""
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id)
        access.enforce(rt.policy, context, "fetch_image_location", image)
        found = []
        for location in locations.live(image):
            metadata = locations.metadata_of(location)
            found.append(
                {"url": rt.stores.public_uri(location.value, metadata), "metadata": metadata}
            )
        return found


def _is_service(context: RequestContext) -> bool:
    return SERVICE_ROLE in context.roles or SERVICE_ROLE in context.service_roles


def _http_store_url(rt: Runtime, url: str) -> bool:
    scheme = urllib.parse.urlsplit(url).scheme
    return scheme in ("http", "https") and any(
        driver.store_type == "http" for driver in rt.stores.drivers.values()
    )


def _check_hash(validation: dict[str, str]) -> None:
    """The hash is hexadecimal and as long as its algorithm's digests (Glance's 400s)."""
    value = validation.get("os_hash_value")
    if value is None:
        return
    try:
        digest = bytes.fromhex(value)
    except ValueError:
        raise errors.BadRequest(
            f"os_hash_value ({value}) is not a valid hexadecimal value"
        ) from None
    algo = validation["os_hash_algo"]
    size = hashlib.new(algo).digest_size
    if len(digest) != size:
        raise errors.BadRequest(
            f"os_hash_value: ({value}) is not the correct size for ({algo}) "
            f"(should be ({size}) bytes)"
        )


def _check_url(rt: Runtime, url: str) -> None:
    """A scheme some store reads and users may name; for http(s), web-download's filter
    (:func:`~glimpse.services.locations.check_filtering`, as for PATCH)."""
    locations.check_filtering(rt, url)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in locations.RESTRICTED_SCHEMES or not rt.stores.by_scheme(url):
        raise errors.BadRequest(f"Invalid location: no store may read {scheme}:// locations.")
