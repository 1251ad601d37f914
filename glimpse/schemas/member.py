"""The member schemas."""

from __future__ import annotations

from typing import Any

MEMBER_STATUSES = ["pending", "accepted", "rejected"]


def member_document() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "created_at": {
                "type": "string",
                "description": "Date and time of image member creation",
            },
            "image_id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
            },
            "member_id": {"type": "string", "description": "An identifier for the image member"},
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": MEMBER_STATUSES,
            },
            "updated_at": {
                "type": "string",
                "description": "Date and time of last modification of image member",
            },
            "schema": {"readOnly": True, "type": "string"},
        },
    }


def members_document() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_document()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }
