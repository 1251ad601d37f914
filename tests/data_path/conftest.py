"""Real ``glimpse-api`` processes for the data path: wire-level uploads, crashes, memory.

Tests that only need a server use ``server`` (one process per module and database
backend). Tests that change the configuration, signal or kill the process start
their own with ``start_server``; those run on SQLite only, as they test the
process and the store rather than the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import databases
from tests.support.polling import wait_for as wait_for  # the data path tests import it here
from tests.support.server import Server, running

StartServer = Callable[..., Server]


def store_dir(server: Server) -> Path:
    """The filesystem store folder of ``server`` (``images/`` in its data folder)."""
    return server.log_path.parent / "data" / "images"


def config_path(server: Server) -> Path:
    """The configuration file ``server`` was started with."""
    return server.log_path.parent / "glimpse-api.conf"


def stored(server: Server) -> list[str]:
    """Every entry of the store folder, temporaries included."""
    folder = store_dir(server)
    return sorted(os.listdir(folder)) if folder.exists() else []


class Client:
    """httpx against a real server, as an identity (trusted headers, no Keystone)."""

    def __init__(self, server: Server, project: str | None = None, roles: str = "member"):
        self.server = server
        headers = {}
        if project is not None:
            headers = {"X-Project-Id": project, "X-User-Id": f"user-of-{project}", "X-Roles": roles}
        self.headers = headers
        self.http = httpx.Client(
            base_url=server.url, headers=headers, timeout=60.0, trust_env=False
        )

    def create_image(self, **body: Any) -> str:
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        response = self.http.post("/v2/images", json=body)
        assert response.status_code == 201, response.text
        image_id: str = response.json()["id"]
        return image_id

    def upload(self, data: bytes) -> str:
        """A new image with ``data`` uploaded (204 expected); returns its id."""
        image_id = self.create_image()
        response = self.http.put(
            f"/v2/images/{image_id}/file",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 204, response.text
        return image_id

    def image(self, image_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v2/images/{image_id}")
        assert response.status_code == 200, response.text
        image: dict[str, Any] = response.json()
        return image

    def status(self, image_id: str) -> str:
        status: str = self.image(image_id)["status"]
        return status

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite database for the servers that run on one backend only."""
    return databases.create_database("sqlite", str(tmp_path_factory.mktemp("db")))


@pytest.fixture
def start_server(
    sqlite_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartServer]:
    """Start servers on the SQLite database (emptied first); stopped after the test."""
    databases.empty_tables(sqlite_url)
    with ExitStack() as stack:

        def start(
            options: Mapping[str, Mapping[str, object]] | None = None,
            workdir: Path | None = None,
        ) -> Server:
            folder = workdir or tmp_path_factory.mktemp("server")
            return stack.enter_context(running(sqlite_url, folder, options))

        yield start


@pytest.fixture(scope="module")
def running_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One default server per module and database backend."""
    with running(database_url, tmp_path_factory.mktemp("server")) as server:
        yield server


@pytest.fixture
def server(running_server: Server, database_url: str) -> Server:
    """The module's server, its database emptied and its store folder too."""
    databases.empty_tables(database_url)
    for name in stored(running_server):
        (store_dir(running_server) / name).unlink()
    return running_server


@pytest.fixture
def admin(server: Server) -> Iterator[Client]:
    client = Client(server)
    yield client
    client.close()
