"""The task schemas."""

from __future__ import annotations

from typing import Any

TASK_STATUSES = ["pending", "processing", "success", "failure"]
TASK_TYPES = ["import", "api_image_import", "location_import"]


def task_document() -> dict[str, Any]:
    return {
        "name": "task",
        "properties": {
            "id": {
                "type": "string",
                "description": "An identifier for the task",
                "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
            },
            "type": {
                "type": "string",
                "description": "The type of task represented by this content",
                "enum": TASK_TYPES,
            },
            "status": {
                "type": "string",
                "description": "The current status of this task",
                "enum": TASK_STATUSES,
            },
            "input": {
                "type": ["null", "object"],
                "description": "The parameters required by task, JSON blob",
            },
            "result": {
                "type": ["null", "object"],
                "description": "The result of current task, JSON blob",
            },
            "owner": {
                "type": ["null", "string"],
                "description": "An identifier for the owner of this task",
            },
            "message": {
                "type": "string",
                "description": "Human-readable informative message only included when "
                "appropriate (usually on failure)",
            },
            "image_id": {
                "type": "string",
                "description": "Image associated with the task",
            },
            "request_id": {
                "type": "string",
                "description": "Request ID associated with the task",
            },
            "user_id": {
                "type": "string",
                "description": "User associated with the task",
            },
            "expires_at": {
                "type": ["null", "string"],
                "description": "Datetime when this resource would be subject to removal",
            },
            "created_at": {
                "type": "string",
                "description": "Datetime when this resource was created",
            },
            "updated_at": {
                "type": "string",
                "description": "Datetime when this resource was updated",
            },
            "self": {"type": "string"},
            "schema": {"type": "string"},
        },
    }


def tasks_document() -> dict[str, Any]:
    return {
        "name": "tasks",
        "properties": {
            "tasks": {"type": "array", "items": task_document()},
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
