"""Fixtures of the API tests beyond the shared ones: multi-store deployments."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from glimpse import config
from glimpse.http.app import create_app
from glimpse.runtime import Runtime
from tests.support import databases
from tests.support.multistore import STORES, MultiStore, conf_text


@pytest.fixture
def make_multi(database_url: str, tmp_path: Path) -> Iterator[Callable[..., MultiStore]]:
    """Build multi-store APIs; ``extra`` is merged, group by group, into :data:`STORES`."""
    databases.empty_tables(database_url)
    built: list[tuple[Runtime, TestClient]] = []

    def factory(extra: dict[str, dict[str, object]] | None = None) -> MultiStore:
        options = {group: dict(values) for group, values in STORES.items()}
        for group, values in (extra or {}).items():
            options.setdefault(group, {}).update(values)
        options["DEFAULT"].update(data_dir=tmp_path / "data")
        options["database"] = {"connection": database_url.replace("$", "$$")}
        path = tmp_path / f"glimpse-{len(built)}.conf"
        path.write_text(conf_text(options))
        rt = Runtime.build(config.new_conf(["--config-file", str(path)]))
        client = TestClient(create_app(rt), raise_server_exceptions=False)
        built.append((rt, client))
        return MultiStore(rt, client)

    yield factory
    for rt, client in built:
        client.close()
        rt.close()
