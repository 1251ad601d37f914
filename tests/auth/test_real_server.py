"""A real glimpse-api process with the keystone flavor, driven over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.keystone_server import PASSWORD, Keystone
from tests.support import databases
from tests.support.server import Server, running


@pytest.fixture
def server(keystone: Keystone, database_url: str, tmp_path: Path) -> Iterator[Server]:
    databases.empty_tables(database_url)
    options: dict[str, dict[str, object]] = {
        "DEFAULT": {"allow_anonymous_access": "false"},
        "paste_deploy": {"flavor": "keystone"},
        "keystone_authtoken": {
            "www_authenticate_uri": keystone.url,
            "auth_type": "password",
            "auth_url": keystone.url,
            "username": "glance",
            "password": PASSWORD,
            "project_name": "service",
            "user_domain_id": "default",
            "project_domain_id": "default",
            "memcached_servers": "127.0.0.1:11211",
            "token_cache_time": 60,
        },
        "oslo_policy": {"enforce_new_defaults": "true"},
    }
    with running(database_url, tmp_path, options) as server:
        yield server


def test_keystone_flavor_over_http(keystone: Keystone, server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as http:
        refused = http.get("/v2/images")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == f'Keystone uri="{keystone.url}"'
        assert http.get("/v2/images", headers={"X-Auth-Token": "nope"}).status_code == 401

        alice = {"X-Auth-Token": keystone.token("alice", "alpha")}
        created = http.post("/v2/images", json={"name": "over-http"}, headers=alice)
        assert created.status_code == 201, created.text
        assert created.json()["owner"] == keystone.ids["project:alpha"]
        listed = http.get("/v2/images", headers=alice).json()["images"]
        assert [i["name"] for i in listed] == ["over-http"]

        ann = {"X-Auth-Token": keystone.token("ann", "alpha")}
        assert http.post("/v2/images", json={"name": "x"}, headers=ann).status_code == 403
        bob = {"X-Auth-Token": keystone.token("bob", "beta")}
        assert http.get(f"/v2/images/{created.json()['id']}", headers=bob).status_code == 404
