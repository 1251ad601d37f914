"""Who sees which image: the listing union and single-image reads, per project."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.client import Api


class World:
    """Images of every visibility owned by alice, bob, ops (an admin project) and nobody.

    bob is a member of several of alice's shared images with each member status;
    carol has accepted one of them; dave is related to nothing.
    """

    def __init__(self, api: Api) -> None:
        self.api = api
        self.ids: dict[str, str] = {}
        alice, bob = api.as_("alice"), api.as_("bob")
        ops = api.as_("ops", roles="admin")

        self._make("a_public", ops, owner="alice", visibility="public")
        self._make("a_private", alice, visibility="private")
        self._make("a_shared_none", alice, visibility="shared")
        self._make("a_shared_accepted", alice, visibility="shared")
        self._make("a_shared_pending", alice, visibility="shared")
        self._make("a_shared_rejected", alice, visibility="shared")
        self._make("a_community", alice, visibility="community")
        self._make("a_unshared", alice, visibility="shared")
        self._make("a_hidden_shared", alice, visibility="shared", os_hidden=True)
        self._make("b_public", ops, owner="bob", visibility="public")
        self._make("b_private", bob, visibility="private")
        self._make("b_shared", bob)
        self._make("b_community", bob, visibility="community")
        self._make("n_public", ops, owner=None, visibility="public")
        self._make("n_private", api, visibility="private")
        self._make("n_shared", api, visibility="shared")
        self._make("n_community", api, visibility="community")
        self._make("o_private", ops, visibility="private")
        self._make("o_community", ops, visibility="community")

        for name, status in [
            ("a_shared_accepted", "accepted"),
            ("a_shared_pending", "pending"),
            ("a_shared_rejected", "rejected"),
            ("a_unshared", "accepted"),
            ("a_hidden_shared", "accepted"),
        ]:
            self.share(name, "bob", status)
        self.share("a_shared_pending", "carol", "accepted")
        response = alice.patch(
            f"/v2/images/{self.ids['a_unshared']}",
            [{"op": "replace", "path": "/visibility", "value": "private"}],
        )
        assert response.status_code == 200, response.text

    def _make(self, name: str, api: Api, **body: Any) -> None:
        image = api.create_image(name=name, **body)
        assert image["owner"] == body.get("owner", image["owner"])
        self.ids[name] = image["id"]

    def share(self, name: str, member: str, status: str) -> None:
        image_id = self.ids[name]
        response = self.api.as_("alice").post(
            f"/v2/images/{image_id}/members", json={"member": member}
        )
        assert response.status_code == 200, response.text
        if status != "pending":
            response = self.api.as_(member).put(
                f"/v2/images/{image_id}/members/{member}", json={"status": status}
            )
            assert response.status_code == 200, response.text

    def listed(self, api: Api, **params: str) -> list[str]:
        """Names of the images ``api`` lists, sorted; duplicates are kept so they show."""
        response = api.get("/v2/images", params={"limit": "1000", **params})
        assert response.status_code == 200, response.text
        by_id = {v: k for k, v in self.ids.items()}
        return sorted(by_id[image["id"]] for image in response.json()["images"])

    def get_status(self, api: Api, name: str) -> int:
        code: int = api.get(f"/v2/images/{self.ids[name]}").status_code
        return code


@pytest.fixture
def world(api: Api) -> World:
    return World(api)


def names(*items: str) -> list[str]:
    return sorted(items)


BOB_OWN = ("b_public", "b_private", "b_shared", "b_community")
PUBLIC = ("a_public", "b_public", "n_public")
COMMUNITY = ("a_community", "b_community", "n_community", "o_community")


def test_member_sees_public_own_and_accepted_shares(world: World) -> None:
    assert world.listed(world.api.as_("bob")) == names(
        *BOB_OWN, "a_public", "n_public", "a_shared_accepted"
    )


@pytest.mark.parametrize(
    ("status", "shared"),
    [
        ("accepted", ["a_shared_accepted"]),
        ("pending", ["a_shared_pending"]),
        ("rejected", ["a_shared_rejected"]),
        ("all", ["a_shared_accepted", "a_shared_pending", "a_shared_rejected"]),
    ],
)
def test_member_status_picks_which_shares_are_listed(
    world: World, status: str, shared: list[str]
) -> None:
    bob = world.api.as_("bob")
    assert world.listed(bob, member_status=status) == names(
        *BOB_OWN, "a_public", "n_public", *shared
    )
    assert world.listed(bob, member_status=status, visibility="shared") == names(
        "b_shared", *shared
    )


def test_visibility_filter_for_a_member(world: World) -> None:
    bob = world.api.as_("bob")
    assert world.listed(bob, visibility="private") == ["b_private"]
    assert world.listed(bob, visibility="public") == names(*PUBLIC)
    assert world.listed(bob, visibility="shared") == names("b_shared", "a_shared_accepted")
    assert world.listed(bob, visibility="community") == names(*COMMUNITY)
    assert world.listed(bob, visibility="community", member_status="pending") == names(*COMMUNITY)


def test_hidden_share_is_listed_only_when_asking_for_hidden(world: World) -> None:
    bob = world.api.as_("bob")
    assert world.listed(bob, os_hidden="true") == ["a_hidden_shared"]
    assert world.listed(bob, os_hidden="true", member_status="pending") == []
    assert world.get_status(bob, "a_hidden_shared") == 200


def test_unrelated_project_sees_only_public_and_its_own(world: World) -> None:
    dave = world.api.as_("dave")
    assert world.listed(dave) == names(*PUBLIC)
    assert world.listed(dave, member_status="all") == names(*PUBLIC)
    assert world.listed(dave, visibility="shared", member_status="all") == []
    assert world.listed(dave, visibility="private") == []
    mine = dave.create_image(name="d", visibility="community")["id"]
    world.ids["d_community"] = mine
    assert world.listed(dave) == names(*PUBLIC, "d_community")
    assert world.listed(dave, visibility="community") == names(*COMMUNITY, "d_community")


def test_second_member_sees_only_its_own_share(world: World) -> None:
    carol = world.api.as_("carol")
    assert world.listed(carol) == names(*PUBLIC, "a_shared_pending")


def test_owner_sees_all_its_images_including_community(world: World) -> None:
    alice = world.api.as_("alice")
    own = [
        "a_public",
        "a_private",
        "a_shared_none",
        "a_shared_accepted",
        "a_shared_pending",
        "a_shared_rejected",
        "a_community",
        "a_unshared",
    ]
    assert world.listed(alice) == names(*own, "b_public", "n_public")
    assert world.listed(alice, visibility="shared") == names(
        "a_shared_none", "a_shared_accepted", "a_shared_pending", "a_shared_rejected"
    )
    assert world.listed(alice, visibility="private") == names("a_private", "a_unshared")
    assert world.listed(alice, os_hidden="true") == ["a_hidden_shared"]


def test_project_ids_match_exactly(world: World) -> None:
    shouting = world.api.as_("ALICE")
    assert world.listed(shouting) == names(*PUBLIC)
    assert world.listed(shouting, visibility="private") == []
    assert world.get_status(shouting, "a_private") == 404
    assert world.listed(world.api.as_("BOB"), member_status="all") == names(*PUBLIC)


NOT_COMMUNITY = (
    "a_public",
    "a_private",
    "a_shared_none",
    "a_shared_accepted",
    "a_shared_pending",
    "a_shared_rejected",
    "a_unshared",
    "b_public",
    "b_private",
    "b_shared",
    "n_public",
    "n_private",
    "n_shared",
    "o_private",
)


def test_admin_without_project_sees_everything_but_community(world: World) -> None:
    admin = world.api
    assert world.listed(admin) == names(*NOT_COMMUNITY)
    assert world.listed(admin, member_status="pending") == names(*NOT_COMMUNITY)
    assert world.listed(admin, visibility="community") == names(*COMMUNITY)
    assert world.listed(admin, visibility="private") == names(
        "a_private", "a_unshared", "b_private", "n_private", "o_private"
    )
    assert world.listed(admin, visibility="shared") == names(
        "a_shared_none",
        "a_shared_accepted",
        "a_shared_pending",
        "a_shared_rejected",
        "b_shared",
        "n_shared",
    )
    assert world.listed(admin, os_hidden="true") == ["a_hidden_shared"]


def test_admin_in_a_project_also_sees_its_own_community_images(world: World) -> None:
    ops = world.api.as_("ops", roles="admin")
    assert world.listed(ops) == names(*NOT_COMMUNITY, "o_community")
    assert world.listed(ops, member_status="rejected") == names(*NOT_COMMUNITY, "o_community")
    assert world.listed(ops, visibility="community") == names(*COMMUNITY)
    assert world.listed(ops, owner="alice") == names(
        "a_public",
        "a_private",
        "a_shared_none",
        "a_shared_accepted",
        "a_shared_pending",
        "a_shared_rejected",
        "a_unshared",
    )


@pytest.mark.parametrize("value", ["all", "everyone", "Public", "private,public"])
def test_unknown_visibility_is_400(world: World, value: str) -> None:
    for api in (world.api, world.api.as_("bob")):
        response = api.get("/v2/images", params={"visibility": value})
        assert response.status_code == 400, (value, response.text)


@pytest.mark.parametrize("value", ["maybe", "Accepted", "", "shared"])
def test_unknown_member_status_is_400(world: World, value: str) -> None:
    for api in (world.api, world.api.as_("bob")):
        response = api.get("/v2/images", params={"member_status": value})
        assert response.status_code == 400, (value, response.text)


GET_BY = {
    "bob": {
        200: [
            *BOB_OWN,
            "a_public",
            "a_shared_accepted",
            "a_shared_pending",
            "a_shared_rejected",
            "a_hidden_shared",
            "a_community",
            "o_community",
            "n_public",
            "n_private",
            "n_shared",
            "n_community",
        ],
        404: ["a_private", "a_shared_none", "a_unshared", "o_private"],
    },
    "carol": {
        200: ["a_shared_pending", "a_public", "a_community", "n_private", "n_shared"],
        404: [
            "a_shared_accepted",
            "a_shared_rejected",
            "a_hidden_shared",
            "a_private",
            "b_private",
            "b_shared",
            "o_private",
        ],
    },
    "alice": {
        200: ["a_private", "a_unshared", "a_shared_none", "b_public", "b_community"],
        404: ["b_private", "b_shared", "o_private"],
    },
}


@pytest.mark.parametrize("project", sorted(GET_BY))
def test_show_is_200_or_404_never_403(world: World, project: str) -> None:
    api = world.api.as_(project)
    for expected, image_names in GET_BY[project].items():
        for name in image_names:
            response = api.get(f"/v2/images/{world.ids[name]}")
            assert response.status_code == expected, (project, name, response.text)
            if expected == 200:
                assert response.json()["id"] == world.ids[name]
    assert api.get(f"/v2/images/{uuid.uuid4()}").status_code == 404


def test_admin_reads_every_image(world: World) -> None:
    for api in (world.api, world.api.as_("ops", roles="admin")):
        for name, image_id in world.ids.items():
            assert api.get(f"/v2/images/{image_id}").status_code == 200, name


def test_null_owner_images_are_readable_but_not_listed(world: World) -> None:
    bob = world.api.as_("bob")
    for name in ("n_private", "n_shared", "n_community"):
        assert world.get_status(bob, name) == 200
    listed = world.listed(bob, member_status="all")
    assert "n_private" not in listed and "n_shared" not in listed
    assert "n_community" not in listed
    assert "n_community" in world.listed(bob, visibility="community")


def test_removing_a_member_hides_the_image_again(world: World) -> None:
    bob = world.api.as_("bob")
    image_id = world.ids["a_shared_accepted"]
    response = world.api.as_("alice").delete(f"/v2/images/{image_id}/members/bob")
    assert response.status_code == 204
    assert "a_shared_accepted" not in world.listed(bob, member_status="all")
    assert world.get_status(bob, "a_shared_accepted") == 404


def test_membership_counts_again_when_the_image_is_shared_again(world: World) -> None:
    bob = world.api.as_("bob")
    assert world.get_status(bob, "a_unshared") == 404
    response = world.api.as_("alice").patch(
        f"/v2/images/{world.ids['a_unshared']}",
        [{"op": "replace", "path": "/visibility", "value": "shared"}],
    )
    assert response.status_code == 200
    assert "a_unshared" in world.listed(bob)
    assert world.get_status(bob, "a_unshared") == 200


def test_member_status_change_moves_the_image_between_lists(world: World) -> None:
    bob = world.api.as_("bob")
    image_id = world.ids["a_shared_pending"]
    assert "a_shared_pending" not in world.listed(bob)
    response = bob.put(f"/v2/images/{image_id}/members/bob", json={"status": "accepted"})
    assert response.status_code == 200
    assert "a_shared_pending" in world.listed(bob)
    assert "a_shared_pending" not in world.listed(bob, member_status="pending")
    bob.put(f"/v2/images/{image_id}/members/bob", json={"status": "rejected"})
    assert "a_shared_pending" not in world.listed(bob)
    assert "a_shared_pending" in world.listed(bob, member_status="rejected")


def test_marker_must_be_an_image_the_caller_may_read(world: World) -> None:
    bob = world.api.as_("bob")
    for name in ("a_private", "a_shared_none", "o_private"):
        response = bob.get("/v2/images", params={"marker": world.ids[name]})
        assert response.status_code == 400, name
    for name in ("a_shared_pending", "n_private", "a_community"):
        response = bob.get("/v2/images", params={"marker": world.ids[name]})
        assert response.status_code == 200, name


def test_owner_is_user_when_owner_is_tenant_is_false(make_api: Callable[..., Api]) -> None:
    api = make_api(owner_is_tenant=False)
    u1, u2 = api.as_("p1", user="u1"), api.as_("p1", user="u2")
    image = u1.create_image(name="mine", visibility="private")
    assert [i["id"] for i in u1.get("/v2/images").json()["images"]] == [image["id"]]
    assert u2.get("/v2/images").json()["images"] == []
    assert u2.get(f"/v2/images/{image['id']}").status_code == 404
    response = u1.post(
        f"/v2/images/{u1.create_image(name='s')['id']}/members", json={"member": "u2"}
    )
    assert response.status_code == 200
    shared_id = response.json()["image_id"]
    listed = u2.get("/v2/images", params={"member_status": "pending"}).json()["images"]
    assert [i["id"] for i in listed] == [shared_id]
