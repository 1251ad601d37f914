"""JSON patch for images: parsing both patch media types and applying operations.

Operations are applied to a working copy of the image (base attributes, extra
properties, tags) and written back once, so a patch either applies whole or not
at all.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import Image, ImageProperty, ImageTag, utcnow
from glimpse.runtime import Runtime
from glimpse.schemas.image import READ_ONLY, RESERVED, RESERVED_NAMESPACE
from glimpse.services import access
from glimpse.services.validation import check_text

PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"
PATCH_MEDIA_TYPES = (PATCH_V20, PATCH_V21)
_OPS = ("add", "remove", "replace")
_BASE_ATTRS = (
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "container_format",
    "disk_format",
    "min_ram",
    "min_disk",
    "tags",
)
_FORMAT_ATTRS = ("container_format", "disk_format")


@dataclasses.dataclass(frozen=True)
class PatchOperation:
    op: str
    path: tuple[str, ...]
    value: Any = None
    has_value: bool = False
    #: True for the deprecated v2.0 patch type, where ``add`` of an existing property is a 409.
    legacy: bool = False


@dataclasses.dataclass
class PatchChanges:
    visibility_changed: bool = False
    properties_added: bool = False
    tags_changed: bool = False
    location_operations: list[PatchOperation] = dataclasses.field(default_factory=list)


def parse(media_type: str, body: Any) -> list[PatchOperation]:
    """Turn a decoded patch document into operations, or raise 400."""
    if not isinstance(body, list):
        raise errors.BadRequest("Request body must be a JSON array of operation objects.")
    operations = []
    for raw in body:
        if not isinstance(raw, dict):
            raise errors.BadRequest("Operations must be JSON objects.")
        if media_type == PATCH_V20:
            present = [op for op in _OPS if op in raw]
            if len(present) != 1:
                raise errors.BadRequest(
                    'Operation objects must contain exactly one member named "add", '
                    '"remove", or "replace".'
                )
            op = present[0]
            path_text = raw[op]
        else:
            named = raw.get("op")
            if named not in _OPS:
                raise errors.BadRequest(
                    'Operation objects must contain a member named "op" whose value is one '
                    "of add, remove, replace."
                )
            op = str(named)
            if "path" not in raw:
                raise errors.BadRequest('Unable to find "path" in JSON Schema change')
            path_text = raw["path"]
        path = _parse_pointer(path_text)
        has_value = "value" in raw
        if op in ("add", "replace") and not has_value:
            raise errors.BadRequest(f'Operation "{op}" requires a member named "value".')
        _check_depth(op, path, path_text)
        operations.append(
            PatchOperation(op, path, raw.get("value"), has_value, media_type == PATCH_V20)
        )
    return operations


# A "~" must start one of the two escapes; Glance refuses anything else, including "~~".
_BAD_ESCAPE = re.compile("~(?![01])")


def _parse_pointer(text: Any) -> tuple[str, ...]:
    if not isinstance(text, str):
        raise errors.BadRequest("Pointer must be a string.")
    if not text.startswith("/"):
        raise errors.BadRequest(f'Pointer `{text}` does not start with "/".')
    if len(text) > 1 and text.endswith("/"):
        raise errors.BadRequest(f'Pointer `{text}` end with "/".')
    if _BAD_ESCAPE.search(text):
        raise errors.BadRequest(
            f'Pointer `{text}` contains "~" not part of a recognized escape sequence.'
        )
    segments = []
    for raw_segment in text[1:].split("/"):
        # Glance strips blanks around each token, so "/ name" means "/name".
        segment = raw_segment.replace("~1", "/").replace("~0", "~").strip()
        if not segment:
            raise errors.BadRequest(f"Pointer `{text}` contains an empty token.")
        segments.append(segment)
    return tuple(segments)


def _check_depth(op: str, path: tuple[str, ...], text: str) -> None:
    if path[0] == "locations":
        allowed = 1 if op == "replace" else 2
        if len(path) != allowed:
            raise errors.BadRequest(f"Invalid JSON pointer for this resource: '{text}'")
        return
    if len(path) != 1:
        raise errors.BadRequest(f"Invalid JSON pointer for this resource: '{text}'")


def apply_patch(
    rt: Runtime, context: RequestContext, image: Image, operations: list[PatchOperation]
) -> PatchChanges:
    """Apply ``operations`` to ``image`` (an attached ORM object) or raise without changing it.

    Like Glance, every operation is checked on its own first (read-only and reserved
    paths, values against the schema); only then are they applied in order.
    """
    for operation in operations:
        _check_operation(rt, operation)

    changes = PatchChanges()
    attrs: dict[str, Any] = {name: getattr(image, name) for name in _BASE_ATTRS if name != "tags"}
    props: dict[str, Any] = {p.name: p.value for p in image.properties if not p.deleted}
    original_props = set(props)
    tags: list[str] = [t.value for t in image.tags if not t.deleted]
    original_tags = list(tags)

    for operation in operations:
        name = operation.path[0]
        if name == "locations":
            changes.location_operations.append(operation)
            continue
        if name in _BASE_ATTRS:
            _apply_to_base(rt, context, image, operation, attrs, changes)
            if name == "tags":
                tags = list(dict.fromkeys(operation.value))
            continue
        # An extra property; one the caller may not read does not exist for it (as in
        # Glance), and property protections decide who may create, update or delete it.
        exists = name in props and rt.property_protection.allows(context, name, "read")
        if operation.op == "remove":
            if not exists:
                raise errors.Conflict(f"Property {name} does not exist.")
            rt.property_protection.require(context, name, "delete")
            del props[name]
            continue
        if operation.op == "replace" and not exists:
            raise errors.Conflict(f"Property {name} does not exist.")
        if operation.op == "add" and exists and operation.legacy:
            raise errors.Conflict(f"Property {name} already present.")
        rt.property_protection.require(context, name, "update" if exists else "create")
        props[name] = operation.value

    # Location operations are applied by glimpse.services.locations, after these.

    for name, value in attrs.items():
        setattr(image, name, value)
    now = utcnow()
    changes.properties_added = bool(set(props) - original_props)
    existing = {p.name: p for p in image.properties if not p.deleted}
    for prop_name, prop in existing.items():
        if prop_name not in props:
            image.properties.remove(prop)
        elif prop.value != props[prop_name]:
            prop.value = props[prop_name]
            prop.updated_at = now
    for prop_name in props:
        if prop_name not in existing:
            image.properties.append(
                ImageProperty(
                    name=prop_name,
                    value=props[prop_name],
                    created_at=now,
                    updated_at=now,
                    deleted=False,
                )
            )
    if tags != original_tags:
        current = {t.value: t for t in image.tags}
        for value, tag in current.items():
            if value not in tags:
                image.tags.remove(tag)
        for value in tags:
            if value not in current:
                image.tags.append(
                    ImageTag(value=value, created_at=now, updated_at=now, deleted=False)
                )
    return changes


def _check_operation(rt: Runtime, operation: PatchOperation) -> None:
    """What can be decided from the operation alone: 403 for paths nobody may
    touch, 400 for values the image schema refuses."""
    name = operation.path[0]
    if name in READ_ONLY or name == "id":
        raise errors.ReadOnlyAttribute(name)
    if name in RESERVED or name.startswith(RESERVED_NAMESPACE):
        raise errors.ReservedAttribute(name)
    if name == "locations":
        if not rt.conf.show_multiple_locations:
            raise errors.Forbidden(
                "It's not allowed to update locations if locations are invisible."
            )
        return
    check_text(name, "Property name")
    schema = rt.image_schema
    if name not in _BASE_ATTRS:
        if len(name) > 255:
            raise errors.BadRequest("Property names must be at most 255 characters long.")
        if not schema.allow_additional and name not in schema.custom:
            raise errors.BadRequest(f"Attribute '{name}' is not allowed for this image.")
    if operation.op != "remove":
        check_text(operation.value, "Image metadata")
        schema.validate_property(name, operation.value)


def _apply_to_base(
    rt: Runtime,
    context: RequestContext,
    image: Image,
    operation: PatchOperation,
    attrs: dict[str, Any],
    changes: PatchChanges,
) -> None:
    """Set a base attribute in ``attrs`` (tags only flag ``changes``), or refuse."""
    name = operation.path[0]
    if operation.op == "remove":
        raise errors.Forbidden(f"Property {name} may not be removed.")
    # Base attributes always exist, so the v2.0 "add" (which must not overwrite) cannot set them.
    if operation.op == "add" and operation.legacy:
        raise errors.Conflict(f"Property {name} already present.")
    value = operation.value
    if name == "owner" and not context.is_admin:
        # Glance refuses any "replace"; an "add" must not give the image away either.
        if operation.op == "replace" or value != attrs["owner"]:
            raise errors.Forbidden("Owner can't be updated by non admin.")
    if name in _FORMAT_ATTRS and image.status not in ("queued", "importing"):
        raise errors.Forbidden(f"Attribute {name} can be only replaced for a queued image.")
    if name == "visibility":
        # Checked for every request to make an image public or community, as Glance's
        # visibility setter does, not only for an actual change.
        target = access.policy_target(image)
        if value == "public":
            rt.policy.enforce(context, "publicize_image", target)
        elif value == "community":
            rt.policy.enforce(context, "communitize_image", target)
        changes.visibility_changed = changes.visibility_changed or value != attrs[name]
    if name == "tags":
        changes.tags_changed = True
        return
    attrs[name] = value
