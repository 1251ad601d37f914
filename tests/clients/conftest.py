"""A real ``glimpse-api`` per test module, for the tests that drive real clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import databases
from tests.support.server import Server, running


@pytest.fixture(scope="module")
def running_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server process per module and database backend."""
    with running(database_url, tmp_path_factory.mktemp("server")) as server:
        yield server


@pytest.fixture
def server(running_server: Server, database_url: str) -> str:
    """The base URL of a running server whose database has just been emptied."""
    databases.empty_tables(database_url)
    return running_server.url
