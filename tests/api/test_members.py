"""Sharing images with other projects: /v2/images/{id}/members, seen from every side."""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from glimpse.db.models import ImageMember
from tests.support.client import PATCH, Api

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
JSON = {"Accept": "application/json"}
MEMBER_KEYS = {"member_id", "image_id", "status", "created_at", "updated_at", "schema"}


def members_path(image_id: str, member: str | None = None) -> str:
    path = f"/v2/images/{image_id}/members"
    return f"{path}/{member}" if member else path


def add_member(api: Api, image_id: str, member: str) -> dict[str, Any]:
    response = api.post(members_path(image_id), json={"member": member})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def set_status(api: Api, image_id: str, member: str, status: str) -> dict[str, Any]:
    response = api.put(members_path(image_id, member), json={"status": status})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def listed_ids(api: Api, **params: str) -> set[str]:
    response = api.get("/v2/images", params=params)
    assert response.status_code == 200, response.text
    return {image["id"] for image in response.json()["images"]}


def member_ids(api: Api, image_id: str) -> list[str]:
    response = api.get(members_path(image_id))
    assert response.status_code == 200, response.text
    return sorted(m["member_id"] for m in response.json()["members"])


@pytest.fixture
def alice(api: Api) -> Api:
    """The owner of the images under test."""
    return api.as_("alice")


@pytest.fixture
def bob(api: Api) -> Api:
    return api.as_("bob")


@pytest.fixture
def carol(api: Api) -> Api:
    return api.as_("carol")


@pytest.fixture
def admin(api: Api) -> Api:
    return api.as_("ops", roles="admin")


@pytest.fixture
def shared(alice: Api) -> dict[str, Any]:
    image: dict[str, Any] = alice.create_image(name="shared", visibility="shared")
    return image


# --- adding members -----------------------------------------------------------------------


def test_owner_adds_a_member_with_200_and_member_json(alice: Api, shared: dict[str, Any]) -> None:
    response = alice.post(members_path(shared["id"]), json={"member": "bob"})
    assert response.status_code == 200
    assert "location" not in response.headers
    body = response.json()
    assert set(body) == MEMBER_KEYS
    assert body["member_id"] == "bob"
    assert body["image_id"] == shared["id"]
    assert body["status"] == "pending"
    assert body["schema"] == "/v2/schemas/member"
    assert TIMESTAMP.match(body["created_at"]) and TIMESTAMP.match(body["updated_at"])
    assert alice.get(members_path(shared["id"], "bob")).json() == body


def test_admin_adds_members_to_any_shared_image(
    admin: Api, bob: Api, shared: dict[str, Any]
) -> None:
    assert add_member(admin, shared["id"], "bob")["status"] == "pending"
    assert bob.get(f"/v2/images/{shared['id']}").status_code == 200


@pytest.mark.parametrize("visibility", ["private", "public", "community"])
def test_only_shared_images_have_members(api: Api, alice: Api, admin: Api, visibility: str) -> None:
    image = admin.create_image(name=visibility, visibility=visibility, owner="alice")
    path = members_path(image["id"])
    for caller in (alice, admin):
        response = caller.post(path, json={"member": "bob"}, headers=JSON)
        assert response.status_code == 403
        assert "Only shared images have members." in response.json()["message"]
        assert caller.get(path).status_code == 403
        assert caller.put(f"{path}/bob", json={"status": "accepted"}).status_code == 403
        assert caller.delete(f"{path}/bob").status_code == 403
        # Showing one member answers 404 instead of 403, so nothing leaks.
        assert caller.get(f"{path}/bob").status_code == 404


def test_members_cannot_add_members(
    alice: Api, bob: Api, carol: Api, shared: dict[str, Any]
) -> None:
    add_member(alice, shared["id"], "bob")
    set_status(bob, shared["id"], "bob", "accepted")
    assert bob.post(members_path(shared["id"]), json={"member": "carol"}).status_code == 403
    assert bob.post(members_path(shared["id"]), json={"member": "bob"}).status_code == 403
    assert member_ids(alice, shared["id"]) == ["bob"]
    assert carol.get(f"/v2/images/{shared['id']}").status_code == 404


def test_strangers_get_404(alice: Api, carol: Api, shared: dict[str, Any]) -> None:
    add_member(alice, shared["id"], "bob")
    path = members_path(shared["id"])
    assert carol.post(path, json={"member": "carol"}).status_code == 404
    assert carol.get(path).status_code == 404
    assert carol.get(f"{path}/bob").status_code == 404
    assert carol.put(f"{path}/bob", json={"status": "rejected"}).status_code == 404
    assert carol.delete(f"{path}/bob").status_code == 404
    assert member_ids(alice, shared["id"]) == ["bob"]


def test_missing_image_is_404(alice: Api) -> None:
    path = members_path(str(uuid.uuid4()))
    assert alice.post(path, json={"member": "bob"}).status_code == 404
    assert alice.get(path).status_code == 404
    assert alice.get(f"{path}/bob").status_code == 404
    assert alice.put(f"{path}/bob", json={"status": "accepted"}).status_code == 404
    assert alice.delete(f"{path}/bob").status_code == 404


def test_deleted_image_is_404(alice: Api, bob: Api, shared: dict[str, Any]) -> None:
    add_member(alice, shared["id"], "bob")
    assert alice.delete(f"/v2/images/{shared['id']}").status_code == 204
    assert alice.get(members_path(shared["id"])).status_code == 404
    assert bob.get(members_path(shared["id"], "bob")).status_code == 404
    assert alice.post(members_path(shared["id"]), json={"member": "carol"}).status_code == 404


@pytest.mark.parametrize(
    "content",
    [b"", b"{}", b"[]", b'["bob"]', b'{"member": ""}', b'{"members": "bob"}', b"{bad json"],
)
def test_bad_add_bodies_are_400(alice: Api, shared: dict[str, Any], content: bytes) -> None:
    response = alice.post(
        members_path(shared["id"]), content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert member_ids(alice, shared["id"]) == []


def test_content_type_is_not_checked_for_json_bodies(alice: Api, shared: dict[str, Any]) -> None:
    response = alice.post(
        members_path(shared["id"]),
        content=b'{"member": "bob"}',
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 200
    assert member_ids(alice, shared["id"]) == ["bob"]


def test_duplicate_member_is_409(alice: Api, shared: dict[str, Any]) -> None:
    add_member(alice, shared["id"], "bob")
    assert alice.post(members_path(shared["id"]), json={"member": "bob"}).status_code == 409
    assert member_ids(alice, shared["id"]) == ["bob"]


def test_member_ids_are_free_strings(alice: Api, shared: dict[str, Any]) -> None:
    for member in ("0123456789abcdef0123456789abcdef", "some project", "ünï", "m" * 255):
        added = add_member(alice, shared["id"], member)
        assert added["member_id"] == member
    assert len(member_ids(alice, shared["id"])) == 4


def test_member_ids_are_case_sensitive(
    alice: Api, shared: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    add_member(alice, shared["id"], "Bob")
    add_member(alice, shared["id"], "bob")
    assert member_ids(alice, shared["id"]) == ["Bob", "bob"]


def test_member_quota(make_api: Callable[..., Api]) -> None:
    api = make_api(image_member_quota=2)
    alice = api.as_("alice")
    image = alice.create_image(name="s", visibility="shared")
    add_member(alice, image["id"], "bob")
    add_member(alice, image["id"], "carol")
    assert alice.post(members_path(image["id"]), json={"member": "dave"}).status_code == 413
    assert member_ids(alice, image["id"]) == ["bob", "carol"]
    assert alice.delete(members_path(image["id"], "bob")).status_code == 204
    add_member(alice, image["id"], "dave")
    assert member_ids(alice, image["id"]) == ["carol", "dave"]
    # The quota counts per image.
    other = alice.create_image(name="s2", visibility="shared")
    add_member(alice, other["id"], "bob")


def test_zero_member_quota_refuses_all(make_api: Callable[..., Api]) -> None:
    api = make_api(image_member_quota=0)
    alice = api.as_("alice")
    image = alice.create_image(name="s", visibility="shared")
    assert alice.post(members_path(image["id"]), json={"member": "bob"}).status_code == 413


def test_negative_member_quota_is_unlimited(make_api: Callable[..., Api]) -> None:
    api = make_api(image_member_quota=-1)
    alice = api.as_("alice")
    image = alice.create_image(name="s", visibility="shared")
    # Rows straight into the database, to get past the default quota of 128 quickly.
    now = datetime.datetime(2001, 1, 1)
    with api.client.app.rt.db.transaction() as session:
        session.add_all(
            ImageMember(
                image_id=image["id"],
                member=f"p{i}",
                status="pending",
                can_share=False,
                created_at=now,
                updated_at=now,
                deleted=False,
            )
            for i in range(129)
        )
    add_member(alice, image["id"], "one-more")
    assert len(member_ids(alice, image["id"])) == 130


# --- member status ------------------------------------------------------------------------


def test_member_accepts_rejects_and_reconsiders(
    alice: Api, bob: Api, shared: dict[str, Any]
) -> None:
    created = add_member(alice, shared["id"], "bob")
    for status in ("accepted", "rejected", "pending", "accepted", "accepted"):
        body = set_status(bob, shared["id"], "bob", status)
        assert set(body) == MEMBER_KEYS
        assert body["status"] == status
        assert body["created_at"] == created["created_at"]
        assert alice.get(members_path(shared["id"], "bob")).json()["status"] == status


def test_owner_cannot_change_a_member_status(alice: Api, bob: Api, shared: dict[str, Any]) -> None:
    add_member(alice, shared["id"], "bob")
    response = alice.put(members_path(shared["id"], "bob"), json={"status": "accepted"})
    assert response.status_code == 403
    assert bob.get(members_path(shared["id"], "bob")).json()["status"] == "pending"


def test_another_member_cannot_change_a_member_status(
    alice: Api, bob: Api, carol: Api, shared: dict[str, Any]
) -> None:
    add_member(alice, shared["id"], "bob")
    add_member(alice, shared["id"], "carol")
    response = carol.put(members_path(shared["id"], "bob"), json={"status": "rejected"})
    assert response.status_code == 403
    assert alice.get(members_path(shared["id"], "bob")).json()["status"] == "pending"


def test_admin_changes_a_member_status(alice: Api, admin: Api, shared: dict[str, Any]) -> None:
    add_member(alice, shared["id"], "bob")
    assert set_status(admin, shared["id"], "bob", "accepted")["status"] == "accepted"


@pytest.mark.parametrize(
    "body", [{"status": "approved"}, {"status": "ACCEPTED"}, {"status": None}, {}, {"state": "x"}]
)
def test_invalid_status_is_400(
    alice: Api, bob: Api, shared: dict[str, Any], body: dict[str, Any]
) -> None:
    add_member(alice, shared["id"], "bob")
    response = bob.put(members_path(shared["id"], "bob"), json=body)
    assert response.status_code == 400
    assert bob.get(members_path(shared["id"], "bob")).json()["status"] == "pending"


def test_status_change_moves_updated_at(
    api: Api, alice: Api, bob: Api, shared: dict[str, Any]
) -> None:
    add_member(alice, shared["id"], "bob")
    runtime = api.client.app.rt
    with runtime.db.transaction() as session:
        session.execute(
            update(ImageMember)
            .where(ImageMember.image_id == shared["id"])
            .values(updated_at=datetime.datetime(2001, 1, 1))
        )
    assert bob.get(members_path(shared["id"], "bob")).json()["updated_at"] == "2001-01-01T00:00:00Z"
    body = set_status(bob, shared["id"], "bob", "accepted")
    assert body["updated_at"] > "2001-01-01T00:00:00Z"


def test_status_of_a_missing_member_is_404(alice: Api, admin: Api, shared: dict[str, Any]) -> None:
    response = admin.put(members_path(shared["id"], "nobody"), json={"status": "accepted"})
    assert response.status_code == 404


# --- listing and showing members ----------------------------------------------------------


def test_who_sees_which_member_records(
    api: Api, alice: Api, bob: Api, carol: Api, admin: Api, shared: dict[str, Any]
) -> None:
    add_member(alice, shared["id"], "bob")
    add_member(alice, shared["id"], "carol")
    response = alice.get(members_path(shared["id"]))
    assert response.status_code == 200
    body = response.json()
    assert body["schema"] == "/v2/schemas/members"
    assert all(set(m) == MEMBER_KEYS for m in body["members"])
    assert sorted(m["member_id"] for m in body["members"]) == ["bob", "carol"]
    assert member_ids(admin, shared["id"]) == ["bob", "carol"]
    assert member_ids(api, shared["id"]) == ["bob", "carol"]
    assert member_ids(bob, shared["id"]) == ["bob"]
    assert member_ids(carol, shared["id"]) == ["carol"]


def test_owner_lists_no_members(alice: Api, shared: dict[str, Any]) -> None:
    response = alice.get(members_path(shared["id"]))
    assert response.status_code == 200
    assert response.json() == {"members": [], "schema": "/v2/schemas/members"}


def test_showing_member_records(
    alice: Api, bob: Api, carol: Api, admin: Api, shared: dict[str, Any]
) -> None:
    add_member(alice, shared["id"], "bob")
    add_member(alice, shared["id"], "carol")
    bob_record = bob.get(members_path(shared["id"], "bob"))
    assert bob_record.status_code == 200
    assert set(bob_record.json()) == MEMBER_KEYS
    assert alice.get(members_path(shared["id"], "carol")).json()["member_id"] == "carol"
    assert admin.get(members_path(shared["id"], "carol")).json()["member_id"] == "carol"
    # A member sees its own record only; others look as if they did not exist.
    assert bob.get(members_path(shared["id"], "carol")).status_code == 404
    assert bob.get(members_path(shared["id"], "nobody")).status_code == 404
    assert alice.get(members_path(shared["id"], "nobody")).status_code == 404


def test_non_members_of_an_ownerless_shared_image(api: Api, bob: Api, carol: Api) -> None:
    """Images without an owner are visible to everyone, their member lists are not."""
    image = api.create_image(name="ownerless", visibility="shared")
    add_member(api, image["id"], "bob")
    assert carol.get(f"/v2/images/{image['id']}").status_code == 200
    assert carol.get(members_path(image["id"])).status_code == 403
    assert carol.get(members_path(image["id"], "bob")).status_code == 404
    assert carol.post(members_path(image["id"]), json={"member": "carol"}).status_code == 403
    assert member_ids(bob, image["id"]) == ["bob"]
    assert bob.delete(members_path(image["id"], "bob")).status_code == 403


# --- deleting members ---------------------------------------------------------------------


def test_owner_deletes_a_member_and_its_access_ends(
    alice: Api, bob: Api, shared: dict[str, Any]
) -> None:
    add_member(alice, shared["id"], "bob")
    set_status(bob, shared["id"], "bob", "accepted")
    assert shared["id"] in listed_ids(bob)
    response = alice.delete(members_path(shared["id"], "bob"))
    assert response.status_code == 204
    assert response.content == b""
    assert member_ids(alice, shared["id"]) == []
    assert bob.get(f"/v2/images/{shared['id']}").status_code == 404
    assert shared["id"] not in listed_ids(bob)
    assert shared["id"] not in listed_ids(bob, member_status="all")
    assert alice.delete(members_path(shared["id"], "bob")).status_code == 404


def test_members_cannot_delete_members(
    alice: Api, bob: Api, carol: Api, shared: dict[str, Any]
) -> None:
    add_member(alice, shared["id"], "bob")
    add_member(alice, shared["id"], "carol")
    assert bob.delete(members_path(shared["id"], "bob")).status_code == 403
    assert bob.delete(members_path(shared["id"], "carol")).status_code == 403
    assert member_ids(alice, shared["id"]) == ["bob", "carol"]


def test_admin_deletes_members(alice: Api, admin: Api, shared: dict[str, Any]) -> None:
    add_member(alice, shared["id"], "bob")
    assert admin.delete(members_path(shared["id"], "bob")).status_code == 204
    assert member_ids(alice, shared["id"]) == []


def test_deleting_a_missing_member_is_404(alice: Api, shared: dict[str, Any]) -> None:
    assert alice.delete(members_path(shared["id"], "nobody")).status_code == 404


def test_a_deleted_member_can_be_added_again(alice: Api, bob: Api, shared: dict[str, Any]) -> None:
    add_member(alice, shared["id"], "bob")
    set_status(bob, shared["id"], "bob", "accepted")
    assert alice.delete(members_path(shared["id"], "bob")).status_code == 204
    again = add_member(alice, shared["id"], "bob")
    assert again["status"] == "pending"
    assert bob.get(f"/v2/images/{shared['id']}").status_code == 200
    assert shared["id"] not in listed_ids(bob)


def test_bodies_are_refused_where_none_is_expected(alice: Api, shared: dict[str, Any]) -> None:
    add_member(alice, shared["id"], "bob")
    path = members_path(shared["id"], "bob")
    assert alice.request("DELETE", path, content=b"{}").status_code == 400
    assert alice.request("GET", path, content=b"{}").status_code == 400
    assert alice.request("GET", members_path(shared["id"]), content=b"{}").status_code == 400
    assert member_ids(alice, shared["id"]) == ["bob"]


# --- what membership grants -------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "accepted", "rejected"])
def test_member_access_does_not_depend_on_status(
    alice: Api, bob: Api, shared: dict[str, Any], status: str
) -> None:
    add_member(alice, shared["id"], "bob")
    if status != "pending":
        set_status(bob, shared["id"], "bob", status)
    response = bob.get(f"/v2/images/{shared['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == shared["id"]


def test_status_decides_the_default_listing(
    alice: Api, bob: Api, carol: Api, shared: dict[str, Any]
) -> None:
    add_member(alice, shared["id"], "bob")
    assert shared["id"] not in listed_ids(bob)
    assert shared["id"] in listed_ids(bob, member_status="pending")
    assert shared["id"] in listed_ids(bob, member_status="all")
    assert shared["id"] not in listed_ids(bob, member_status="accepted")

    set_status(bob, shared["id"], "bob", "accepted")
    assert shared["id"] in listed_ids(bob)
    assert shared["id"] in listed_ids(bob, visibility="shared")
    assert shared["id"] not in listed_ids(bob, member_status="pending")

    set_status(bob, shared["id"], "bob", "rejected")
    assert shared["id"] not in listed_ids(bob)
    assert shared["id"] in listed_ids(bob, member_status="rejected")
    assert shared["id"] in listed_ids(bob, member_status="rejected", visibility="shared")
    assert shared["id"] in listed_ids(bob, member_status="all")

    # Others' memberships do not list the image for carol, nor does the owner need one.
    assert shared["id"] not in listed_ids(carol, member_status="all")
    assert shared["id"] in listed_ids(alice)


def test_leaving_shared_visibility_suspends_membership(
    alice: Api, bob: Api, shared: dict[str, Any]
) -> None:
    add_member(alice, shared["id"], "bob")
    set_status(bob, shared["id"], "bob", "accepted")
    path = f"/v2/images/{shared['id']}"
    for visibility in ("private", "shared"):
        response = alice.patch(
            path, [{"op": "replace", "path": "/visibility", "value": visibility}]
        )
        assert response.status_code == 200
        if visibility == "private":
            assert bob.get(path).status_code == 404
            assert shared["id"] not in listed_ids(bob, member_status="all")
            assert bob.get(members_path(shared["id"], "bob")).status_code == 404
            assert alice.get(members_path(shared["id"])).status_code == 403
    # Back to shared: the kept member row grants access again, with its old status.
    assert bob.get(path).status_code == 200
    assert shared["id"] in listed_ids(bob)
    assert member_ids(alice, shared["id"]) == ["bob"]
    assert bob.get(members_path(shared["id"], "bob")).json()["status"] == "accepted"


def test_community_image_members_do_not_matter(
    alice: Api, bob: Api, carol: Api, shared: dict[str, Any]
) -> None:
    add_member(alice, shared["id"], "bob")
    response = alice.patch(
        f"/v2/images/{shared['id']}",
        [{"op": "replace", "path": "/visibility", "value": "community"}],
    )
    assert response.status_code == 200
    # Everyone sees a community image; its members cannot be managed any more.
    assert carol.get(f"/v2/images/{shared['id']}").status_code == 200
    assert alice.get(members_path(shared["id"])).status_code == 403


def test_members_cannot_modify_the_image(alice: Api, bob: Api, shared: dict[str, Any]) -> None:
    add_member(alice, shared["id"], "bob")
    set_status(bob, shared["id"], "bob", "accepted")
    path = f"/v2/images/{shared['id']}"
    change = [{"op": "replace", "path": "/name", "value": "mine now"}]
    assert bob.patch(path, change, media_type=PATCH).status_code == 403
    assert bob.delete(path).status_code == 403
    assert alice.get(path).json()["name"] == "shared"


def test_sharing_with_users_when_owner_is_not_tenant(make_api: Callable[..., Api]) -> None:
    api = make_api(owner_is_tenant=False)
    owner = api.as_("p1", user="u1")
    image = owner.create_image(name="s", visibility="shared")
    assert image["owner"] == "u1"
    add_member(owner, image["id"], "u2")
    other_user_same_project = api.as_("p1", user="u3")
    assert other_user_same_project.get(f"/v2/images/{image['id']}").status_code == 404
    invited = api.as_("p2", user="u2")
    assert invited.get(f"/v2/images/{image['id']}").status_code == 200
    assert set_status(invited, image["id"], "u2", "accepted")["status"] == "accepted"
    assert image["id"] in listed_ids(invited)


# --- policy -------------------------------------------------------------------------------


def test_member_policies_are_enforced(policy_api: Callable[[dict[str, str]], Api]) -> None:
    api = policy_api(
        {
            "add_member": "role:admin",
            "modify_member": "role:admin",
            "get_member": "role:admin",
            "get_members": "role:admin",
            "delete_member": "role:admin",
        }
    )
    alice, bob, admin = api.as_("alice"), api.as_("bob"), api.as_("ops", roles="admin")
    image = alice.create_image(name="s", visibility="shared")
    path = members_path(image["id"])
    assert alice.post(path, json={"member": "bob"}).status_code == 403
    add_member(admin, image["id"], "bob")
    assert bob.put(f"{path}/bob", json={"status": "accepted"}).status_code == 403
    assert bob.get(path).status_code == 403
    assert bob.get(f"{path}/bob").status_code == 404  # a refused show looks like a missing one
    assert alice.delete(f"{path}/bob").status_code == 403
    assert member_ids(admin, image["id"]) == ["bob"]
