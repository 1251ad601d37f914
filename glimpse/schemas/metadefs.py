"""The metadata definition schemas: served at ``/v2/schemas/metadefs/*`` and used to validate.

Each document is built once, as Glance (Rocky) shapes it; the validators are made from the
very same dicts, so what a client reads is what the server checks.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema

from glimpse import errors

NAME_MAX = 80
VISIBILITIES = ["public", "private"]
PROPERTY_TYPES: list[str | None] = [
    "array",
    "boolean",
    "integer",
    "number",
    "object",
    "string",
    None,
]

#: The attributes a property definition keeps; anything else a nested definition carries is
#: dropped, as Glance's PropertyType model drops it.
PROPERTY_FIELDS = (
    "type",
    "title",
    "description",
    "operators",
    "default",
    "readonly",
    "minimum",
    "maximum",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "confidential",
    "items",
    "uniqueItems",
    "minItems",
    "maxItems",
    "additionalItems",
)
ITEM_FIELDS = ("type", "enum")

#: Attributes a client may never send, per resource: 403 "Attribute '...' is read-only."
READ_ONLY = {
    "namespace": ("self", "schema", "created_at", "updated_at"),
    "object": ("self", "schema", "created_at", "updated_at"),
    "property": ("created_at", "updated_at"),
    "tag": ("created_at", "updated_at"),
    "tags": ("created_at", "updated_at"),
    "resource_type": ("created_at", "updated_at"),
}


def _timestamp(what: str) -> dict[str, Any]:
    return {
        "type": "string",
        "readOnly": True,
        "description": what,
        "format": "date-time",
    }


def _definitions(string_array_min_items: bool) -> dict[str, Any]:
    string_array: dict[str, Any] = {
        "type": "array",
        "items": {"type": "string"},
        "uniqueItems": True,
    }
    if string_array_min_items:
        string_array["minItems"] = 1
    return {
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {
            "allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]
        },
        "stringArray": string_array,
    }


def _property_attributes() -> dict[str, Any]:
    return {
        "name": {"type": "string", "maxLength": NAME_MAX},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": list(PROPERTY_TYPES)},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "confidential": {"type": "boolean"},
        "default": {},
        "items": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": list(PROPERTY_TYPES)},
                "enum": {"type": "array"},
            },
        },
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": False},
        "additionalItems": {"type": "boolean"},
    }


def _namespace_definitions() -> dict[str, Any]:
    definitions = _definitions(string_array_min_items=False)
    definitions["property"] = {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "required": ["title", "type"],
            "properties": _property_attributes(),
        },
    }
    return definitions


def _item(
    name: str,
    properties: dict[str, Any],
    required: list[str],
    definitions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Glance's ``Schema.raw()``: unknown attributes are refused."""
    document: dict[str, Any] = {
        "name": name,
        "properties": properties,
        "additionalProperties": False,
    }
    if definitions:
        document["definitions"] = definitions
    if required:
        document["required"] = required
    return document


def _collection(name: str, item: dict[str, Any], as_map: bool = False) -> dict[str, Any]:
    """Glance's ``CollectionSchema``/``DictCollectionSchema``: definitions move to the top."""
    item = copy.deepcopy(item)
    definitions = item.pop("definitions", None)
    container: dict[str, Any] = (
        {"type": "object", "additionalProperties": item}
        if as_map
        else {"type": "array", "items": item}
    )
    document: dict[str, Any] = {
        "name": name,
        "properties": {
            name: container,
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }
    if definitions:
        document["definitions"] = definitions
    return document


def _namespace() -> dict[str, Any]:
    properties = {
        "namespace": {
            "type": "string",
            "description": "The unique namespace text.",
            "maxLength": NAME_MAX,
        },
        "display_name": {
            "type": "string",
            "description": "The user friendly name for the namespace. Used by UI if available.",
            "maxLength": NAME_MAX,
        },
        "description": {
            "type": "string",
            "description": "Provides a user friendly description of the namespace.",
            "maxLength": 500,
        },
        "visibility": {
            "type": "string",
            "description": "Scope of namespace accessibility.",
            "enum": list(VISIBILITIES),
        },
        "protected": {
            "type": "boolean",
            "description": "If true, namespace will not be deletable.",
        },
        "owner": {
            "type": "string",
            "description": "Owner of the namespace.",
            "maxLength": 255,
        },
        "created_at": _timestamp("Date and time of namespace creation"),
        "updated_at": _timestamp("Date and time of the last namespace modification"),
        "schema": {"readOnly": True, "type": "string"},
        "self": {"readOnly": True, "type": "string"},
        "resource_type_associations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "prefix": {"type": "string"},
                    "properties_target": {"type": "string"},
                },
            },
        },
        "properties": {"$ref": "#/definitions/property"},
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "required": {"$ref": "#/definitions/stringArray"},
                    "properties": {"$ref": "#/definitions/property"},
                },
            },
        },
        "tags": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    }
    return _item("namespace", properties, ["namespace"], _namespace_definitions())


def _object() -> dict[str, Any]:
    properties = {
        "name": {"type": "string", "maxLength": NAME_MAX},
        "description": {"type": "string"},
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": {"$ref": "#/definitions/property"},
        "schema": {"readOnly": True, "type": "string"},
        "self": {"readOnly": True, "type": "string"},
        "created_at": _timestamp("Date and time of object creation"),
        "updated_at": _timestamp("Date and time of the last object modification"),
    }
    return _item("object", properties, ["name"], _namespace_definitions())


def _property(require_name: bool) -> dict[str, Any]:
    required = ["title", "type"] + (["name"] if require_name else [])
    return _item(
        "property",
        _property_attributes(),
        required,
        _definitions(string_array_min_items=True),
    )


def _tag() -> dict[str, Any]:
    properties = {
        "name": {"type": "string", "maxLength": NAME_MAX},
        "created_at": _timestamp("Date and time of tag creation"),
        "updated_at": _timestamp("Date and time of the last tag modification"),
    }
    return _item("tag", properties, ["name"])


def _tags_request() -> dict[str, Any]:
    """The body of a bulk tag create (not served; Glance validates against it)."""
    tags = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": NAME_MAX}},
            "required": ["name"],
            "additionalProperties": False,
        },
    }
    # Glance leaves "tags" optional and then fails with a 500 without it.
    return _item("tags", {"tags": tags}, ["tags"])


def _resource_type_association() -> dict[str, Any]:
    properties = {
        "name": {
            "type": "string",
            "description": "Resource type names should be aligned with Heat resource types "
            "whenever possible: https://docs.openstack.org/heat/latest/"
            "template_guide/openstack.html",
            "maxLength": NAME_MAX,
        },
        "prefix": {
            "type": "string",
            "description": "Specifies the prefix to use for the given resource type. Any "
            "properties in the namespace should be prefixed with this prefix when being "
            "applied to the specified resource type. Must include prefix separator (e.g. a "
            "colon :).",
            "maxLength": NAME_MAX,
        },
        "properties_target": {
            "type": "string",
            "description": "Some resource types allow more than one key / value pair per "
            "instance.  For example, Cinder allows user and image metadata on volumes. Only "
            "the image properties metadata is evaluated by Nova (scheduling or drivers). This "
            "property allows a namespace target to remove the ambiguity.",
            "maxLength": NAME_MAX,
        },
        "created_at": _timestamp("Date and time of resource type association"),
        "updated_at": _timestamp(
            "Date and time of the last resource type association modification"
        ),
    }
    return _item("resource_type_association", properties, ["name"])


NAMESPACE = _namespace()
OBJECT = _object()
PROPERTY = _property(require_name=True)
TAG = _tag()
RESOURCE_TYPE = _resource_type_association()

#: What ``GET /v2/schemas/metadefs/{name}`` serves.
DOCUMENTS: dict[str, dict[str, Any]] = {
    "namespace": NAMESPACE,
    "namespaces": _collection("namespaces", NAMESPACE),
    "object": OBJECT,
    "objects": _collection("objects", OBJECT),
    "property": PROPERTY,
    # In a collection the name is the key, not a required attribute.
    "properties": _collection("properties", _property(require_name=False), as_map=True),
    "tag": TAG,
    "tags": _collection("tags", TAG),
    "resource_type": RESOURCE_TYPE,
    "resource_types": _collection("resource_type_associations", RESOURCE_TYPE),
}

_REQUEST_SCHEMAS: dict[str, dict[str, Any]] = {
    "namespace": NAMESPACE,
    "object": OBJECT,
    "property": PROPERTY,
    "tag": TAG,
    "tags": _tags_request(),
    "resource_type": RESOURCE_TYPE,
}
_FORMATS = jsonschema.FormatChecker(formats=("regex",))
_VALIDATORS = {
    name: jsonschema.Draft4Validator(document, format_checker=_FORMATS)
    for name, document in _REQUEST_SCHEMAS.items()
}


def validate(kind: str, body: Any) -> None:
    """Check a request body for ``kind``: 403 for read-only attributes, 400 for the schema."""
    # The documents, as Glance's, do not say "type": "object", so check it here.
    if not isinstance(body, dict):
        raise errors.BadRequest("Unexpected body type. Expected dict.")
    for key in READ_ONLY[kind]:
        if key in body:
            raise errors.ReadOnlyAttribute(key)
    error = jsonschema.exceptions.best_match(_VALIDATORS[kind].iter_errors(body))
    if error is not None:
        raise errors.BadRequest(_describe(error, _REQUEST_SCHEMAS[kind]["name"]))


def _describe(error: jsonschema.ValidationError, schema_name: str) -> str:
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    where = "/".join(str(p) for p in error.path)
    suffix = f" (at '{where}')" if where else ""
    return f"Provided object does not match schema '{schema_name}': {message}{suffix}"


def property_definition(raw: dict[str, Any]) -> dict[str, Any]:
    """Only the attributes a property definition keeps (its name is kept apart)."""
    definition = {k: copy.deepcopy(v) for k, v in raw.items() if k in PROPERTY_FIELDS}
    items = definition.get("items")
    if isinstance(items, dict):
        definition["items"] = {k: v for k, v in items.items() if k in ITEM_FIELDS}
    return definition
