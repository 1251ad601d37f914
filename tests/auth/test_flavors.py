"""The flavors without a Keystone: trusted-auth, flavor selection, and the token cache's rules."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from glimpse import config, errors
from glimpse.http import identity
from glimpse.http.app import create_app
from glimpse.http.keystone import (
    KeystoneIdentity,
    KeystoneUnavailable,
    TokenCache,
    TokenInfo,
    identity_base_url,
)
from glimpse.policy import Policy
from glimpse.runtime import Runtime
from tests.support.client import Api

# -- trusted-auth ----------------------------------------------------------------------


def test_trusted_auth_without_identity_is_401(make_api: Callable[..., Api]) -> None:
    api = make_api(paste_deploy__flavor="trusted-auth")
    response = api.get("/v2/images")
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers


def test_trusted_auth_takes_the_proxys_headers(make_api: Callable[..., Api]) -> None:
    api = make_api(paste_deploy__flavor="trusted-auth")
    alpha = api.as_("alpha", roles="Member")
    image = alpha.create_image(name="trusted")
    assert image["owner"] == "alpha"
    confirmed = {"X-Identity-Status": "Confirmed", "X-Project-Id": "beta", "X-Roles": "member"}
    assert api.get(f"/v2/images/{image['id']}", headers=confirmed).status_code == 404
    invalid = {**confirmed, "X-Identity-Status": "Invalid"}
    assert api.get("/v2/images", headers=invalid).status_code == 401


def test_trusted_auth_anonymous_access_is_read_only(make_api: Callable[..., Api]) -> None:
    api = make_api(paste_deploy__flavor="trusted-auth", allow_anonymous_access=True)
    api.as_("alpha", roles="admin").create_image(name="public", visibility="public")
    assert [i["name"] for i in api.get("/v2/images").json()["images"]] == ["public"]
    refused = api.post("/v2/images", json={"name": "anonymous"})
    assert refused.status_code == 403


def test_trusted_auth_reads_every_keystonemiddleware_header(
    make_runtime: Callable[..., Runtime],
) -> None:
    rt = make_runtime(paste_deploy__flavor="trusted-auth")
    headers = {
        "x-identity-status": "Confirmed",
        "x-user-id": "u1",
        "x-tenant-id": "p1",
        "x-roles": " Reader , MEMBER",
        "x-user-domain-id": "ud",
        "x-project-domain-id": "pd",
        "x-is-admin-project": "False",
        "x-service-roles": "Service",
        "x-auth-token": "opaque",
    }
    context = identity.trusted(rt.conf, rt.policy, headers, "req-1")
    assert (context.user_id, context.project_id) == ("u1", "p1")
    assert context.roles == ["reader", "member"]
    assert (context.user_domain_id, context.project_domain_id) == ("ud", "pd")
    assert context.is_admin_project is False
    assert context.service_roles == ["service"]
    assert context.auth_token == "opaque"
    assert context.is_admin is False and context.request_id == "req-1"
    system = identity.trusted(
        rt.conf,
        rt.policy,
        {"x-user-id": "u2", "openstack-system-scope": "all", "x-roles": "admin"},
        "req-2",
    )
    assert system.system_scope == "all" and system.is_admin is True


def test_no_flavor_keeps_the_administrator_fallback(make_api: Callable[..., Api]) -> None:
    created = make_api().post("/v2/images", json={"name": "no-auth"})
    assert created.status_code == 201
    assert created.json()["owner"] is None


@pytest.mark.parametrize("flavor", ["", "trusted-auth"])
def test_ids_no_owner_column_holds_are_400(make_api: Callable[..., Api], flavor: str) -> None:
    """A project or user id past 255 characters failed in PostgreSQL and MariaDB (500)
    and was kept whole by SQLite; a NUL failed in PostgreSQL."""
    api = make_api(paste_deploy__flavor=flavor)
    long = "p" * 256
    refused = [
        ({"X-Project-Id": long}, "The project id is longer than 255 characters."),
        ({"X-Tenant-Id": long}, "The project id is longer than 255 characters."),
        ({"X-Project-Id": "p", "X-User-Id": long}, "The user id is longer than 255 characters."),
    ]
    if not flavor:  # the test token is percent-decoded
        refused += [
            ({"X-Auth-Token": f"u:{long}:member"}, "The project id is longer than 255 characters."),
            ({"X-Auth-Token": "u:p%00:member"}, "The project id must not contain NUL characters."),
            ({"X-Auth-Token": "u%00:p:member"}, "The user id must not contain NUL characters."),
        ]
    for headers, message in refused:
        for method, path, body in (
            ("POST", "/v2/images", {"name": "x"}),
            ("POST", "/v2/metadefs/namespaces", {"namespace": "ns"}),
            ("GET", "/v2/images", None),
        ):
            roles = {} if "X-Auth-Token" in headers else {"X-Roles": "admin"}
            response = api.request(
                method,
                path,
                json=body,
                headers={"Accept": "application/json", **roles, **headers},
            )
            assert response.status_code == 400, (headers, path, response.text)
            assert response.json()["message"].startswith(message + "<br />")
    admin = api.as_("p" * 255, roles="admin", user="u" * 255)  # 255 characters fit
    assert admin.get("/v2/images").json()["images"] == []
    assert admin.get("/v2/metadefs/namespaces").json()["namespaces"] == []
    assert admin.create_image(name="fits")["owner"] == "p" * 255


def test_flavor_choice(make_runtime: Callable[..., Runtime]) -> None:
    with pytest.raises(ValueError, match="flavor"):
        create_app(make_runtime(paste_deploy__flavor="ldap"))
    with pytest.raises(ValueError, match="auth_type"):
        create_app(make_runtime(paste_deploy__flavor="keystone+caching"))
    create_app(make_runtime(paste_deploy__flavor="trusted-auth+cachemanagement"))
    create_app(make_runtime(paste_deploy__flavor="caching"))


# -- the keystone flavor's rules, with a stand-in for Keystone ------------------------


class FakeValidator:
    """Answers like TokenValidator, from a table, recording the threads it ran in."""

    base_url = "http://keystone.example:5000"

    def __init__(self, answers: dict[str, TokenInfo | None] | None = None) -> None:
        self.answers = answers or {}
        self.asked: list[str] = []
        self.threads: set[int] = set()
        self.down = False

    def validate(self, token: str) -> TokenInfo | None:
        self.threads.add(threading.get_ident())
        self.asked.append(token)
        if self.down:
            raise KeystoneUnavailable("connection refused")
        return self.answers.get(token)


def _keystone(**overrides: object) -> tuple[KeystoneIdentity, FakeValidator]:
    conf = config.new_conf([])
    for key, value in {"paste_deploy__flavor": "keystone", **overrides}.items():
        group, _, name = key.rpartition("__")
        conf.set_override(name, value, group=group or None)
    validator = FakeValidator()
    return KeystoneIdentity(conf, Policy(conf), validator), validator  # type: ignore[arg-type]


def _user(expires_in: float = 3600.0, **fields: object) -> TokenInfo:
    values: dict[str, object] = {"user_id": "u", "project_id": "p", "roles": ("member",)}
    values.update(fields)
    return TokenInfo(expires_at=time.time() + expires_in, **values)  # type: ignore[arg-type]


def _identify(keystone: KeystoneIdentity, token: str | None) -> object:
    headers = {"x-auth-token": token} if token else {}
    return asyncio.run(keystone.identify(headers, "req-x"))


def test_validation_runs_off_the_event_loop() -> None:
    keystone, validator = _keystone()
    validator.answers["t"] = _user()
    loop_threads: set[int] = set()

    async def run() -> None:
        loop_threads.add(threading.get_ident())
        await keystone.identify({"x-auth-token": "t"}, "req-x")

    asyncio.run(run())
    assert validator.threads and not validator.threads & loop_threads


def test_the_cache_never_outlives_the_token() -> None:
    keystone, validator = _keystone(keystone_authtoken__token_cache_time=300)
    validator.answers["short"] = _user(expires_in=1.5)
    _identify(keystone, "short")
    _identify(keystone, "short")
    assert validator.asked == ["short"]
    time.sleep(1.6)
    validator.answers["short"] = None  # Keystone: expired
    with pytest.raises(errors.Unauthorized):
        _identify(keystone, "short")
    assert validator.asked == ["short", "short"]


def test_the_cache_time_bounds_trust_in_a_confirmation() -> None:
    keystone, validator = _keystone(keystone_authtoken__token_cache_time=2)
    validator.answers["t"] = _user()
    _identify(keystone, "t")
    validator.answers["t"] = None  # revoked meanwhile
    _identify(keystone, "t")  # still trusted: confirmed less than 2 seconds ago
    time.sleep(2.1)
    with pytest.raises(errors.Unauthorized):
        _identify(keystone, "t")


def test_the_cache_is_a_bounded_lru() -> None:
    cache = TokenCache(2)
    from glimpse.http.keystone import _Entry

    now = time.time()
    for token in ("a", "b"):
        cache.put(token, _Entry(now + 60, _user()))
    assert cache.get("a", now) is not None  # "a" is now the most recent
    cache.put("c", _Entry(now + 60, None))
    assert len(cache) == 2
    assert cache.get("b", now) is None and cache.get("a", now) is not None
    assert cache.get("c", now) is not None and cache.get("c", now + 61) is None


def test_keystone_down_is_503_and_not_cached() -> None:
    keystone, validator = _keystone()
    validator.down = True
    with pytest.raises(errors.ServiceUnavailable):
        _identify(keystone, "t")
    validator.down = False
    validator.answers["t"] = _user()
    _identify(keystone, "t")
    assert validator.asked == ["t", "t"]


def test_challenge_names_www_authenticate_uri() -> None:
    keystone, _ = _keystone(keystone_authtoken__www_authenticate_uri="https://id.example/v3")
    with pytest.raises(errors.Unauthorized) as refused:
        _identify(keystone, None)
    assert refused.value.headers == {"WWW-Authenticate": 'Keystone uri="https://id.example/v3"'}
    default, _ = _keystone()
    with pytest.raises(errors.Unauthorized) as refused:
        _identify(default, "unknown")
    assert refused.value.headers == {
        "WWW-Authenticate": 'Keystone uri="http://keystone.example:5000"'
    }


def test_token_bodies_are_read_as_keystone_writes_them() -> None:
    body = {
        "token": {
            "expires_at": "2999-01-01T00:00:00.000000Z",
            "user": {"id": "u", "name": "alice", "domain": {"id": "d1", "name": "D1"}},
            "domain": {"id": "d2", "name": "D2"},
            "roles": [{"id": "r", "name": "Admin"}],
            "is_admin_project": False,
        }
    }
    info = TokenInfo.from_keystone(body)
    assert (info.user_id, info.user_domain_id, info.domain_id) == ("u", "d1", "d2")
    assert info.project_id is None and info.system_scope is None
    assert info.roles == ("admin",) and info.is_admin_project is False
    assert info.expires_at > time.time()
    token = {"expires_at": "2999-01-01T00:00:00Z", "user": {"id": "u"}, "system": {"all": True}}
    system = TokenInfo.from_keystone({"token": token})
    assert system.system_scope == "all" and system.roles == ()


def test_identity_base_url() -> None:
    assert identity_base_url("http://k:5000/v3/") == "http://k:5000"
    assert identity_base_url("http://k/identity/v3") == "http://k/identity"
    assert identity_base_url("http://k:5000") == "http://k:5000"


def test_only_the_unauthenticated_mode_is_held_to_loopback(tmp_path: Path) -> None:
    from glimpse.cmd import api

    conf = config.new_conf([])
    conf.set_override("data_dir", str(tmp_path))
    conf.set_override("bind_host", "0.0.0.0")
    with pytest.raises(SystemExit, match="refusing"):
        api.prepare(conf)
    for flavor in ("keystone", "trusted-auth"):
        conf.set_override("flavor", flavor, group="paste_deploy")
        api.prepare(conf).close()
