"""A real ``glimpse-api`` for the tests that drive real clients.

One server per database backend serves the whole session (the ``database_url``
fixture is session-scoped too); each test starts from emptied tables.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import databases
from tests.support.server import Server, running


@pytest.fixture(scope="session")
def running_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server process per database backend."""
    with running(database_url, tmp_path_factory.mktemp("server")) as server:
        yield server


@pytest.fixture
def server(running_server: Server, database_url: str) -> str:
    """The base URL of a running server whose database has just been emptied."""
    databases.empty_tables(database_url)
    return running_server.url
