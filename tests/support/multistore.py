"""Multi-store deployments in process: several file stores and a read-only http store
from ``enabled_backends``, built from a real configuration file (see ``make_multi`` in
``tests/api/conftest.py``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from glimpse.imports import queue, runner
from glimpse.runtime import Runtime
from tests.support.client import Api

OCTET = {"Content-Type": "application/octet-stream"}
DATA = b"multi-store image data " * 1000

#: Three file stores and a read-only http store; "fast" is the default.
STORES: dict[str, dict[str, object]] = {
    "DEFAULT": {"enabled_backends": "fast:file, cheap:file, archive:file, web:http"},
    "glance_store": {"default_backend": "fast"},
    "fast": {"store_description": "Fast local disks"},
    "cheap": {"store_description": "Cheap disks", "weight": 5},
}


def conf_text(options: dict[str, dict[str, object]]) -> str:
    lines = []
    for group, values in options.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


class MultiStore:
    """An in-process API on a multi-store configuration, with its runtime."""

    def __init__(self, rt: Runtime, client: TestClient) -> None:
        self.rt = rt
        self.api = Api(client)

    def store_dir(self, store_id: str) -> Path:
        return Path(self.rt.stores.drivers[store_id].datadir)  # type: ignore[attr-defined]

    def stored(self, store_id: str) -> list[str]:
        folder = self.store_dir(store_id)
        return sorted(os.listdir(folder)) if folder.exists() else []

    def run_worker(self) -> None:
        """Run every pending import task to its end, as a glimpse-worker would."""
        while (claim := queue.claim(self.rt, "test-worker")) is not None:
            asyncio.run(runner.run(self.rt, claim))

    def image(self, image_id: str) -> dict[str, Any]:
        response = self.api.get(f"/v2/images/{image_id}")
        assert response.status_code == 200, response.text
        image: dict[str, Any] = response.json()
        return image

    def new_image(self) -> str:
        return self.api.create_image(name="m", disk_format="raw", container_format="bare")["id"]

    def upload(self, image_id: str, store: str | None = None, data: bytes = DATA) -> Any:
        headers = dict(OCTET)
        if store is not None:
            headers["X-Image-Meta-Store"] = store
        return self.api.put(f"/v2/images/{image_id}/file", content=data, headers=headers)

    def uploaded(self, store: str | None = None) -> str:
        image_id = self.new_image()
        assert self.upload(image_id, store).status_code == 204
        return image_id

    def stage(self, image_id: str, data: bytes = DATA) -> None:
        response = self.api.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTET)
        assert response.status_code == 204, response.text

    def import_(self, image_id: str, body: dict[str, Any], **headers: str) -> Any:
        return self.api.post(f"/v2/images/{image_id}/import", json=body, headers=headers)
