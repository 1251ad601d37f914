"""An in-process API client that acts as different identities."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

PATCH = "application/openstack-images-v2.1-json-patch"
#: A ``POST /v2/tasks`` body: Glance's legacy import task, from a source that never answers.
IMPORT_TASK: dict[str, Any] = {
    "type": "import",
    "input": {
        "import_from": "https://example.invalid/probe.raw",
        "import_from_format": "raw",
        "image_properties": {"disk_format": "raw", "container_format": "bare"},
    },
}


class Api:
    """Wraps a Starlette TestClient; each call may act as a project/user with roles."""

    def __init__(self, client: TestClient, headers: dict[str, str] | None = None) -> None:
        self.client = client
        self.headers = dict(headers or {})

    def as_(self, project: str, roles: str = "member", user: str | None = None) -> Api:
        """The same client acting as ``user`` in ``project`` with ``roles``."""
        return Api(
            self.client,
            {"X-Project-Id": project, "X-User-Id": user or f"user-of-{project}", "X-Roles": roles},
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def patch(self, path: str, ops: Any, media_type: str = PATCH, **kwargs: Any) -> Any:
        headers = {"Content-Type": media_type, **kwargs.pop("headers", {})}
        return self.request("PATCH", path, content=json.dumps(ops), headers=headers, **kwargs)

    def create_image(self, expect: int = 201, **body: Any) -> dict[str, Any]:
        """Create an image and return its JSON, asserting the status."""
        response = self.post("/v2/images", json=body)
        assert response.status_code == expect, response.text
        result: dict[str, Any] = response.json()
        return result
