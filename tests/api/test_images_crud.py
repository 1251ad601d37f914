"""Creating, showing, updating and deleting image records."""

from __future__ import annotations

import re
import uuid

from tests.support.client import Api

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_create_returns_every_base_attribute(api: Api) -> None:
    response = api.post(
        "/v2/images",
        json={
            "name": "cirros",
            "disk_format": "qcow2",
            "container_format": "bare",
            "os_distro": "cirros",
            "tags": ["a", "b", "a"],
        },
    )
    assert response.status_code == 201
    image = response.json()
    assert response.headers["location"].endswith(f"/v2/images/{image['id']}")
    assert response.headers["openstack-image-import-methods"] == "glance-direct,web-download"
    assert image["status"] == "queued"
    assert image["visibility"] == "shared"
    assert image["protected"] is False and image["os_hidden"] is False
    assert image["min_ram"] == 0 and image["min_disk"] == 0
    for attr in ("checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size"):
        assert image[attr] is None
    assert sorted(image["tags"]) == ["a", "b"]
    assert image["os_distro"] == "cirros"
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert TIMESTAMP.match(image["created_at"]) and TIMESTAMP.match(image["updated_at"])
    assert "locations" not in image and "direct_url" not in image


def test_show_returns_what_create_returned(api: Api) -> None:
    created = api.create_image(name="x")
    shown = api.get(f"/v2/images/{created['id']}")
    assert shown.status_code == 200
    assert shown.json() == created


def test_client_supplied_id_is_honoured_and_never_reused(api: Api) -> None:
    image_id = str(uuid.uuid4())
    assert api.create_image(id=image_id)["id"] == image_id
    assert api.post("/v2/images", json={"id": image_id}).status_code == 409
    assert api.delete(f"/v2/images/{image_id}").status_code == 204
    again = api.post("/v2/images", json={"id": image_id})
    assert again.status_code == 409


def test_bad_id_is_400(api: Api) -> None:
    assert api.post("/v2/images", json={"id": "not-a-uuid"}).status_code == 400


def test_read_only_and_reserved_attributes_on_create_are_403(api: Api) -> None:
    for attr in (
        "status",
        "checksum",
        "size",
        "created_at",
        "self",
        "file",
        "schema",
        "os_hash_value",
        "direct_url",
        "virtual_size",
    ):
        response = api.post("/v2/images", json={attr: "x"})
        assert response.status_code == 403, attr
    for attr in ("location", "locations", "deleted", "deleted_at"):
        assert api.post("/v2/images", json={attr: "x"}).status_code == 403, attr
    assert api.get("/v2/images").json()["images"] == []


def test_extra_properties_must_be_strings(api: Api) -> None:
    assert api.post("/v2/images", json={"foo": 1}).status_code == 400
    assert api.post("/v2/images", json={"foo": None}).status_code == 400
    assert api.post("/v2/images", json={"foo": "1"}).status_code == 201


def test_schema_violations_are_400(api: Api) -> None:
    bad_bodies = [
        {"name": "x" * 256},
        {"visibility": "everyone"},
        {"disk_format": "floppy"},
        {"container_format": "crate"},
        {"min_ram": -1},
        {"min_disk": 2**31},
        {"min_ram": "1"},
        {"protected": "yes"},
        {"tags": "a"},
        {"tags": ["x" * 256]},
        {"kernel_id": "not-a-uuid"},
    ]
    for body in bad_bodies:
        assert api.post("/v2/images", json=body).status_code == 400, body


def test_delete_then_404(api: Api) -> None:
    image = api.create_image(name="gone")
    assert api.delete(f"/v2/images/{image['id']}").status_code == 204
    assert api.get(f"/v2/images/{image['id']}").status_code == 404
    assert api.delete(f"/v2/images/{image['id']}").status_code == 404
    assert api.get("/v2/images").json()["images"] == []


def test_protected_image_cannot_be_deleted(api: Api) -> None:
    image = api.create_image(protected=True)
    assert api.delete(f"/v2/images/{image['id']}").status_code == 403
    api.patch(
        f"/v2/images/{image['id']}", [{"op": "replace", "path": "/protected", "value": False}]
    )
    assert api.delete(f"/v2/images/{image['id']}").status_code == 204


def test_owner_rules_on_create(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api()
    alice = api.as_("alice")
    assert alice.create_image()["owner"] == "alice"
    assert alice.post("/v2/images", json={"owner": "bob"}).status_code == 403
    assert alice.post("/v2/images", json={"owner": "alice"}).status_code == 201
    assert api.as_("root", roles="admin").create_image(owner="bob")["owner"] == "bob"


def test_owner_is_user_when_owner_is_tenant_false(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api(owner_is_tenant=False)
    image = api.as_("p1", user="u1").create_image()
    assert image["owner"] == "u1"


def test_publicize_is_admin_only_by_default(api: Api) -> None:
    member = api.as_("p1")
    assert member.post("/v2/images", json={"visibility": "public"}).status_code == 403
    assert member.post("/v2/images", json={"visibility": "community"}).status_code == 201
    assert (
        api.as_("p1", roles="admin").post("/v2/images", json={"visibility": "public"}).status_code
        == 201
    )


def test_deactivate_and_reactivate_need_active_image(api: Api) -> None:
    image = api.create_image()
    path = f"/v2/images/{image['id']}/actions"
    assert api.post(f"{path}/deactivate").status_code == 403
    assert api.post(f"{path}/reactivate").status_code == 403
    assert api.post("/v2/images/" + str(uuid.uuid4()) + "/actions/deactivate").status_code == 404


def test_property_quota_on_create(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api(image_property_quota=2)
    assert api.post("/v2/images", json={"a": "1", "b": "2"}).status_code == 201
    assert api.post("/v2/images", json={"a": "1", "b": "2", "c": "3"}).status_code == 413


def test_tag_quota_on_create(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api(image_tag_quota=1)
    assert api.post("/v2/images", json={"tags": ["a"]}).status_code == 201
    assert api.post("/v2/images", json={"tags": ["a", "b"]}).status_code == 413
