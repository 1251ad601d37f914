"""Fixtures of the import tests that run real servers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.support.imports import Source


@pytest.fixture(scope="module")
def source() -> Iterator[Source]:
    """A web-download source on 127.0.0.1 for the module's tests."""
    server = Source()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
