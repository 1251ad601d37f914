"""Adding and removing single image tags (PUT/DELETE /v2/images/{id}/tags/{tag})."""

from __future__ import annotations

import datetime
import urllib.parse
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import update

from glimpse.db.models import Image
from tests.support.client import Api

LONG_AGO = datetime.datetime(2001, 1, 1)
JSON = {"Accept": "application/json"}


def tag_path(image_id: str, tag: str) -> str:
    return f"/v2/images/{image_id}/tags/{urllib.parse.quote(tag, safe='')}"


def tags_of(api: Api, image_id: str) -> list[str]:
    response = api.get(f"/v2/images/{image_id}")
    assert response.status_code == 200
    return sorted(response.json()["tags"])


def backdate(api: Api, image_id: str) -> None:
    runtime = api.client.app.rt
    with runtime.db.transaction() as session:
        session.execute(update(Image).where(Image.id == image_id).values(updated_at=LONG_AGO))


def on_mysql(request: pytest.FixtureRequest) -> bool:
    url: str = request.getfixturevalue("database_url")
    return url.startswith("mysql")


def test_put_adds_a_tag_and_is_idempotent(api: Api) -> None:
    image = api.create_image(name="t", tags=["old"])
    response = api.put(tag_path(image["id"], "new"))
    assert response.status_code == 204
    assert response.content == b""
    assert tags_of(api, image["id"]) == ["new", "old"]
    assert api.put(tag_path(image["id"], "new")).status_code == 204
    assert api.put(tag_path(image["id"], "old")).status_code == 204
    assert tags_of(api, image["id"]) == ["new", "old"]


def test_tags_show_in_listing_filters(api: Api) -> None:
    tagged = api.create_image(name="tagged")
    api.create_image(name="other")
    assert api.put(tag_path(tagged["id"], "gold")).status_code == 204
    listed = api.get("/v2/images", params={"tag": "gold"}).json()["images"]
    assert [i["id"] for i in listed] == [tagged["id"]]
    assert api.delete(tag_path(tagged["id"], "gold")).status_code == 204
    assert api.get("/v2/images", params={"tag": "gold"}).json()["images"] == []


def test_tag_length_limit(api: Api) -> None:
    image = api.create_image(name="t")
    assert api.put(tag_path(image["id"], "x" * 255)).status_code == 204
    assert api.put(tag_path(image["id"], "é" * 255)).status_code == 204
    assert api.put(tag_path(image["id"], "y" * 256)).status_code == 400
    assert api.put(tag_path(image["id"], "é" * 256)).status_code == 400
    assert tags_of(api, image["id"]) == ["x" * 255, "é" * 255]


def test_unusual_but_valid_tags(api: Api) -> None:
    image = api.create_image(name="t")
    for tag in ("with space", "ünïcödé", "a.b-c_d", "snow☃", "100%", "q?x=1", "#hash"):
        assert api.put(tag_path(image["id"], tag)).status_code == 204, tag
    assert tags_of(api, image["id"]) == sorted(
        ["with space", "ünïcödé", "a.b-c_d", "snow☃", "100%", "q?x=1", "#hash"]
    )
    assert api.delete(tag_path(image["id"], "with space")).status_code == 204
    assert "with space" not in tags_of(api, image["id"])


def test_four_byte_characters_are_400(api: Api) -> None:
    image = api.create_image(name="t")
    assert api.put(tag_path(image["id"], "smile\U0001f600")).status_code == 400
    assert tags_of(api, image["id"]) == []


def test_tags_are_case_sensitive(api: Api, request: pytest.FixtureRequest) -> None:
    image = api.create_image(name="t", tags=["Gold"])
    assert api.put(tag_path(image["id"], "gold")).status_code == 204
    assert tags_of(api, image["id"]) == ["Gold", "gold"]
    assert api.delete(tag_path(image["id"], "GOLD")).status_code == 404
    assert api.delete(tag_path(image["id"], "gold")).status_code == 204
    assert tags_of(api, image["id"]) == ["Gold"]


def test_tag_quota(make_api: Callable[..., Api]) -> None:
    api = make_api(image_tag_quota=2)
    image = api.create_image(name="t", tags=["a"])
    assert api.put(tag_path(image["id"], "b")).status_code == 204
    # Re-adding a tag the image has is not growth.
    assert api.put(tag_path(image["id"], "a")).status_code == 204
    assert api.put(tag_path(image["id"], "c")).status_code == 413
    assert tags_of(api, image["id"]) == ["a", "b"]
    assert api.delete(tag_path(image["id"], "a")).status_code == 204
    assert api.put(tag_path(image["id"], "c")).status_code == 204
    assert tags_of(api, image["id"]) == ["b", "c"]


def test_zero_and_negative_tag_quota(make_api: Callable[..., Api]) -> None:
    none_allowed = make_api(image_tag_quota=0)
    image = none_allowed.create_image(name="t")
    assert none_allowed.put(tag_path(image["id"], "a")).status_code == 413
    # Beyond the default quota of 128.
    unlimited = make_api(image_tag_quota=-1)
    image = unlimited.create_image(name="t", tags=[f"t{i}" for i in range(129)])
    assert unlimited.put(tag_path(image["id"], "one-more")).status_code == 204
    assert len(tags_of(unlimited, image["id"])) == 130


def test_delete_removes_only_that_tag(api: Api) -> None:
    image = api.create_image(name="t", tags=["a", "b"])
    response = api.delete(tag_path(image["id"], "a"))
    assert response.status_code == 204
    assert response.content == b""
    assert tags_of(api, image["id"]) == ["b"]


def test_delete_of_a_missing_tag_is_404(api: Api) -> None:
    image = api.create_image(name="t", tags=["a"])
    assert api.delete(tag_path(image["id"], "never")).status_code == 404
    assert api.delete(tag_path(image["id"], "a")).status_code == 204
    assert api.delete(tag_path(image["id"], "a")).status_code == 404
    assert tags_of(api, image["id"]) == []


def test_missing_or_deleted_image_is_404(api: Api) -> None:
    missing = str(uuid.uuid4())
    assert api.put(tag_path(missing, "a")).status_code == 404
    assert api.delete(tag_path(missing, "a")).status_code == 404
    image = api.create_image(name="t", tags=["a"])
    assert api.delete(f"/v2/images/{image['id']}").status_code == 204
    assert api.put(tag_path(image["id"], "b")).status_code == 404
    assert api.delete(tag_path(image["id"], "a")).status_code == 404


def test_only_the_owner_or_an_admin_changes_tags(api: Api) -> None:
    alice, bob = api.as_("alice"), api.as_("bob")
    shared = alice.create_image(name="shared", tags=["a"])
    assert (
        alice.post(f"/v2/images/{shared['id']}/members", json={"member": "bob"}).status_code == 200
    )
    community = alice.create_image(name="community", visibility="community", tags=["a"])
    for image in (shared, community):
        assert bob.get(f"/v2/images/{image['id']}").status_code == 200
        assert bob.put(tag_path(image["id"], "b")).status_code == 403
        assert bob.delete(tag_path(image["id"], "a")).status_code == 403
        assert tags_of(alice, image["id"]) == ["a"]
    admin = api.as_("ops", roles="admin")
    assert admin.put(tag_path(shared["id"], "b")).status_code == 204
    assert admin.delete(tag_path(shared["id"], "a")).status_code == 204
    assert tags_of(alice, shared["id"]) == ["b"]


def test_images_of_others_are_404(api: Api) -> None:
    alice, bob = api.as_("alice"), api.as_("bob")
    private = alice.create_image(name="private", visibility="private", tags=["a"])
    assert bob.put(tag_path(private["id"], "b")).status_code == 404
    assert bob.delete(tag_path(private["id"], "a")).status_code == 404
    assert tags_of(alice, private["id"]) == ["a"]


def test_images_without_owner_are_admin_only(api: Api) -> None:
    image = api.create_image(name="ownerless", tags=["a"])
    alice = api.as_("alice")
    assert alice.put(tag_path(image["id"], "b")).status_code == 403
    assert alice.delete(tag_path(image["id"], "a")).status_code == 403
    assert api.put(tag_path(image["id"], "b")).status_code == 204
    assert tags_of(api, image["id"]) == ["a", "b"]


def test_a_body_is_not_allowed(api: Api) -> None:
    image = api.create_image(name="t", tags=["a"])
    response = api.put(tag_path(image["id"], "b"), content=b'{"tag": "b"}', headers=JSON)
    assert response.status_code == 400
    assert response.json()["message"].startswith("A body is not expected with this request.")
    response = api.delete(tag_path(image["id"], "a"), content=b"x", headers=JSON)
    assert response.status_code == 400
    assert tags_of(api, image["id"]) == ["a"]


def test_tag_changes_move_updated_at(api: Api) -> None:
    image = api.create_image(name="t", tags=["a"])
    backdate(api, image["id"])
    assert api.put(tag_path(image["id"], "b")).status_code == 204
    after_put = api.get(f"/v2/images/{image['id']}").json()["updated_at"]
    assert after_put > "2001-01-01T00:00:00Z"
    backdate(api, image["id"])
    assert api.delete(tag_path(image["id"], "a")).status_code == 204
    assert api.get(f"/v2/images/{image['id']}").json()["updated_at"] > "2001-01-01T00:00:00Z"


def test_failed_tag_changes_leave_updated_at(make_api: Callable[..., Api]) -> None:
    api = make_api(image_tag_quota=1)
    image = api.create_image(name="t", tags=["a"])
    backdate(api, image["id"])
    before = api.get(f"/v2/images/{image['id']}").json()
    assert api.put(tag_path(image["id"], "b")).status_code == 413
    assert api.delete(tag_path(image["id"], "zzz")).status_code == 404
    assert api.get(f"/v2/images/{image['id']}").json() == before


def test_other_methods_are_405(api: Api) -> None:
    image = api.create_image(name="t", tags=["a"])
    for method in ("GET", "POST", "PATCH"):
        response = api.request(method, tag_path(image["id"], "a"))
        assert response.status_code == 405, method
        assert set(response.headers["allow"].replace(" ", "").split(",")) == {"PUT", "DELETE"}
