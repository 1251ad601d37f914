"""The body of ``POST /v2/images/{image_id}/locations`` (Images API 2.17).

``{"url": ..., "validation_data": {"os_hash_algo": ..., "os_hash_value": ...}}``:
``url`` is required; ``validation_data`` is optional, but its two members come
together, and the algorithm is one of Glance's four. Members beyond these are
ignored, as Glance's permissive schema ignores them.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from glimpse import errors

#: The algorithms ``validation_data`` may name (Glance's list).
HASH_ALGORITHMS = ("sha1", "sha256", "sha512", "md5")

ADD_LOCATION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {
            "type": "string",
            "minLength": 1,
            "description": "The URL of the new location to be added in the image.",
        },
        "validation_data": {
            "type": "object",
            "description": "The checksum the data at the location must have; without "
            "do_secure_hash it is recorded unchecked.",
            "additionalProperties": False,
            "properties": {
                "os_hash_algo": {
                    "type": "string",
                    "maxLength": 64,
                    "enum": list(HASH_ALGORITHMS),
                },
                "os_hash_value": {"type": "string", "maxLength": 128},
            },
            "dependentRequired": {
                "os_hash_value": ["os_hash_algo"],
                "os_hash_algo": ["os_hash_value"],
            },
        },
    },
    "required": ["url"],
}

_VALIDATOR = jsonschema.Draft202012Validator(ADD_LOCATION)


def validate_add_location(body: Any) -> None:
    """Raise BadRequest, naming the first problem, unless ``body`` fits :data:`ADD_LOCATION`."""
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(body))
    if error is None:
        return
    message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    where = "/".join(str(part) for part in error.path)
    suffix = f" (at '{where}')" if where else ""
    raise errors.BadRequest(f"Provided object does not match schema 'location': {message}{suffix}")
