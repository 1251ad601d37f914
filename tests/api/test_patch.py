"""Updating images with JSON patch (PATCH /v2/images/{id}), in both patch media types."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from glimpse.db.models import Image
from tests.support.client import Api

V21 = "application/openstack-images-v2.1-json-patch"
V20 = "application/openstack-images-v2.0-json-patch"
JSON = {"Accept": "application/json"}
LONG_AGO = datetime.datetime(2001, 1, 1)

READ_ONLY = (
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "id",
    "os_hash_algo",
    "os_hash_value",
)
RESERVED = ("location", "deleted", "deleted_at")
BASE = (
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "container_format",
    "disk_format",
    "min_ram",
    "min_disk",
    "tags",
)


def set_columns(api: Api, image_id: str, **values: Any) -> None:
    """Put an image row into a state the API cannot reach yet (e.g. ``active``)."""
    runtime = api.client.app.rt
    with runtime.db.transaction() as session:
        session.execute(update(Image).where(Image.id == image_id).values(**values))


def message(response: Any) -> str:
    """The explanation of a JSON error body (requested with ``Accept: application/json``)."""
    text: str = response.json()["message"]
    return text.split("<br />")[0]


def v20(op: str, path: str, *value: Any) -> dict[str, Any]:
    """A v2.0 (draft 4) operation: the op name is the key holding the path."""
    return {op: path, "value": value[0]} if value else {op: path}


def op(op: str, path: str, *value: Any) -> dict[str, Any]:
    """A v2.1 (RFC 6902) operation."""
    return {"op": op, "path": path, "value": value[0]} if value else {"op": op, "path": path}


@pytest.fixture
def image(api: Api) -> dict[str, Any]:
    return api.create_image(
        name="base",
        disk_format="qcow2",
        container_format="bare",
        os_distro="cirros",
        foo="bar",
        tags=["one", "two"],
    )


def assert_unchanged(api: Api, before: dict[str, Any]) -> None:
    after = api.get(f"/v2/images/{before['id']}")
    assert after.status_code == 200
    assert after.json() == before


# --- media types -------------------------------------------------------------------------


def test_v21_patch_sets_attributes_properties_and_tags(api: Api, image: dict[str, Any]) -> None:
    kernel = str(uuid.uuid4())
    response = api.patch(
        f"/v2/images/{image['id']}",
        [
            op("replace", "/name", "renamed"),
            op("replace", "/min_ram", 512),
            op("add", "/min_disk", 10),
            op("replace", "/protected", True),
            op("replace", "/os_hidden", True),
            op("replace", "/visibility", "private"),
            op("replace", "/disk_format", "raw"),
            op("replace", "/container_format", "ovf"),
            op("replace", "/tags", ["x", "y", "x"]),
            op("add", "/architecture", "x86_64"),
            op("add", "/kernel_id", kernel),
            op("replace", "/os_distro", "ubuntu"),
            op("remove", "/foo"),
        ],
        media_type=V21,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "renamed"
    assert (body["min_ram"], body["min_disk"]) == (512, 10)
    assert body["protected"] is True and body["os_hidden"] is True
    assert body["visibility"] == "private"
    assert (body["disk_format"], body["container_format"]) == ("raw", "ovf")
    assert sorted(body["tags"]) == ["x", "y"]
    assert body["architecture"] == "x86_64" and body["kernel_id"] == kernel
    assert body["os_distro"] == "ubuntu"
    assert "foo" not in body
    assert api.get(f"/v2/images/{image['id']}").json() == body


def test_v20_patch_document(api: Api, image: dict[str, Any]) -> None:
    response = api.patch(
        f"/v2/images/{image['id']}",
        [
            v20("replace", "/name", "renamed"),
            v20("add", "/color", "blue"),
            v20("replace", "/os_distro", "debian"),
            v20("remove", "/foo"),
            v20("replace", "/tags", ["z"]),
        ],
        media_type=V20,
    )
    assert response.status_code == 200, response.text
    body = api.get(f"/v2/images/{image['id']}").json()
    assert body["name"] == "renamed" and body["color"] == "blue"
    assert body["os_distro"] == "debian" and "foo" not in body
    assert body["tags"] == ["z"]


def test_v20_ignores_an_op_member(api: Api, image: dict[str, Any]) -> None:
    """The v2.0 type knows no "op" member: an RFC 6902 document is refused, not guessed at."""
    response = api.patch(f"/v2/images/{image['id']}", [op("replace", "/name", "x")], media_type=V20)
    assert response.status_code == 400
    assert_unchanged(api, image)


def test_media_type_parameters_are_ignored(api: Api, image: dict[str, Any]) -> None:
    response = api.patch(
        f"/v2/images/{image['id']}",
        [op("replace", "/name", "n")],
        media_type=V21 + "; charset=UTF-8",
    )
    assert response.status_code == 200
    assert response.json()["name"] == "n"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json-patch+json",
        "text/plain",
        "application/openstack-images-v2.2-json-patch",
        "",
    ],
)
def test_other_content_types_are_415_with_accept_patch(
    api: Api, image: dict[str, Any], content_type: str
) -> None:
    response = api.patch(
        f"/v2/images/{image['id']}", [op("replace", "/name", "n")], media_type=content_type
    )
    assert response.status_code == 415
    assert response.headers["accept-patch"] == f"{V20}, {V21}"
    assert_unchanged(api, image)


def test_415_comes_before_looking_up_the_image(api: Api) -> None:
    response = api.patch(f"/v2/images/{uuid.uuid4()}", [], media_type="application/json")
    assert response.status_code == 415


# --- malformed documents ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"op": "replace", "path": "/name", "value": "x"},
        ["replace"],
        [None],
        [[{"op": "replace", "path": "/name", "value": "x"}]],
        [op("replace", "/name", "ok"), 7],
    ],
)
def test_body_must_be_a_list_of_objects(api: Api, image: dict[str, Any], body: Any) -> None:
    for media_type in (V21, V20):
        response = api.patch(f"/v2/images/{image['id']}", body, media_type=media_type)
        assert response.status_code == 400, (media_type, body)
    assert_unchanged(api, image)


def test_empty_or_malformed_body_is_400(api: Api, image: dict[str, Any]) -> None:
    path = f"/v2/images/{image['id']}"
    for content in (b"", b"[{", b"not json"):
        response = api.request("PATCH", path, content=content, headers={"Content-Type": V21})
        assert response.status_code == 400, content
    assert_unchanged(api, image)


@pytest.mark.parametrize(
    "raw",
    [
        {"path": "/name", "value": "x"},
        {"op": "move", "from": "/name", "path": "/foo"},
        {"op": "copy", "from": "/name", "path": "/foo"},
        {"op": "test", "path": "/name", "value": "base"},
        {"op": "ADD", "path": "/foo", "value": "x"},
        {"op": None, "path": "/foo", "value": "x"},
        {"op": "replace", "value": "x"},
        {"op": "replace", "path": "/name"},
        {"op": "add", "path": "/newprop"},
        {"op": "replace", "path": 5, "value": "x"},
    ],
)
def test_v21_operation_errors_are_400(api: Api, image: dict[str, Any], raw: Any) -> None:
    response = api.patch(f"/v2/images/{image['id']}", [raw], media_type=V21)
    assert response.status_code == 400, raw
    assert_unchanged(api, image)


def test_unknown_op_message_names_the_allowed_ops(api: Api, image: dict[str, Any]) -> None:
    response = api.patch(f"/v2/images/{image['id']}", [op("move", "/name", "x")], headers=JSON)
    assert response.status_code == 400
    assert "add, remove, replace" in message(response)


@pytest.mark.parametrize(
    "raw",
    [
        {"path": "/name", "value": "x"},
        {"move": "/name", "value": "x"},
        {"add": "/a", "replace": "/a", "value": "x"},
        {"replace": "/name"},
        {"add": "/newprop"},
        {"replace": "name", "value": "x"},
    ],
)
def test_v20_operation_errors_are_400(api: Api, image: dict[str, Any], raw: Any) -> None:
    response = api.patch(f"/v2/images/{image['id']}", [raw], media_type=V20)
    assert response.status_code == 400, raw
    assert_unchanged(api, image)


@pytest.mark.parametrize(
    "pointer",
    [
        "name",
        "",
        "/",
        "/name/",
        "//name",
        "/a//b",
        "/ /name",
        "/na~me",
        "/name~",
        "/~2name",
        "/x~~01",
        "/x~",
        "/tags/-",
        "/tags/0",
        "/name/first",
        "/foo/bar",
        "/locations",
        "/locations/0/url",
    ],
)
@pytest.mark.parametrize("media_type", [V21, V20])
def test_bad_pointers_are_400(
    api: Api, image: dict[str, Any], pointer: str, media_type: str
) -> None:
    raw = op("add", pointer, "v") if media_type == V21 else v20("add", pointer, "v")
    response = api.patch(f"/v2/images/{image['id']}", [raw], media_type=media_type)
    assert response.status_code == 400, pointer
    assert_unchanged(api, image)


def test_replacing_a_single_location_path_is_400(api: Api, image: dict[str, Any]) -> None:
    """``replace`` takes ``/locations`` only; ``add``/``remove`` take ``/locations/N``."""
    for raw in (
        op("replace", "/locations/0", {"url": "http://a/b", "metadata": {}}),
        op("remove", "/locations"),
    ):
        response = api.patch(f"/v2/images/{image['id']}", [raw])
        assert response.status_code == 400, raw


def test_pointer_escapes_name_properties(api: Api, image: dict[str, Any]) -> None:
    response = api.patch(
        f"/v2/images/{image['id']}",
        [
            op("add", "/a~1b", "slash"),
            op("add", "/c~0d", "tilde"),
            op("add", "/e~01", "tilde-one"),
            op("add", "/f~10", "slash-zero"),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["a/b"] == "slash"
    assert body["c~d"] == "tilde"
    assert body["e~1"] == "tilde-one"
    assert body["f/0"] == "slash-zero"
    response = api.patch(f"/v2/images/{image['id']}", [v20("remove", "/a~1b")], media_type=V20)
    assert response.status_code == 200
    assert "a/b" not in response.json() and response.json()["c~d"] == "tilde"


# --- read-only, reserved and base attributes ---------------------------------------------


@pytest.mark.parametrize("attr", READ_ONLY)
def test_read_only_attributes_are_403(api: Api, image: dict[str, Any], attr: str) -> None:
    for raw in (op("replace", f"/{attr}", "x"), op("add", f"/{attr}", "x")):
        response = api.patch(f"/v2/images/{image['id']}", [raw], headers=JSON)
        assert response.status_code == 403, raw
        assert message(response) == f"Attribute '{attr}' is read-only."
    response = api.patch(f"/v2/images/{image['id']}", [op("remove", f"/{attr}")])
    assert response.status_code == 403
    response = api.patch(
        f"/v2/images/{image['id']}", [v20("replace", f"/{attr}", "x")], media_type=V20, headers=JSON
    )
    assert response.status_code == 403
    assert message(response) == f"Attribute '{attr}' is read-only."
    assert_unchanged(api, image)


@pytest.mark.parametrize("attr", RESERVED)
def test_reserved_attributes_are_403(api: Api, image: dict[str, Any], attr: str) -> None:
    for raw in (
        op("replace", f"/{attr}", "x"),
        op("add", f"/{attr}", "x"),
        op("remove", f"/{attr}"),
    ):
        response = api.patch(f"/v2/images/{image['id']}", [raw], headers=JSON)
        assert response.status_code == 403, raw
        assert message(response) == f"Attribute '{attr}' is reserved."
    assert_unchanged(api, image)


@pytest.mark.parametrize("attr", BASE)
def test_base_attributes_may_not_be_removed(api: Api, image: dict[str, Any], attr: str) -> None:
    response = api.patch(f"/v2/images/{image['id']}", [op("remove", f"/{attr}")], headers=JSON)
    assert response.status_code == 403
    assert message(response) == f"Property {attr} may not be removed."
    response = api.patch(f"/v2/images/{image['id']}", [v20("remove", f"/{attr}")], media_type=V20)
    assert response.status_code == 403
    assert_unchanged(api, image)


def test_add_sets_base_attributes_in_v21(api: Api, image: dict[str, Any]) -> None:
    response = api.patch(
        f"/v2/images/{image['id']}",
        [
            op("add", "/name", "added"),
            op("add", "/tags", ["t"]),
            op("add", "/min_ram", 1),
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["tags"], body["min_ram"]) == ("added", ["t"], 1)


@pytest.mark.parametrize(
    "attr, value", [("name", "x"), ("tags", ["t"]), ("min_ram", 1), ("visibility", "private")]
)
def test_v20_add_of_a_base_attribute_is_409(
    api: Api, image: dict[str, Any], attr: str, value: Any
) -> None:
    """Base attributes always exist, and a v2.0 ``add`` never overwrites."""
    response = api.patch(
        f"/v2/images/{image['id']}", [v20("add", f"/{attr}", value)], media_type=V20, headers=JSON
    )
    assert response.status_code == 409
    assert message(response) == f"Property {attr} already present."
    assert_unchanged(api, image)


def test_name_can_be_null(api: Api, image: dict[str, Any]) -> None:
    response = api.patch(f"/v2/images/{image['id']}", [op("replace", "/name", None)])
    assert response.status_code == 200
    assert response.json()["name"] is None


# --- extra properties ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        op("replace", "/missing", "x"),
        op("remove", "/missing"),
        op("replace", "/kernel_id", str(uuid.uuid4())),
        op("remove", "/os_version"),
    ],
)
def test_replace_or_remove_of_a_missing_property_is_409(
    api: Api, image: dict[str, Any], raw: dict[str, Any]
) -> None:
    response = api.patch(f"/v2/images/{image['id']}", [raw])
    assert response.status_code == 409, raw
    legacy = v20(raw["op"], raw["path"], *([raw["value"]] if "value" in raw else []))
    response = api.patch(f"/v2/images/{image['id']}", [legacy], media_type=V20)
    assert response.status_code == 409, legacy
    assert_unchanged(api, image)


def test_add_of_an_existing_property_overwrites_in_v21(api: Api, image: dict[str, Any]) -> None:
    response = api.patch(f"/v2/images/{image['id']}", [op("add", "/foo", "new")])
    assert response.status_code == 200
    assert response.json()["foo"] == "new"


def test_add_of_an_existing_property_is_409_in_v20(api: Api, image: dict[str, Any]) -> None:
    response = api.patch(
        f"/v2/images/{image['id']}", [v20("add", "/foo", "new")], media_type=V20, headers=JSON
    )
    assert response.status_code == 409
    assert message(response) == "Property foo already present."
    assert_unchanged(api, image)


def test_a_property_removed_and_added_in_one_patch(api: Api, image: dict[str, Any]) -> None:
    response = api.patch(
        f"/v2/images/{image['id']}",
        [
            op("remove", "/foo"),
            op("add", "/foo", "again"),
            op("replace", "/foo", "final"),
        ],
    )
    assert response.status_code == 200
    assert api.get(f"/v2/images/{image['id']}").json()["foo"] == "final"
    response = api.patch(
        f"/v2/images/{image['id']}",
        [
            op("add", "/fresh", "1"),
            op("remove", "/fresh"),
        ],
    )
    assert response.status_code == 200
    assert "fresh" not in api.get(f"/v2/images/{image['id']}").json()


@pytest.mark.parametrize(
    "raw",
    [
        op("add", "/foo", 1),
        op("add", "/foo", None),
        op("add", "/foo", ["a"]),
        op("add", "/foo", {"a": "b"}),
        op("add", "/foo", True),
        op("replace", "/os_distro", 7),
        op("add", "/kernel_id", "not-a-uuid"),
        op("add", "/ramdisk_id", "1234"),
        op("add", "/" + "k" * 256, "v"),
        op("add", "/emoji", "\U0001f600"),
        op("add", "/\U0001f600", "v"),
    ],
)
def test_property_values_are_validated(
    api: Api, image: dict[str, Any], raw: dict[str, Any]
) -> None:
    response = api.patch(f"/v2/images/{image['id']}", [raw])
    assert response.status_code == 400, raw
    assert_unchanged(api, image)


def test_valid_custom_and_long_properties_are_accepted(api: Api, image: dict[str, Any]) -> None:
    kernel = str(uuid.uuid4()).upper()
    response = api.patch(
        f"/v2/images/{image['id']}",
        [
            op("add", "/kernel_id", kernel),
            op("add", "/" + "k" * 255, "v" * 10000),
            op("add", "/unicode", "héllo wörld ☃"),
        ],
    )
    assert response.status_code == 200, response.text
    body = api.get(f"/v2/images/{image['id']}").json()
    assert body["kernel_id"] == kernel
    assert body["k" * 255] == "v" * 10000
    assert body["unicode"] == "héllo wörld ☃"


def test_unknown_properties_refused_when_additional_properties_are_off(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(allow_additional_image_properties=False)
    image = api.create_image(name="x")
    assert api.patch(f"/v2/images/{image['id']}", [op("add", "/foo", "bar")]).status_code == 400
    response = api.patch(f"/v2/images/{image['id']}", [op("add", "/os_distro", "arch")])
    assert response.status_code == 200
    assert response.json()["os_distro"] == "arch"


# --- schema checks on base attributes -------------------------------------------------------


@pytest.mark.parametrize(
    "attr, value",
    [
        ("min_ram", -1),
        ("min_disk", -1),
        ("min_ram", 2**31),
        ("min_disk", 2**31),
        ("min_ram", "1"),
        ("min_disk", 1.5),
        ("min_ram", True),
        ("min_ram", None),
        ("name", "n" * 256),
        ("name", 5),
        ("visibility", "everyone"),
        ("visibility", None),
        ("protected", "yes"),
        ("protected", None),
        ("os_hidden", 0),
        ("disk_format", "floppy"),
        ("container_format", "crate"),
        ("tags", "a"),
        ("tags", [1]),
        ("tags", ["t" * 256]),
        ("tags", None),
        ("tags", ["\U0001f600"]),
        ("owner", "o" * 256),
    ],
)
def test_base_values_are_validated(api: Api, image: dict[str, Any], attr: str, value: Any) -> None:
    for media_type, raw in (
        (V21, op("replace", f"/{attr}", value)),
        (V20, v20("replace", f"/{attr}", value)),
    ):
        response = api.patch(f"/v2/images/{image['id']}", [raw], media_type=media_type)
        assert response.status_code == 400, (media_type, attr, value)
    assert_unchanged(api, image)


def test_limits_of_min_ram_and_min_disk(api: Api, image: dict[str, Any]) -> None:
    response = api.patch(
        f"/v2/images/{image['id']}",
        [
            op("replace", "/min_ram", 2**31 - 1),
            op("replace", "/min_disk", 0),
        ],
    )
    assert response.status_code == 200
    assert response.json()["min_ram"] == 2**31 - 1
    assert api.get(f"/v2/images/{image['id']}").json()["min_ram"] == 2**31 - 1


# --- formats and status ----------------------------------------------------------------


@pytest.mark.parametrize("status", ["queued", "importing"])
def test_formats_change_while_queued_or_importing(
    api: Api, image: dict[str, Any], status: str
) -> None:
    set_columns(api, image["id"], status=status)
    response = api.patch(
        f"/v2/images/{image['id']}",
        [
            op("replace", "/disk_format", "iso"),
            op("replace", "/container_format", "docker"),
        ],
    )
    assert response.status_code == 200
    assert (response.json()["disk_format"], response.json()["container_format"]) == (
        "iso",
        "docker",
    )
    response = api.patch(
        f"/v2/images/{image['id']}",
        [
            op("replace", "/disk_format", None),
            op("replace", "/container_format", None),
        ],
    )
    assert response.status_code == 200
    assert response.json()["disk_format"] is None


@pytest.mark.parametrize("status", ["active", "saving", "uploading", "deactivated", "killed"])
@pytest.mark.parametrize(
    "attr, value", [("disk_format", "raw"), ("container_format", "ovf"), ("disk_format", "qcow2")]
)
def test_formats_are_fixed_outside_queued_and_importing(
    api: Api, image: dict[str, Any], status: str, attr: str, value: str
) -> None:
    set_columns(api, image["id"], status=status)
    before = api.get(f"/v2/images/{image['id']}").json()
    response = api.patch(f"/v2/images/{image['id']}", [op("replace", f"/{attr}", value)])
    assert response.status_code == 403
    assert_unchanged(api, before)


def test_other_attributes_change_on_an_active_image(api: Api, image: dict[str, Any]) -> None:
    set_columns(api, image["id"], status="active")
    response = api.patch(
        f"/v2/images/{image['id']}",
        [
            op("replace", "/name", "still editable"),
            op("add", "/os_version", "1"),
        ],
    )
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    assert response.json()["name"] == "still editable"


# --- owner, visibility and who may patch -------------------------------------------------


def test_non_admin_cannot_change_the_owner(api: Api) -> None:
    alice = api.as_("alice")
    image = alice.create_image(name="mine")
    for raw in (
        op("replace", "/owner", "bob"),
        op("replace", "/owner", "alice"),
        op("add", "/owner", "bob"),
        op("replace", "/owner", None),
    ):
        assert alice.patch(f"/v2/images/{image['id']}", [raw]).status_code == 403, raw
    response = alice.patch(
        f"/v2/images/{image['id']}", [v20("replace", "/owner", "bob")], media_type=V20
    )
    assert response.status_code == 403
    assert_unchanged(alice, image)


def test_admin_changes_the_owner(api: Api) -> None:
    image = api.as_("alice").create_image(name="mine")
    admin = api.as_("ops", roles="admin")
    response = admin.patch(f"/v2/images/{image['id']}", [op("replace", "/owner", "bob")])
    assert response.status_code == 200
    assert response.json()["owner"] == "bob"
    bob = api.as_("bob")
    assert bob.patch(f"/v2/images/{image['id']}", [op("replace", "/name", "b")]).status_code == 200
    assert api.as_("alice").get(f"/v2/images/{image['id']}").status_code == 404
    response = api.patch(f"/v2/images/{image['id']}", [op("add", "/owner", "carol")])
    assert response.status_code == 200  # admin without a project
    assert response.json()["owner"] == "carol"


def test_publicize_is_admin_only_and_community_for_all(api: Api) -> None:
    alice = api.as_("alice")
    image = alice.create_image(name="mine")
    path = f"/v2/images/{image['id']}"
    assert alice.patch(path, [op("replace", "/visibility", "public")]).status_code == 403
    assert_unchanged(alice, image)
    for visibility in ("community", "private", "shared"):
        response = alice.patch(path, [op("replace", "/visibility", visibility)])
        assert response.status_code == 200, visibility
        assert response.json()["visibility"] == visibility
    admin = api.as_("ops", roles="admin")
    response = admin.patch(path, [op("replace", "/visibility", "public")])
    assert response.status_code == 200
    assert response.json()["visibility"] == "public"
    # The policy is asked whenever an image is made public, even if it already is.
    assert alice.patch(path, [op("replace", "/visibility", "public")]).status_code == 403
    assert alice.patch(path, [op("replace", "/visibility", "private")]).status_code == 200


def test_public_in_passing_is_still_checked(api: Api) -> None:
    alice = api.as_("alice")
    image = alice.create_image(name="mine")
    response = alice.patch(
        f"/v2/images/{image['id']}",
        [
            op("replace", "/visibility", "public"),
            op("replace", "/visibility", "private"),
        ],
    )
    assert response.status_code == 403
    assert_unchanged(alice, image)


def test_communitize_policy_can_be_tightened(policy_api: Callable[..., Api]) -> None:
    api = policy_api({"communitize_image": "role:admin"})
    alice = api.as_("alice")
    image = alice.create_image(name="mine")
    response = alice.patch(f"/v2/images/{image['id']}", [op("replace", "/visibility", "community")])
    assert response.status_code == 403
    assert_unchanged(alice, image)


def test_modify_image_policy_is_enforced(policy_api: Callable[..., Api]) -> None:
    api = policy_api({"modify_image": "role:admin"})
    alice = api.as_("alice")
    image = alice.create_image(name="mine")
    response = alice.patch(f"/v2/images/{image['id']}", [op("replace", "/name", "x")])
    assert response.status_code == 403
    assert_unchanged(alice, image)


def test_only_the_owner_or_an_admin_patches(api: Api) -> None:
    alice, bob = api.as_("alice"), api.as_("bob")
    shared = alice.create_image(name="shared")
    response = alice.post(f"/v2/images/{shared['id']}/members", json={"member": "bob"})
    assert response.status_code == 200
    bob.put(f"/v2/images/{shared['id']}/members/bob", json={"status": "accepted"})
    shared = alice.get(f"/v2/images/{shared['id']}").json()
    community = alice.create_image(name="community", visibility="community")
    public = api.as_("ops", roles="admin").create_image(
        name="public", visibility="public", owner="alice"
    )
    for target in (shared, community, public):
        path = f"/v2/images/{target['id']}"
        assert bob.get(path).status_code == 200
        assert bob.patch(path, [op("replace", "/name", "bob was here")]).status_code == 403
        assert_unchanged(alice, target)
    admin = api.as_("ops", roles="admin")
    assert admin.patch(f"/v2/images/{shared['id']}", [op("add", "/a", "b")]).status_code == 200


def test_images_without_owner_are_admin_only(api: Api) -> None:
    image = api.create_image(name="ownerless")
    assert image["owner"] is None
    alice = api.as_("alice")
    assert alice.get(f"/v2/images/{image['id']}").status_code == 200
    change = [op("replace", "/name", "x")]
    assert alice.patch(f"/v2/images/{image['id']}", change).status_code == 403
    assert api.patch(f"/v2/images/{image['id']}", change).status_code == 200


def test_invisible_or_missing_images_are_404(api: Api) -> None:
    alice, bob = api.as_("alice"), api.as_("bob")
    private = alice.create_image(name="private", visibility="private")
    shared_not_with_bob = alice.create_image(name="shared")
    gone = alice.create_image(name="gone")
    assert alice.delete(f"/v2/images/{gone['id']}").status_code == 204
    change = [op("replace", "/name", "x")]
    assert bob.patch(f"/v2/images/{private['id']}", change).status_code == 404
    assert bob.patch(f"/v2/images/{shared_not_with_bob['id']}", change).status_code == 404
    assert alice.patch(f"/v2/images/{gone['id']}", change).status_code == 404
    assert api.patch(f"/v2/images/{uuid.uuid4()}", change).status_code == 404
    assert api.patch("/v2/images/not-a-uuid", change).status_code == 404
    assert_unchanged(alice, private)


# --- locations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        op("add", "/locations/-", {"url": "http://example.com/img", "metadata": {}}),
        op("add", "/locations/0", {"url": "http://example.com/img", "metadata": {}}),
        op("replace", "/locations", [{"url": "http://example.com/img", "metadata": {}}]),
        op("replace", "/locations", []),
        op("remove", "/locations/0"),
    ],
)
def test_locations_are_403_when_not_shown(
    api: Api, image: dict[str, Any], raw: dict[str, Any]
) -> None:
    response = api.patch(f"/v2/images/{image['id']}", [raw])
    assert response.status_code == 403
    assert "locations" not in api.get(f"/v2/images/{image['id']}").json()
    assert_unchanged(api, image)


# --- quotas -----------------------------------------------------------------------------------


def test_property_quota(make_api: Callable[..., Api]) -> None:
    api = make_api(image_property_quota=2)
    image = api.create_image(name="q", a="1")
    path = f"/v2/images/{image['id']}"
    assert api.patch(path, [op("add", "/b", "2")]).status_code == 200
    response = api.patch(path, [op("add", "/c", "3")])
    assert response.status_code == 413
    assert "c" not in api.get(path).json()
    # Changing or swapping properties at the limit is fine; only growth is refused.
    assert api.patch(path, [op("replace", "/a", "x"), op("add", "/b", "y")]).status_code == 200
    assert api.patch(path, [op("remove", "/a"), op("add", "/c", "3")]).status_code == 200
    body = api.get(path).json()
    assert (body["b"], body["c"]) == ("y", "3") and "a" not in body
    # Base attributes and tags are not properties.
    assert (
        api.patch(path, [op("replace", "/name", "n"), op("replace", "/tags", ["t"])]).status_code
        == 200
    )


def test_negative_property_quota_is_unlimited(make_api: Callable[..., Api]) -> None:
    api = make_api(image_property_quota=-1)
    image = api.create_image(name="q")
    response = api.patch(
        f"/v2/images/{image['id']}", [op("add", f"/p{i}", str(i)) for i in range(150)]
    )
    assert response.status_code == 200
    assert response.json()["p149"] == "149"


def test_tag_quota(make_api: Callable[..., Api]) -> None:
    api = make_api(image_tag_quota=2)
    image = api.create_image(name="q", tags=["a"])
    path = f"/v2/images/{image['id']}"
    assert api.patch(path, [op("replace", "/tags", ["a", "b", "c"])]).status_code == 413
    assert api.get(path).json()["tags"] == ["a"]
    response = api.patch(path, [op("replace", "/tags", ["b", "c", "b"])])
    assert response.status_code == 200
    assert sorted(response.json()["tags"]) == ["b", "c"]
    assert api.patch(path, [op("replace", "/tags", [])]).json()["tags"] == []


# --- atomicity and timestamps -------------------------------------------------------------


@pytest.mark.parametrize(
    "failing, status",
    [
        (op("remove", "/missing"), 409),
        (op("replace", "/status", "active"), 403),
        (op("replace", "/min_ram", -5), 400),
        (op("remove", "/name"), 403),
        (op("replace", "/visibility", "public"), 403),
        (op("replace", "/owner", "mallory"), 403),
        (op("add", "/locations/-", {"url": "http://a/b", "metadata": {}}), 403),
    ],
)
def test_a_failing_patch_changes_nothing(api: Api, failing: dict[str, Any], status: int) -> None:
    alice = api.as_("alice")
    image = alice.create_image(name="before", foo="bar", tags=["keep"])
    set_columns(alice, image["id"], updated_at=LONG_AGO)
    before = alice.get(f"/v2/images/{image['id']}").json()
    response = alice.patch(
        f"/v2/images/{image['id']}",
        [
            op("replace", "/name", "after"),
            op("add", "/new", "value"),
            op("remove", "/foo"),
            op("replace", "/tags", ["other"]),
            op("replace", "/min_disk", 3),
            failing,
        ],
    )
    assert response.status_code == status
    assert_unchanged(alice, before)


def test_a_patch_over_quota_changes_nothing(make_api: Callable[..., Api]) -> None:
    api = make_api(image_property_quota=1, image_tag_quota=1)
    image = api.create_image(name="before")
    path = f"/v2/images/{image['id']}"
    response = api.patch(
        path, [op("replace", "/name", "after"), op("add", "/a", "1"), op("add", "/b", "2")]
    )
    assert response.status_code == 413
    response = api.patch(
        path,
        [op("replace", "/name", "after"), op("add", "/a", "1"), op("replace", "/tags", ["x", "y"])],
    )
    assert response.status_code == 413
    assert_unchanged(api, image)


def test_patch_moves_updated_at(api: Api, image: dict[str, Any]) -> None:
    set_columns(api, image["id"], updated_at=LONG_AGO)
    response = api.patch(f"/v2/images/{image['id']}", [op("replace", "/name", "later")])
    assert response.status_code == 200
    body = response.json()
    assert body["updated_at"] > "2001-01-01T00:00:00Z"
    assert body["updated_at"] >= body["created_at"]
    assert body["created_at"] == image["created_at"]
    assert api.get(f"/v2/images/{image['id']}").json()["updated_at"] == body["updated_at"]


def test_an_empty_patch_changes_nothing(api: Api, image: dict[str, Any]) -> None:
    set_columns(api, image["id"], updated_at=LONG_AGO)
    before = api.get(f"/v2/images/{image['id']}").json()
    response = api.patch(f"/v2/images/{image['id']}", [])
    assert response.status_code == 200
    assert response.json() == before
    assert_unchanged(api, before)


def test_response_is_the_full_image(api: Api, image: dict[str, Any]) -> None:
    response = api.patch(f"/v2/images/{image['id']}", [op("add", "/x", "y")])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(image) | {"x"} == set(body)
    assert body["self"] == f"/v2/images/{image['id']}"


def test_every_operation_is_checked_before_any_is_applied(api: Api, image: dict[str, Any]) -> None:
    """Like Glance, values and paths of all operations are validated first: an invalid value
    later in the document wins over a conflict earlier in it."""
    path = f"/v2/images/{image['id']}"
    response = api.patch(path, [op("replace", "/missing", "x"), op("replace", "/min_ram", -1)])
    assert response.status_code == 400
    response = api.patch(path, [op("remove", "/missing"), op("replace", "/size", 1)])
    assert response.status_code == 403
    assert_unchanged(api, image)


def test_names_and_tags_differing_in_case_are_distinct(
    api: Api, image: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    path = f"/v2/images/{image['id']}"
    response = api.patch(path, [op("add", "/FOO", "upper"), op("replace", "/tags", ["a", "A"])])
    assert response.status_code == 200
    body = api.get(path).json()
    assert (body["foo"], body["FOO"]) == ("bar", "upper")
    assert sorted(body["tags"]) == ["A", "a"]
