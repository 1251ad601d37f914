"""Property protections (property_protection_file): both rule formats, through the API."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from glimpse import config
from glimpse.cmd.api import prepare
from glimpse.runtime import Runtime
from glimpse.services.property_protection import PropertyProtectionConfigError
from tests.support.client import Api

V20 = "application/openstack-images-v2.0-json-patch"

ROLES_RULES = """
    [^x_owner_.*]
    create = admin,member
    read = admin,member
    update = admin,member
    delete = admin,member

    [^x_secret_.*]
    create = ADMIN
    read = admin
    update = admin
    delete = admin

    [^x_member_only$]
    create = member
    read = member
    update = member
    delete = member

    [^x_readonly_.*]
    create = admin
    read = @
    update = !
    delete = admin

    [^x_keep_.*]
    create = @
    read = @
    update = @
    delete = !

    [^x_closed$]
    create =
    read = @
    update = @
    delete = @

    [^(?!nomatch_).*]
    create = @
    read = @
    update = @
    delete = @
"""


def rules_file(tmp_path: Path, text: str, name: str = "protections.conf") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def protected(make_api: Callable[..., Api], tmp_path: Path) -> Api:
    return make_api(property_protection_file=rules_file(tmp_path, ROLES_RULES))


def member_of(api: Api) -> Api:
    return api.as_("proj", roles="member")


def admin_of(api: Api) -> Api:
    return api.as_("proj", roles="admin")


def reader_of(api: Api) -> Api:
    return api.as_("proj", roles="reader")


def patch(api: Api, image_id: str, *ops: dict[str, Any], media_type: str | None = None) -> Any:
    if media_type is None:
        return api.patch(f"/v2/images/{image_id}", list(ops))
    return api.patch(f"/v2/images/{image_id}", list(ops), media_type=media_type)


# -- create ---------------------------------------------------------------------------------


def test_create_needs_the_create_rule_of_every_extra_property(protected: Api) -> None:
    member, admin = member_of(protected), admin_of(protected)
    assert member.post("/v2/images", json={"x_owner_a": "1"}).status_code == 201
    denied = member.post("/v2/images", json={"x_owner_a": "1", "x_secret_a": "2"})
    assert denied.status_code == 403
    assert "x_secret_a" in denied.text
    assert admin.post("/v2/images", json={"x_secret_a": "2"}).status_code == 201
    assert reader_of(protected).post("/v2/images", json={"x_owner_a": "1"}).status_code == 403
    # A denied create stores nothing.
    assert len(admin.get("/v2/images").json()["images"]) == 2


def test_admins_are_not_exempt(protected: Api) -> None:
    admin = admin_of(protected)
    assert admin.post("/v2/images", json={"x_member_only": "1"}).status_code == 403
    assert admin.post("/v2/images", json={"x_closed": "1"}).status_code == 403
    # Without Keystone every caller is an administrator without roles: only "@" helps it.
    assert protected.post("/v2/images", json={"x_secret_a": "1"}).status_code == 403
    assert protected.post("/v2/images", json={"x_keep_a": "1"}).status_code == 201


def test_a_property_no_section_matches_is_denied_for_everything(protected: Api) -> None:
    admin = admin_of(protected)
    assert admin.post("/v2/images", json={"nomatch_a": "1"}).status_code == 403
    image = admin.create_image(name="x")
    response = patch(admin, image["id"], {"op": "add", "path": "/nomatch_a", "value": "1"})
    assert response.status_code == 403


def test_an_empty_rule_allows_nobody(protected: Api) -> None:
    for api in (member_of(protected), admin_of(protected), protected):
        assert api.post("/v2/images", json={"x_closed": "1"}).status_code == 403


def test_base_attributes_are_not_protected(make_api: Callable[..., Api], tmp_path: Path) -> None:
    strict = """
        [.*]
        create = admin
        read = admin
        update = admin
        delete = admin
    """
    api = make_api(property_protection_file=rules_file(tmp_path, strict))
    member = member_of(api)
    image = member.create_image(
        name="base",
        disk_format="raw",
        container_format="bare",
        min_ram=1,
        tags=["t"],
        visibility="private",
        protected=False,
    )
    ops = [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "replace", "path": "/min_disk", "value": 2},
        {"op": "replace", "path": "/tags", "value": ["u"]},
    ]
    response = member.patch(f"/v2/images/{image['id']}", ops)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "renamed"
    assert member.post("/v2/images", json={"x_any": "1"}).status_code == 403


# -- read -----------------------------------------------------------------------------------


def test_read_denied_properties_are_absent_from_show_list_create_and_patch(
    protected: Api,
) -> None:
    member, admin = member_of(protected), admin_of(protected)
    created = admin.post("/v2/images", json={"x_secret_a": "s", "x_owner_a": "o"})
    assert created.status_code == 201
    image_id = created.json()["id"]
    assert created.json()["x_secret_a"] == "s"

    shown = member.get(f"/v2/images/{image_id}").json()
    assert "x_secret_a" not in shown and shown["x_owner_a"] == "o"
    listed = member.get("/v2/images").json()["images"]
    assert [i["id"] for i in listed] == [image_id]
    assert "x_secret_a" not in listed[0]

    patched = patch(member, image_id, {"op": "add", "path": "/x_owner_b", "value": "b"})
    assert patched.status_code == 200
    assert "x_secret_a" not in patched.json() and patched.json()["x_owner_b"] == "b"

    # The hidden property was kept through the member's change.
    assert admin.get(f"/v2/images/{image_id}").json()["x_secret_a"] == "s"


def test_read_denied_properties_cannot_be_filtered_on(protected: Api) -> None:
    member, admin = member_of(protected), admin_of(protected)
    image_id = admin.create_image(x_secret_a="s", x_owner_a="o")["id"]
    assert member.get("/v2/images?x_secret_a=s").json()["images"] == []
    assert member.get("/v2/images?x_secret_a=other").json()["images"] == []
    assert [i["id"] for i in member.get("/v2/images?x_owner_a=o").json()["images"]] == [image_id]
    assert [i["id"] for i in admin.get("/v2/images?x_secret_a=s").json()["images"]] == [image_id]


def test_readable_by_everyone_but_updatable_by_nobody(protected: Api) -> None:
    member, admin = member_of(protected), admin_of(protected)
    image_id = admin.create_image(x_readonly_a="r")["id"]
    assert member.get(f"/v2/images/{image_id}").json()["x_readonly_a"] == "r"
    for api in (member, admin):
        response = patch(api, image_id, {"op": "replace", "path": "/x_readonly_a", "value": "x"})
        assert response.status_code == 403
    assert patch(member, image_id, {"op": "remove", "path": "/x_readonly_a"}).status_code == 403
    assert patch(admin, image_id, {"op": "remove", "path": "/x_readonly_a"}).status_code == 200


# -- update ---------------------------------------------------------------------------------


def test_update_needs_the_update_rule(protected: Api) -> None:
    member, admin = member_of(protected), admin_of(protected)
    image_id = admin.create_image(x_owner_a="o", x_secret_a="s")["id"]
    response = patch(member, image_id, {"op": "replace", "path": "/x_owner_a", "value": "m"})
    assert response.status_code == 200 and response.json()["x_owner_a"] == "m"
    # "add" of an existing property is an update too.
    response = patch(member, image_id, {"op": "add", "path": "/x_owner_a", "value": "n"})
    assert response.status_code == 200 and response.json()["x_owner_a"] == "n"
    # The reader may not read it either, so for the reader it does not exist.
    response = patch(
        reader_of(protected), image_id, {"op": "replace", "path": "/x_owner_a", "value": "r"}
    )
    assert response.status_code == 409
    response = patch(admin, image_id, {"op": "replace", "path": "/x_secret_a", "value": "t"})
    assert response.status_code == 200 and response.json()["x_secret_a"] == "t"


def test_a_property_the_caller_cannot_read_does_not_exist_for_it(protected: Api) -> None:
    member, admin = member_of(protected), admin_of(protected)
    image_id = admin.create_image(x_secret_a="s")["id"]
    response = patch(member, image_id, {"op": "replace", "path": "/x_secret_a", "value": "m"})
    assert response.status_code == 409
    assert patch(member, image_id, {"op": "remove", "path": "/x_secret_a"}).status_code == 409
    # Adding it is a create, which the member may not do either.
    response = patch(member, image_id, {"op": "add", "path": "/x_secret_a", "value": "m"})
    assert response.status_code == 403
    assert admin.get(f"/v2/images/{image_id}").json()["x_secret_a"] == "s"


def test_a_patch_with_one_denied_operation_changes_nothing(protected: Api) -> None:
    member, admin = member_of(protected), admin_of(protected)
    image_id = admin.create_image(x_readonly_a="r")["id"]
    response = patch(
        member,
        image_id,
        {"op": "add", "path": "/x_owner_a", "value": "o"},
        {"op": "replace", "path": "/x_readonly_a", "value": "x"},
    )
    assert response.status_code == 403
    assert "x_owner_a" not in admin.get(f"/v2/images/{image_id}").json()


def test_create_through_patch_needs_the_create_rule(protected: Api) -> None:
    member = member_of(protected)
    image_id = member.create_image(name="x")["id"]
    response = patch(member, image_id, {"op": "add", "path": "/x_keep_a", "value": "k"})
    assert response.status_code == 200
    response = patch(member, image_id, {"op": "add", "path": "/x_readonly_b", "value": "r"})
    assert response.status_code == 403
    # The deprecated patch type still refuses adding a property that is there (409).
    response = patch(member, image_id, {"add": "/x_keep_a", "value": "k"}, media_type=V20)
    assert response.status_code == 409


# -- delete ---------------------------------------------------------------------------------


def test_delete_needs_the_delete_rule(protected: Api) -> None:
    member, admin = member_of(protected), admin_of(protected)
    image_id = member.create_image(x_keep_a="k", x_owner_a="o")["id"]
    for api in (member, admin):
        assert patch(api, image_id, {"op": "remove", "path": "/x_keep_a"}).status_code == 403
    response = patch(member, image_id, {"op": "remove", "path": "/x_owner_a"})
    assert response.status_code == 200 and "x_owner_a" not in response.json()
    assert admin.get(f"/v2/images/{image_id}").json()["x_keep_a"] == "k"


# -- policies format ------------------------------------------------------------------------

POLICY_RULES = """
    [^x_pol_.*]
    create = glance_creator
    read = glance_reader
    update = glance_creator
    delete = !

    [^x_undefined$]
    create = no_such_rule
    read = @
    update = @
    delete = @

    [.*]
    create = @
    read = @
    update = @
    delete = @
"""

POLICY_FILE = """
"glance_creator": "role:admin or role:creator"
"glance_reader": "role:admin or role:creator or role:reader"
"""


@pytest.fixture
def by_policy(make_api: Callable[..., Api], tmp_path: Path) -> Api:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY_FILE)
    return make_api(
        property_protection_file=rules_file(tmp_path, POLICY_RULES),
        property_protection_rule_format="policies",
        oslo_policy__policy_file=str(policy_file),
    )


def test_policies_format_checks_the_named_rules(by_policy: Api) -> None:
    creator = by_policy.as_("proj", roles="creator")
    reader = by_policy.as_("proj", roles="reader")
    member = by_policy.as_("proj", roles="member")
    assert member.post("/v2/images", json={"x_pol_a": "1"}).status_code == 403
    assert reader.post("/v2/images", json={"x_pol_a": "1"}).status_code == 403
    image_id = creator.create_image(x_pol_a="1", other="2")["id"]

    assert reader.get(f"/v2/images/{image_id}").json()["x_pol_a"] == "1"
    shown = member.get(f"/v2/images/{image_id}").json()
    assert "x_pol_a" not in shown and shown["other"] == "2"
    assert member.get("/v2/images?x_pol_a=1").json()["images"] == []

    replace = {"op": "replace", "path": "/x_pol_a", "value": "2"}
    assert patch(reader, image_id, replace).status_code == 403
    assert patch(creator, image_id, replace).status_code == 200
    assert patch(creator, image_id, {"op": "remove", "path": "/x_pol_a"}).status_code == 403


def test_policies_format_undefined_rule_falls_back_to_the_default_rule(by_policy: Api) -> None:
    # oslo.policy checks an unknown rule against "default" (role:admin here), as Glance does.
    assert (
        by_policy.as_("proj", roles="member")
        .post("/v2/images", json={"x_undefined": "1"})
        .status_code
        == 403
    )
    assert (
        by_policy.as_("proj", roles="admin")
        .post("/v2/images", json={"x_undefined": "1"})
        .status_code
        == 201
    )


# -- configuration ----------------------------------------------------------------------------


def test_without_a_file_nothing_is_protected(api: Api) -> None:
    member = member_of(api)
    image = member.create_image(x_secret_a="s", nomatch_a="n")
    assert image["x_secret_a"] == "s" and image["nomatch_a"] == "n"


def test_a_file_without_sections_protects_nothing(
    make_api: Callable[..., Api], tmp_path: Path
) -> None:
    api = make_api(property_protection_file=rules_file(tmp_path, "# nothing yet\n"))
    assert member_of(api).create_image(anything="1")["anything"] == "1"


BAD_FILES = {
    "mixes": (
        "[.*]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n",
        "roles",
        "mixes '@' (everyone) and '!' (nobody)",
    ),
    "missing key": ("[.*]\ncreate = @\nread = @\nupdate = @\n", "roles", "no 'delete' rule"),
    "bad regex": (
        "[x_(]\ncreate = @\nread = @\nupdate = @\ndelete = @\n",
        "roles",
        "not a valid regular expression",
    ),
    "two policies": (
        "[.*]\ncreate = a,b\nread = a\nupdate = a\ndelete = a\n",
        "policies",
        "names several policies",
    ),
    "duplicate section": (
        "[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n[.*]\ncreate = @\n",
        "roles",
        "Cannot read property protection file",
    ),
    "not ini": ("create = @\n", "roles", "Cannot read property protection file"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_malformed_file_refuses_to_start(case: str, tmp_path: Path) -> None:
    text, rule_format, message = BAD_FILES[case]
    conf = config.new_conf([])
    conf.set_override("data_dir", str(tmp_path / "data"))
    conf.set_override("property_protection_file", rules_file(tmp_path, text))
    conf.set_override("property_protection_rule_format", rule_format)
    with pytest.raises(PropertyProtectionConfigError, match=re.escape(message)):
        Runtime.build(conf)
    with pytest.raises(SystemExit) as exited:
        prepare(conf)
    assert str(exited.value.code).startswith("ERROR: ")
    assert message in str(exited.value.code)


def test_a_missing_file_refuses_to_start(tmp_path: Path) -> None:
    conf = config.new_conf([])
    conf.set_override("data_dir", str(tmp_path / "data"))
    conf.set_override("property_protection_file", str(tmp_path / "absent.conf"))
    with pytest.raises(SystemExit) as exited:
        prepare(conf)
    assert "absent.conf" in str(exited.value.code) and "does not exist" in str(exited.value.code)


def test_a_relative_file_is_found_beside_the_configuration(tmp_path: Path) -> None:
    rules_file(tmp_path, ROLES_RULES, "glimpse-protections.conf")
    conf_file = tmp_path / "glimpse-api.conf"
    conf_file.write_text("[DEFAULT]\nproperty_protection_file = glimpse-protections.conf\n")
    conf = config.new_conf(["--config-file", str(conf_file)])
    conf.set_override("data_dir", str(tmp_path / "data"))
    rt = Runtime.build(conf)
    try:
        assert rt.property_protection.enabled
    finally:
        rt.close()
