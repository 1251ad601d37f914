"""The keystone flavor against a real Keystone: tokens, caching, revocation, expiry, context."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.http.keystone import KeystoneIdentity, TokenInfo
from glimpse.runtime import Runtime
from tests.auth.conftest import as_token, keystone_options
from tests.auth.keystone_server import SHORT_LIFETIME, Keystone
from tests.support.client import Api


def _challenge(keystone: Keystone) -> str:
    return f'Keystone uri="{keystone.url}"'


def test_member_creates_and_lists_images(
    keystone: Keystone, keystone_api: Callable[..., Api]
) -> None:
    alice = as_token(keystone_api(), keystone.token("alice", "alpha"))
    image = alice.create_image(name="alpha-image")
    assert image["owner"] == keystone.ids["project:alpha"]
    listed = alice.get("/v2/images")
    assert listed.status_code == 200
    assert [i["id"] for i in listed.json()["images"]] == [image["id"]]


def test_missing_token_is_refused_with_a_keystone_challenge(
    keystone: Keystone, keystone_api: Callable[..., Api]
) -> None:
    response = as_token(keystone_api(), None).get("/v2/images")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == _challenge(keystone)


def test_version_discovery_needs_no_token(keystone_api: Callable[..., Api]) -> None:
    api = as_token(keystone_api(), None)
    assert api.get("/versions").status_code == 200
    assert api.get("/healthcheck").status_code == 200


def test_garbage_token_is_refused(keystone: Keystone, keystone_api: Callable[..., Api]) -> None:
    api = keystone_api()
    for token in ("garbage", "alice:alpha:admin", "gAAAAABnot-a-real-fernet-token"):
        response = as_token(api, token).get("/v2/images")
        assert response.status_code == 401, token
        assert response.headers["WWW-Authenticate"] == _challenge(keystone)


def test_anonymous_access_reads_public_images_only(
    keystone: Keystone, keystone_api: Callable[..., Api]
) -> None:
    api = keystone_api(allow_anonymous_access=True)
    admin = as_token(api, keystone.admin_token())
    public = admin.create_image(name="public", visibility="public")
    admin.create_image(name="private", visibility="private")
    anonymous = as_token(api, None)
    listed = anonymous.get("/v2/images")
    assert listed.status_code == 200
    assert [i["id"] for i in listed.json()["images"]] == [public["id"]]
    refused = anonymous.post("/v2/images", json={"name": "nope"})
    assert refused.status_code == 403
    # Glance's context middleware treats an invalid token like none at all.
    assert as_token(api, "garbage").get("/v2/images").status_code == 200


def test_projects_are_isolated(keystone: Keystone, keystone_api: Callable[..., Api]) -> None:
    api = keystone_api()
    alice = as_token(api, keystone.token("alice", "alpha"))
    bob = as_token(api, keystone.token("bob", "beta"))
    private = alice.create_image(name="alpha-only", visibility="private")
    assert bob.get(f"/v2/images/{private['id']}").status_code == 404
    assert bob.get("/v2/images").json()["images"] == []
    assert bob.delete(f"/v2/images/{private['id']}").status_code == 404
    assert alice.get(f"/v2/images/{private['id']}").status_code == 200


def test_revocation_is_seen_once_the_cache_time_is_over(
    keystone: Keystone, keystone_api: Callable[..., Api]
) -> None:
    cache_time = 3.0
    api = keystone_api(keystone_authtoken__token_cache_time=int(cache_time))
    token = keystone.token("alice", "alpha")
    alice = as_token(api, token)
    assert alice.get("/v2/images").status_code == 200
    confirmed = time.monotonic()
    keystone.revoke(token)
    if time.monotonic() - confirmed < cache_time - 0.5:
        # Within token_cache_time the confirmation is trusted (keystonemiddleware's trade-off)...
        assert alice.get("/v2/images").status_code == 200
    time.sleep(max(0.0, cache_time + 0.2 - (time.monotonic() - confirmed)))
    # ...after it Keystone is asked again and says the token is revoked.
    response = alice.get("/v2/images")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == _challenge(keystone)


def test_without_a_cache_revocation_bites_at_once(
    keystone: Keystone, keystone_api: Callable[..., Api]
) -> None:
    api = keystone_api(keystone_authtoken__token_cache_time=0)
    token = keystone.token("bob", "beta")
    bob = as_token(api, token)
    assert bob.get("/v2/images").status_code == 200
    keystone.revoke(token)
    assert bob.get("/v2/images").status_code == 401


def test_expired_token_is_refused(
    keystone: Keystone, short_lived_keystone: Keystone, keystone_api: Callable[..., Api]
) -> None:
    api = keystone_api(keystone_authtoken__token_cache_time=300)
    # Glimpse gets its own service token first, so the short-lived one is used at once.
    assert as_token(api, keystone.token("bob", "beta")).get("/v2/images").status_code == 200
    token = short_lived_keystone.token("alice", "alpha")
    issued = time.monotonic()
    alice = as_token(api, token)
    assert alice.get("/v2/images").status_code == 200
    # The cache never outlives the token: once expired Keystone is asked again, and refuses.
    time.sleep(max(0.0, SHORT_LIFETIME + 0.5 - (time.monotonic() - issued)))
    response = alice.get("/v2/images")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == _challenge(keystone)


def test_unreachable_keystone_is_503(keystone: Keystone, keystone_api: Callable[..., Api]) -> None:
    from tests.support.server import free_port

    closed = f"http://127.0.0.1:{free_port()}/v3"
    api = keystone_api(
        keystone_authtoken__auth_url=closed, keystone_authtoken__http_connect_timeout=5
    )
    response = as_token(api, keystone.token("alice", "alpha")).get("/v2/images")
    assert response.status_code == 503


def test_wrong_service_password_is_503_not_401(
    keystone: Keystone, keystone_api: Callable[..., Api]
) -> None:
    api = keystone_api(keystone_authtoken__password="wrong")
    response = as_token(api, keystone.token("alice", "alpha")).get("/v2/images")
    assert response.status_code == 503


# -- the request context -------------------------------------------------------------


def _identify(rt: Runtime, headers: dict[str, str]) -> RequestContext:
    identity = KeystoneIdentity(rt.conf, rt.policy)
    lowered = {k.lower(): v for k, v in headers.items()}
    return asyncio.run(identity.identify(lowered, "req-test"))


def test_context_of_a_project_token(
    keystone: Keystone, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(**keystone_options(keystone))
    token = keystone.token("carol", "gamma", domain="glimpse-dom", project_domain="glimpse-dom")
    context = _identify(rt, {"X-Auth-Token": token})
    domain = keystone.ids["domain:glimpse-dom"]
    assert context.user_id == keystone.ids["user:carol"]
    assert context.project_id == keystone.ids["project:gamma"]
    assert (context.user_domain_id, context.project_domain_id) == (domain, domain)
    assert sorted(context.roles) == ["member", "reader"]
    assert context.auth_token == token
    assert context.is_admin is False and context.read_only is False
    assert context.system_scope is None and context.domain_id is None
    assert context.service_roles == []


def test_context_of_admin_and_system_tokens(
    keystone: Keystone, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(**keystone_options(keystone))
    admin = _identify(rt, {"X-Auth-Token": keystone.admin_token()})
    assert admin.is_admin is True
    assert {"admin", "member", "reader"} <= set(admin.roles)
    assert admin.project_domain_id == "default" and admin.user_domain_id == "default"
    system = _identify(
        rt, {"X-Auth-Token": keystone.token("admin", scope={"system": {"all": True}})}
    )
    assert system.system_scope == "all"
    assert system.project_id is None
    assert system.is_admin is True


def test_roles_are_lower_cased_and_admin_role_is_configurable(
    keystone: Keystone, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(**keystone_options(keystone, admin_role="READER"))
    context = _identify(rt, {"X-Auth-Token": keystone.token("ann", "alpha")})
    assert context.roles == ["reader"]
    assert context.is_admin is True


def test_service_token_roles(keystone: Keystone, make_runtime: Callable[..., Runtime]) -> None:
    rt = make_runtime(**keystone_options(keystone))
    user = keystone.token("alice", "alpha")
    service = keystone.token("glance", "service")
    context = _identify(rt, {"X-Auth-Token": user, "X-Service-Token": service})
    assert context.user_id == keystone.ids["user:alice"]
    assert context.service_roles == ["service"]
    with pytest.raises(errors.Unauthorized):
        _identify(rt, {"X-Auth-Token": user, "X-Service-Token": "garbage"})
    # A token without a service role is tolerated, unless roles are required.
    assert _identify(rt, {"X-Auth-Token": user, "X-Service-Token": user}).user_id
    strict = make_runtime(
        **keystone_options(keystone, keystone_authtoken__service_token_roles_required=True)
    )
    with pytest.raises(errors.Unauthorized):
        _identify(strict, {"X-Auth-Token": user, "X-Service-Token": user})
    assert _identify(strict, {"X-Auth-Token": user, "X-Service-Token": service}).service_roles


def test_client_identity_headers_are_ignored(
    keystone: Keystone, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(**keystone_options(keystone))
    headers = {
        "X-Auth-Token": keystone.token("bob", "beta"),
        "X-Project-Id": keystone.ids["project:alpha"],
        "X-Roles": "admin",
        "X-Identity-Status": "Confirmed",
    }
    context = _identify(rt, headers)
    assert context.project_id == keystone.ids["project:beta"]
    assert context.is_admin is False


def test_validations_are_cached(keystone: Keystone, make_runtime: Callable[..., Runtime]) -> None:
    rt = make_runtime(**keystone_options(keystone))
    identity = KeystoneIdentity(rt.conf, rt.policy)
    token = keystone.token("alice", "alpha")
    asked: list[str] = []
    validate = identity._validator.validate

    def counting(token: str) -> TokenInfo | None:
        asked.append(token)
        return validate(token)

    identity._validator.validate = counting  # type: ignore[method-assign]

    async def twice(token: str) -> None:
        for _ in range(2):
            try:
                await identity.identify({"x-auth-token": token}, "req-test")
            except errors.Unauthorized:
                pass

    asyncio.run(twice(token))
    asyncio.run(twice("garbage"))
    assert asked == [token, "garbage"]
    assert len(identity.cache) == 2
