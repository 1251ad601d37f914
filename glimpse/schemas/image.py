"""The image schema, built once from configuration, and validation against it."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import jsonschema
from oslo_config import cfg

from glimpse import errors

UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)
STATUSES = [
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "uploading",
    "importing",
    "pending_delete",
    "deactivated",
]
VISIBILITIES = ["public", "private", "shared", "community"]
INT_MAX = 2**31 - 1

READ_ONLY = (
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "stores",
)
RESERVED = ("location", "deleted", "deleted_at")
#: Property names starting with this belong to the service (Glance's GLANCE_RESERVED_NS):
#: clients may not create, change or remove them (403).
RESERVED_NAMESPACE = "os_glance"


def _base_properties(conf: cfg.ConfigOpts) -> dict[str, Any]:
    nullable_enum = [None]
    return {
        "id": {
            "type": "string",
            "description": "An identifier for the image",
            "pattern": UUID_PATTERN,
        },
        "name": {
            "type": ["null", "string"],
            "description": "Descriptive name for the image",
            "maxLength": 255,
        },
        "status": {
            "type": "string",
            "readOnly": True,
            "description": "Status of the image",
            "enum": STATUSES,
        },
        "visibility": {
            "type": "string",
            "description": "Scope of image accessibility",
            "enum": VISIBILITIES,
        },
        "protected": {
            "type": "boolean",
            "description": "If true, image will not be deletable.",
        },
        "os_hidden": {
            "type": "boolean",
            "description": "If true, image will not appear in default image list response.",
        },
        "checksum": {
            "type": ["null", "string"],
            "readOnly": True,
            "description": "md5 hash of image contents.",
            "maxLength": 32,
        },
        "os_hash_algo": {
            "type": ["null", "string"],
            "readOnly": True,
            "description": "Algorithm to calculate the os_hash_value",
            "maxLength": 64,
        },
        "os_hash_value": {
            "type": ["null", "string"],
            "readOnly": True,
            "description": "Hexdigest of the image contents using the algorithm specified by "
            "the os_hash_algo",
            "maxLength": 128,
        },
        "owner": {
            "type": ["null", "string"],
            "description": "Owner of the image",
            "maxLength": 255,
        },
        "size": {
            "type": ["null", "integer"],
            "readOnly": True,
            "description": "Size of image file in bytes",
        },
        "virtual_size": {
            "type": ["null", "integer"],
            "readOnly": True,
            "description": "Virtual size of image in bytes",
        },
        "container_format": {
            "type": ["null", "string"],
            "description": "Format of the container",
            "enum": nullable_enum + list(conf.image_format.container_formats),
        },
        "disk_format": {
            "type": ["null", "string"],
            "description": "Format of the disk",
            "enum": nullable_enum + list(conf.image_format.disk_formats),
        },
        "created_at": {
            "type": "string",
            "readOnly": True,
            "description": "Date and time of image registration",
        },
        "updated_at": {
            "type": "string",
            "readOnly": True,
            "description": "Date and time of the last image modification",
        },
        "tags": {
            "type": "array",
            "description": "List of strings related to the image",
            "items": {"type": "string", "maxLength": 255},
        },
        "direct_url": {
            "type": "string",
            "readOnly": True,
            "description": "URL to access the image file kept in external store",
        },
        "min_ram": {
            "type": "integer",
            "description": "Amount of ram (in MB) required to boot image.",
            "minimum": 0,
            "maximum": INT_MAX,
        },
        "min_disk": {
            "type": "integer",
            "description": "Amount of disk space (in GB) required to boot image.",
            "minimum": 0,
            "maximum": INT_MAX,
        },
        "self": {"type": "string", "readOnly": True, "description": "An image self url"},
        "file": {"type": "string", "readOnly": True, "description": "An image file url"},
        "stores": {
            "type": "string",
            "readOnly": True,
            "description": "Store in which image data resides.  Only present when the "
            "operator has enabled multiple stores.",
        },
        "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                    "validation_data": {
                        "description": "Values to be used to populate the corresponding "
                        "image properties. If the image status is not 'queued', values must "
                        "exactly match those already contained in the image properties.",
                        "type": "object",
                        "writeOnly": True,
                        "additionalProperties": False,
                        "properties": {
                            "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                            "os_hash_algo": {"type": "string", "maxLength": 64},
                            "os_hash_value": {"type": "string", "maxLength": 128},
                        },
                        "required": ["os_hash_algo", "os_hash_value"],
                    },
                },
                "required": ["url", "metadata"],
            },
            "description": "A set of URLs to access the image file kept in external store",
        },
    }


def _find_custom_schema(conf: cfg.ConfigOpts) -> str | None:
    """schema-image.json beside the config files, else the one shipped with Glimpse."""
    candidates = []
    for directory in [conf.config_dir] + [os.path.dirname(f) for f in conf.config_file or []]:
        if directory:
            candidates.append(os.path.join(directory, "schema-image.json"))
    candidates.append(os.path.join(os.path.dirname(__file__), "..", "etc", "schema-image.json"))
    for path in candidates:
        if os.path.isfile(path):
            return path
    return None


class ImageSchema:
    """The image schema document and a validator built from the very same dict."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        properties = _base_properties(conf)
        self.base_names = frozenset(properties)
        self.custom: dict[str, Any] = {}
        path = _find_custom_schema(conf)
        if path:
            with open(path, encoding="utf-8") as fh:
                loaded = json.load(fh)
            # The 2026.1 format nests definitions under "properties"; accept both.
            custom = loaded.get("properties", loaded) if isinstance(loaded, dict) else {}
            for name, definition in custom.items():
                if name in properties:
                    raise RuntimeError(
                        f"Custom image property {name!r} in {path} conflicts with a base property"
                    )
                definition = dict(definition)
                definition["is_base"] = False
                self.custom[name] = definition
        properties.update(self.custom)
        self.allow_additional = bool(conf.allow_additional_image_properties)
        self.document: dict[str, Any] = {
            "name": "image",
            "properties": properties,
            "additionalProperties": {"type": "string"} if self.allow_additional else False,
        }
        if self.allow_additional:
            self.document["links"] = [
                {"rel": "self", "href": "{self}"},
                {"rel": "enclosure", "href": "{file}"},
                {"rel": "describedby", "href": "{schema}"},
            ]
        self._validator = jsonschema.Draft4Validator(self.document)
        self.properties = properties

    def collection_document(self) -> dict[str, Any]:
        """The ``images`` schema (a list of image documents)."""
        return {
            "name": "images",
            "properties": {
                "images": {"type": "array", "items": copy.deepcopy(self.document)},
                "schema": {"type": "string"},
                "first": {"type": "string"},
                "next": {"type": "string"},
            },
            "links": [
                {"rel": "first", "href": "{first}"},
                {"rel": "next", "href": "{next}"},
                {"rel": "describedby", "href": "{schema}"},
            ],
        }

    def validate(self, body: dict[str, Any]) -> None:
        """Raise BadRequest for the first schema violation in ``body``."""
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(body))
        if error is not None:
            raise errors.BadRequest(_describe(error))

    def validate_property(self, name: str, value: Any) -> None:
        """Validate one attribute value as if it were set alone."""
        self.validate({name: value})

    def is_base(self, name: str) -> bool:
        return name in self.base_names


def _describe(error: jsonschema.ValidationError, schema_name: str = "image") -> str:
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    where = "/".join(str(p) for p in error.path)
    suffix = f" (at '{where}')" if where else ""
    return f"Provided object does not match schema '{schema_name}': {message}{suffix}"
