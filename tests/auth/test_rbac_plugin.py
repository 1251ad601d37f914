"""What glance-tempest-plugin's RBAC tests check, against a real Keystone (see docs/tempest.md).

Glance hides an image whenever a rule refuses the caller and ``get_image`` refuses it
too: 404, as for a missing image, rather than 403. Under ``enforce_scope`` a
system-scoped token is refused by every project-scoped rule, so a system
administrator — an administrator by role — gets 404 for every operation on a
project's image (the plugin's ``os_system_admin`` checks), while a project reader who
sees the image still gets 403 for what it may not do.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.auth.conftest import as_token
from tests.auth.keystone_server import Keystone
from tests.support.client import Api

SCOPED = {"oslo_policy__enforce_new_defaults": True, "oslo_policy__enforce_scope": True}
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def scoped_api(keystone: Keystone, keystone_api: Callable[..., Api]) -> Api:
    return keystone_api(**SCOPED)


def _operations(image_id: str, member: str) -> list[tuple[str, str, dict[str, object]]]:
    members = f"/v2/images/{image_id}/members"
    rename = [{"op": "replace", "path": "/name", "value": "renamed"}]
    return [
        ("GET", f"/v2/images/{image_id}", {}),
        ("PATCH", f"/v2/images/{image_id}", {"json_patch": rename}),
        ("POST", f"/v2/images/{image_id}/actions/deactivate", {}),
        ("POST", f"/v2/images/{image_id}/actions/reactivate", {}),
        ("GET", f"/v2/images/{image_id}/file", {}),
        ("PUT", f"/v2/images/{image_id}/tags/t1", {}),
        ("GET", members, {}),
        ("GET", f"{members}/{member}", {}),
        ("POST", members, {"json": {"member": "someone-else"}}),
        ("PUT", f"{members}/{member}", {"json": {"status": "rejected"}}),
        ("DELETE", f"{members}/{member}", {}),
        ("DELETE", f"/v2/images/{image_id}", {}),
    ]


def _call(api: Api, method: str, path: str, options: dict[str, object]) -> int:
    if "json_patch" in options:
        return int(api.patch(path, options["json_patch"]).status_code)
    return int(api.request(method, path, **options).status_code)


def test_a_system_scoped_admin_finds_no_project_image(keystone: Keystone, scoped_api: Api) -> None:
    alice = as_token(scoped_api, keystone.token("alice", "alpha"))
    image = alice.create_image(
        name="shared-in-alpha", disk_format="raw", container_format="bare", visibility="shared"
    )
    put = alice.put(f"/v2/images/{image['id']}/file", content=b"x" * 512, headers=OCTET)
    assert put.status_code == 204
    beta = keystone.ids["project:beta"]
    assert alice.post(f"/v2/images/{image['id']}/members", json={"member": beta}).status_code == 200

    system_admin = as_token(scoped_api, keystone.token("admin", scope={"system": {"all": True}}))
    for method, path, options in _operations(image["id"], beta):
        status = _call(system_admin, method, path, options)
        assert status == 404, f"{method} {path}: {status}"
    # upload to a queued image of the project, and create/list, which name no image: 403
    queued = alice.create_image(name="queued", disk_format="raw", container_format="bare")
    upload = system_admin.put(f"/v2/images/{queued['id']}/file", content=b"x", headers=OCTET)
    assert upload.status_code == 404
    assert system_admin.post("/v2/images", json={"name": "x"}).status_code == 403
    assert system_admin.get("/v2/images").status_code == 403

    # nothing changed, and the same admin scoped to a project may do it all
    assert alice.get(f"/v2/images/{image['id']}").json()["name"] == "shared-in-alpha"
    project_admin = as_token(scoped_api, keystone.admin_token())
    deactivate = f"/v2/images/{image['id']}/actions/deactivate"
    assert project_admin.post(deactivate).status_code == 204
    assert project_admin.get(f"/v2/images/{image['id']}/members").status_code == 200
    assert project_admin.delete(f"/v2/images/{image['id']}").status_code == 204


def test_a_reader_who_sees_the_image_is_refused_with_403(
    keystone: Keystone, scoped_api: Api
) -> None:
    alice = as_token(scoped_api, keystone.token("alice", "alpha"))
    ann = as_token(scoped_api, keystone.token("ann", "alpha"))
    bob = as_token(scoped_api, keystone.token("bob", "beta"))
    image = alice.create_image(name="private", disk_format="raw", container_format="bare")
    alice.put(f"/v2/images/{image['id']}/file", content=b"x" * 512, headers=OCTET)
    deactivate = f"/v2/images/{image['id']}/actions/deactivate"
    assert ann.post(deactivate).status_code == 403  # sees it, may not change it
    assert ann.get(f"/v2/images/{image['id']}/file").status_code == 403  # download: member
    assert bob.post(deactivate).status_code == 404  # another project's private image
    assert alice.post(deactivate).status_code == 204


def test_a_member_lists_the_members_of_an_image_shared_with_it(
    keystone: Keystone, scoped_api: Api
) -> None:
    # glance-tempest-plugin ImagesProjectMemberTests.test_list_image_members: the image is
    # shared with the caller's project and another one, not yet accepted by either.
    alice = as_token(scoped_api, keystone.token("alice", "alpha"))
    bob = as_token(scoped_api, keystone.token("bob", "beta"))
    carol_token = keystone.token(
        "carol", "gamma", domain="glimpse-dom", project_domain="glimpse-dom"
    )
    carol = as_token(scoped_api, carol_token)
    image = alice.create_image(name="s", disk_format="raw", container_format="bare")
    alice.patch(
        f"/v2/images/{image['id']}", [{"op": "replace", "path": "/visibility", "value": "shared"}]
    )
    members = f"/v2/images/{image['id']}/members"
    beta, gamma = keystone.ids["project:beta"], keystone.ids["project:gamma"]
    for project in (beta, gamma):
        assert alice.post(members, json={"member": project}).status_code == 200

    listed = bob.get(members)
    assert listed.status_code == 200, listed.text
    assert [m["member_id"] for m in listed.json()["members"]] == [beta]
    assert bob.get(f"{members}/{beta}").json()["status"] == "pending"
    assert bob.get(f"{members}/{gamma}").status_code == 404  # another member's record
    assert bob.put(f"{members}/{gamma}", json={"status": "accepted"}).status_code == 403
    assert bob.put(f"{members}/{beta}", json={"status": "accepted"}).status_code == 200
    assert {m["member_id"] for m in alice.get(members).json()["members"]} == {beta, gamma}
    assert carol.get(members).json()["members"][0]["status"] == "pending"
