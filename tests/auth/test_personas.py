"""Policies with real Keystone tokens: Rocky's defaults, the new personas, scope, overrides."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.auth.conftest import as_token
from tests.auth.keystone_server import Keystone
from tests.support.client import Api

NEW_DEFAULTS = {"oslo_policy__enforce_new_defaults": True}


def test_rocky_defaults_remain_the_default(
    keystone: Keystone, keystone_api: Callable[..., Api]
) -> None:
    api = keystone_api()
    reader = as_token(api, keystone.token("ann", "alpha"))
    # Rocky's add_image is open to anyone with a token, a reader included.
    assert reader.create_image(name="by-a-reader")["owner"] == keystone.ids["project:alpha"]
    member = as_token(api, keystone.token("alice", "alpha"))
    namespace = {"namespace": "alpha-ns", "visibility": "private"}
    assert member.post("/v2/metadefs/namespaces", json=namespace).status_code == 201
    assert member.post("/v2/images", json={"visibility": "public"}).status_code == 403


def test_reader_member_and_admin_under_the_new_defaults(
    keystone: Keystone, keystone_api: Callable[..., Api]
) -> None:
    api = keystone_api(**NEW_DEFAULTS)
    admin = as_token(api, keystone.admin_token())
    alice = as_token(api, keystone.token("alice", "alpha"))
    ann = as_token(api, keystone.token("ann", "alpha"))
    bob = as_token(api, keystone.token("bob", "beta"))

    # reader: reads the project's images, changes nothing
    image = alice.create_image(name="alpha-image", disk_format="raw", container_format="bare")
    assert ann.get("/v2/images").json()["images"][0]["id"] == image["id"]
    assert ann.get(f"/v2/images/{image['id']}").status_code == 200
    assert ann.post("/v2/images", json={"name": "nope"}).status_code == 403
    rename = [{"op": "replace", "path": "/name", "value": "renamed"}]
    assert ann.patch(f"/v2/images/{image['id']}", rename).status_code == 403
    assert alice.patch(f"/v2/images/{image['id']}", rename).status_code == 200

    # member: owns its project's images, cannot publish; an admin can
    assert alice.post("/v2/images", json={"visibility": "public"}).status_code == 403
    assert admin.create_image(name="public", visibility="public")["visibility"] == "public"

    # another project's member sees nothing private of alpha
    assert bob.get(f"/v2/images/{image['id']}").status_code == 404

    # sharing: the owner's member adds, the consumer's member accepts, a reader can't add
    members = f"/v2/images/{image['id']}/members"
    beta = keystone.ids["project:beta"]
    assert ann.post(members, json={"member": beta}).status_code == 403
    assert alice.post(members, json={"member": beta}).status_code == 200
    accepted = bob.put(f"{members}/{beta}", json={"status": "accepted"})
    assert accepted.status_code == 200, accepted.text
    assert bob.get(f"/v2/images/{image['id']}").status_code == 200

    # metadef writes are an admin's; readers read
    namespace = {"namespace": "new-defaults-ns", "visibility": "public"}
    assert alice.post("/v2/metadefs/namespaces", json=namespace).status_code == 403
    assert admin.post("/v2/metadefs/namespaces", json=namespace).status_code == 201
    assert ann.get("/v2/metadefs/namespaces/new-defaults-ns").status_code == 200
    assert ann.get("/v2/metadefs/resource_types").status_code == 200


def test_enforce_scope_refuses_system_scoped_tokens(
    keystone: Keystone, keystone_api: Callable[..., Api]
) -> None:
    system_token = keystone.token("admin", scope={"system": {"all": True}})
    scoped = keystone_api(**NEW_DEFAULTS, oslo_policy__enforce_scope=True)
    assert as_token(scoped, system_token).get("/v2/images").status_code == 403
    assert as_token(scoped, keystone.admin_token()).get("/v2/images").status_code == 200
    unscoped = keystone_api(**NEW_DEFAULTS)
    assert as_token(unscoped, system_token).get("/v2/images").status_code == 200


def test_policy_file_overrides_a_default(
    keystone: Keystone, keystone_api: Callable[..., Api], tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"add_image": "role:admin"\n"get_images": "role:admin"\n')
    api = keystone_api(oslo_policy__policy_file=str(policy_file))
    alice = as_token(api, keystone.token("alice", "alpha"))
    denied = alice.post("/v2/images", json={"name": "nope"})
    assert denied.status_code == 403
    assert "add_image" in denied.text
    assert alice.get("/v2/images").status_code == 403
    admin = as_token(api, keystone.admin_token())
    assert admin.create_image(name="admin-only")["name"] == "admin-only"
    # Unmentioned rules keep their defaults.
    assert alice.get("/v2/schemas/image").status_code == 200


def test_policy_file_overrides_a_new_default(
    keystone: Keystone, keystone_api: Callable[..., Api], tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"add_metadef_namespace": "role:member"}))
    api = keystone_api(**NEW_DEFAULTS, oslo_policy__policy_file=str(policy_file))
    alice = as_token(api, keystone.token("alice", "alpha"))
    namespace = {"namespace": "member-ns", "visibility": "private"}
    assert alice.post("/v2/metadefs/namespaces", json=namespace).status_code == 201
    tag = alice.post("/v2/metadefs/namespaces/member-ns/tags/t1")
    assert tag.status_code == 403  # add_metadef_tag keeps its new default
