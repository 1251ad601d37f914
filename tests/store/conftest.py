"""The stores the driver conformance suite runs against.

Adding a driver to the suite is one entry in ``HARNESSES``: a function that
builds the driver on a fresh, empty backend and says how to list everything
the backend holds (so tests can prove aborts and failures leave nothing).
Drivers needing an outside service should skip when it is not configured.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from glimpse.store import StoreDriver
from glimpse.store.filesystem import FilesystemStore


@dataclasses.dataclass
class StoreHarness:
    """A driver under test plus a view of its backend from the outside."""

    driver: StoreDriver
    #: Names of every object and temporary held by the backend, sorted.
    leftovers: Callable[[], list[str]]


def _filesystem(tmp_path: Path) -> StoreHarness:
    store = FilesystemStore(tmp_path / "images")
    return StoreHarness(store, lambda: sorted(os.listdir(store.datadir)))


HARNESSES: dict[str, Callable[[Path], StoreHarness]] = {
    "filesystem": _filesystem,
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> StoreHarness:
    return HARNESSES[request.param](tmp_path)


@pytest.fixture
def driver(harness: StoreHarness) -> StoreDriver:
    return harness.driver


@pytest.fixture
def image_id() -> str:
    return str(uuid.uuid4())
