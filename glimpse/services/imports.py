"""Starting imports (``POST /v2/images/{id}/import``) and legacy import tasks.

The API process only validates and records the request: it moves the image to
``importing`` and inserts a pending task, which a glimpse-worker claims and runs
(:mod:`glimpse.imports.runner`).
"""

from __future__ import annotations

from typing import Any

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import ImageProperty, utcnow
from glimpse.imports import decompression
from glimpse.notifications import payloads
from glimpse.runtime import Runtime
from glimpse.services import access, import_targets, tasks
from glimpse.services.records import ImageRecord
from glimpse.services.tasks import TaskRecord

IMPORT_TASK_TYPE = "api_image_import"
#: Properties Glimpse manages during an import; users may not set ``os_glance*`` names.
IMPORT_TASK_PROPERTY = "os_glance_import_task"


def import_methods(rt: Runtime) -> list[str]:
    methods = [m for m in rt.conf.enabled_import_methods if m]
    if not rt.stores.multi:
        # Copying between stores needs several of them; Glance hides it likewise.
        methods = [m for m in methods if m != import_targets.COPY_IMAGE]
    return methods


def start_import(
    rt: Runtime, context: RequestContext, image_id: str, body: Any, store_id: str | None
) -> TaskRecord | None:
    """Validate an import request and queue it for a worker (202).

    None when there is nothing to do: ``copy-image`` to ``all_stores`` of an image
    already in every store.
    """
    access.require_writable_context(context)
    method = body.get("method") if isinstance(body, dict) else None
    if not isinstance(method, dict) or not isinstance(method.get("name"), str):
        raise errors.BadRequest("Import request requires a 'method' field with a 'name'.")
    name = method["name"]
    if name not in import_methods(rt):
        raise errors.BadRequest(f"Unknown import method name '{name}'.")
    uri = method.get("uri")
    decompress = method.get("decompress")
    if decompress is not None and decompress not in decompression.MODES:
        raise errors.BadRequest(f"'decompress' must be one of {', '.join(decompression.MODES)}.")
    expected = method.get("expected_hash")
    if expected is not None:
        _check_expected_hash(rt, expected)
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id, for_update=True)
        copy = name == import_targets.COPY_IMAGE
        if copy and not access.can_modify(context, image):
            # Copying an image one can see but not change is what copy_image is for
            # (Victoria); its default leaves it to administrators.
            access.enforce(rt.policy, context, "copy_image", image)
        else:
            access.require_modify(
                context, image, "You are not permitted to import data to this image."
            )
            access.enforce(rt.policy, context, "modify_image", image)
        rt.policy.enforce(context, "add_task", {"owner": context.owner})
        if image.status == "active" and not copy:
            raise errors.Conflict(f"Image {image_id} is active; it cannot be imported again.")
        if copy and image.status != "active":
            raise errors.Conflict("Only images with status active can be targeted for copying")
        if name == "web-download" and image.status != "queued":
            raise errors.Conflict(
                f"Image {image_id} must be queued for web-download, not {image.status}."
            )
        if name == "glance-direct" and image.status != "uploading":
            raise errors.Conflict(
                f"Image {image_id} has no staged data: stage it first (status is {image.status})."
            )
        if name not in ("web-download", "glance-direct", import_targets.COPY_IMAGE) and (
            image.status not in ("queued", "uploading")
        ):
            raise errors.Conflict(f"Image {image_id} cannot be imported in status {image.status}.")
        if not (image.disk_format and image.container_format):
            raise errors.Conflict(
                "The 'disk_format' and 'container_format' of the image must be set before import."
            )
        targets = import_targets.requested(rt, body, store_id)
        # Another import, or a location being added (API 2.17), may hold the image.
        check_import_lock(session, image)
        if copy:
            targets = import_targets.for_copy(image, targets, body.get("all_stores") is True)
            if not targets.stores:
                return None
        if name == "web-download":
            if not isinstance(uri, str) or not uri:
                raise errors.BadRequest("web-download requires a 'uri'.")
            from glimpse.imports import web_download

            try:
                web_download.check_uri(rt.conf, uri)
            except web_download.UriRefused as exc:
                raise errors.BadRequest(f"URI {uri!r} is not allowed: {exc}") from exc
        task = tasks.new_task(
            session,
            context,
            IMPORT_TASK_TYPE,
            {
                "image_id": image_id,
                "import_req": body,
                "backend": store_id,
                "stores": targets.stores,
                "all_stores_must_succeed": targets.all_stores_must_succeed,
                "roles": list(context.roles),
            },
            image_id,
        )
        session.flush()
        if not copy:
            image.status = "importing"
        image.updated_at = utcnow()
        set_property(image, IMPORT_TASK_PROPERTY, task.id)
        if rt.stores.multi:
            import_targets.start(image, targets.stores)
        image_record, task_record = ImageRecord.of(image), TaskRecord.of(task)
    rt.notifier.info("image.update", payloads.image(image_record))
    rt.notifier.info("task.create", payloads.task(task_record))
    return task_record


def check_import_lock(session: Any, image: Any) -> None:
    """409 while another import of the image, or a location import, is pending or running
    (Glance's import lock, the task named by ``os_glance_import_task``)."""
    from glimpse.db.models import Task

    holder = import_targets.property_value(image, IMPORT_TASK_PROPERTY)
    if not holder:
        return
    task = session.get(Task, holder)
    if task is not None and not task.deleted and task.status in ("pending", "processing"):
        raise errors.Conflict(
            f"New operation on image '{image.id}' is not permitted as prior operation is "
            "still in progress"
        )


def _check_expected_hash(rt: Runtime, expected: Any) -> None:
    if not (
        isinstance(expected, dict)
        and isinstance(expected.get("algorithm"), str)
        and isinstance(expected.get("value"), str)
    ):
        raise errors.BadRequest('\'expected_hash\' must be {"algorithm": ..., "value": ...}.')
    if expected["algorithm"] not in ("md5", rt.conf.hashing_algorithm):
        raise errors.BadRequest(
            f"Cannot verify a {expected['algorithm']} digest: this deployment computes md5 and "
            f"{rt.conf.hashing_algorithm}."
        )


def set_property(image: Any, name: str, value: str) -> None:
    for prop in image.properties:
        if prop.name == name and not prop.deleted:
            prop.value = value
            return
    now = utcnow()
    image.properties.append(
        ImageProperty(name=name, value=value, created_at=now, updated_at=now, deleted=False)
    )


def create_legacy_task(rt: Runtime, context: RequestContext, body: Any) -> TaskRecord:
    """``POST /v2/tasks`` of type ``import``: create an image from a URL (deprecated API)."""
    access.require_writable_context(context)
    rt.policy.enforce(context, "tasks_api_access", {})
    rt.policy.enforce(context, "add_task", {"owner": context.owner})
    if not isinstance(body, dict):
        raise errors.BadRequest("Unexpected body type. Expected list/dict.")
    for key in ("type", "input"):
        if key not in body:
            raise errors.BadRequest(f"Task request requires '{key}'.")
    for key in body:
        if key not in ("type", "input"):
            raise errors.Forbidden(f"Attribute '{key}' is read-only.")
    if body["type"] not in ("import",):
        raise errors.BadRequest(f"Invalid task type: {body['type']}")
    task_input = body["input"]
    if not isinstance(task_input, dict):
        raise errors.BadRequest("Task input must be an object.")
    for key in ("import_from", "import_from_format", "image_properties"):
        if key not in task_input:
            raise errors.BadRequest(f"Input does not contain '{key}' field")
    if not isinstance(task_input["image_properties"], dict):
        raise errors.BadRequest("'image_properties' must be an object.")
    uri = task_input["import_from"]
    if not isinstance(uri, str):
        raise errors.BadRequest("'import_from' must be a URI string.")
    from glimpse.imports import web_download

    try:
        web_download.check_uri(rt.conf, uri)
    except web_download.UriRefused as exc:
        raise errors.BadRequest(f"URI {uri!r} is not allowed: {exc}") from exc
    with rt.db.transaction() as session:
        task = tasks.new_task(session, context, "import", task_input, None)
        session.flush()
        record = TaskRecord.of(task)
    rt.notifier.info("task.create", payloads.task(record))
    return record
