"""Fixtures shared by every test: real databases and an in-process API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from glimpse import config
from glimpse.http.app import create_app
from glimpse.policy import Policy
from glimpse.runtime import Runtime
from tests.support import databases
from tests.support.client import Api


@pytest.fixture(scope="session", params=databases.backends())
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database on each configured backend, shared by the session's tests."""
    url = databases.create_database(request.param, str(tmp_path_factory.mktemp("db")))
    yield url
    databases.drop_database(url)


@pytest.fixture
def make_runtime(database_url: str, tmp_path: Any) -> Iterator[Callable[..., Runtime]]:
    """Build runtimes on an emptied database; keyword arguments override [DEFAULT] options,
    ``group__name=value`` overrides an option of another group."""
    databases.empty_tables(database_url)
    built: list[Runtime] = []

    def factory(**overrides: Any) -> Runtime:
        conf = config.new_conf([])
        conf.set_override("data_dir", str(tmp_path / "data"))
        conf.set_override("connection", database_url, group="database")
        for key, value in overrides.items():
            group, _, name = key.rpartition("__")
            conf.set_override(name, value, group=group or None)
        rt = Runtime.build(conf)
        built.append(rt)
        return rt

    yield factory
    for rt in built:
        rt.close()


@pytest.fixture
def make_api(make_runtime: Callable[..., Runtime]) -> Iterator[Callable[..., Api]]:
    clients: list[TestClient] = []

    def factory(**overrides: Any) -> Api:
        client = TestClient(create_app(make_runtime(**overrides)), raise_server_exceptions=False)
        clients.append(client)
        return Api(client)

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """The API with the default configuration, acting as admin (no identity headers)."""
    return make_api()


@pytest.fixture
def policy_api(
    make_runtime: Callable[..., Runtime], tmp_path: Any
) -> Iterator[Callable[[dict[str, str]], Api]]:
    """An API whose policy file overrides the given rules."""
    clients: list[TestClient] = []

    def factory(rules: dict[str, str]) -> Api:
        path = tmp_path / "policy.json"
        path.write_text(json.dumps(rules))
        runtime = make_runtime()
        runtime.conf.set_override("policy_file", str(path), group="oslo_policy")
        runtime.policy = Policy(runtime.conf)
        client = TestClient(create_app(runtime), raise_server_exceptions=False)
        clients.append(client)
        return Api(client)

    yield factory
    for client in clients:
        client.close()
