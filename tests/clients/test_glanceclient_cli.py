"""The real ``glance`` command (python-glanceclient) against a running glimpse-api.

Identity without Keystone: ``--os-auth-token user:project:roles`` (glanceclient
percent-encodes it on the wire).
"""

from __future__ import annotations

import ast
import hashlib
import uuid
from pathlib import Path

import pytest

from tests.support.glance_cli import Glance, runner

ALICE = "alice:projA:member"
BOB = "bob:projB:member"


@pytest.fixture
def glance(server: str, tmp_path: Path) -> Glance:
    """Run ``glance`` as an identity token against the server; returns a :class:`Result`."""
    return runner(server, tmp_path)


def test_create_with_properties_then_show(glance: Glance) -> None:
    created = glance(
        ALICE,
        "image-create",
        "--name",
        "cirros",
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--os-distro",
        "cirros",
        "--min-ram",
        "64",
        "--property",
        "foo=bar",
        "--property",
        "hw_disk_bus=scsi",
        "--tags",
        "t1",
        "t2",
    ).properties()
    assert created["name"] == "cirros"
    assert created["status"] == "queued"
    assert created["owner"] == "projA"
    assert created["visibility"] == "shared"
    assert created["foo"] == "bar" and created["hw_disk_bus"] == "scsi"
    assert created["os_distro"] == "cirros" and created["min_ram"] == "64"
    assert sorted(ast.literal_eval(created["tags"])) == ["t1", "t2"]  # printed as a Python list

    shown = glance(ALICE, "image-show", created["id"]).properties()
    assert shown == created


def test_token_identity_survives_glanceclients_percent_encoding(glance: Glance) -> None:
    # glanceclient sends the token percent-encoded ("alice%3AprojA%3Amember").
    private = glance(ALICE, "image-create", "--name", "x", "--visibility", "private")
    image_id = private.properties()["id"]
    assert private.properties()["owner"] == "projA"
    assert glance(BOB, "image-list").ids() == set()
    # Several roles: the comma is encoded too, and "Admin" is lower-cased.
    assert glance("root:projR:reader,Admin", "image-list").ids() == {image_id}


def test_list_filters(glance: Glance) -> None:
    def create(*args: str) -> str:
        return glance(ALICE, "image-create", *args).properties()["id"]

    ubuntu = create(
        "--name",
        "ubuntu",
        "--property",
        "os_distro=ubuntu",
        "--tags",
        "lts",
        "--visibility",
        "private",
    )
    # Publicizing needs the admin role.
    debian = glance(
        "root:projA:admin",
        "image-create",
        "--name",
        "debian",
        "--property",
        "os_distro=debian",
        "--visibility",
        "public",
    ).properties()["id"]
    other = create("--name", "other", "--tags", "lts", "beta")
    foreign = glance(BOB, "image-create", "--name", "bobs").properties()["id"]

    assert glance(ALICE, "image-list").ids() == {ubuntu, debian, other}
    assert glance(ALICE, "image-list", "--property-filter", "os_distro=ubuntu").ids() == {ubuntu}
    assert glance(ALICE, "image-list", "--visibility", "public").ids() == {debian}
    assert glance(ALICE, "image-list", "--visibility", "private").ids() == {ubuntu}
    assert glance(ALICE, "image-list", "--tag", "lts").ids() == {ubuntu, other}
    assert glance(ALICE, "image-list", "--tag", "lts", "--tag", "beta").ids() == {other}
    assert glance(ALICE, "image-list", "--owner", "projA").ids() == {ubuntu, debian, other}
    assert glance(BOB, "image-list").ids() == {debian, foreign}

    names = [
        row["Name"]
        for row in glance(ALICE, "image-list", "--sort-key", "name", "--sort-dir", "asc").table()
    ]
    assert names == ["debian", "other", "ubuntu"]
    limited = glance(ALICE, "image-list", "--limit", "2", "--page-size", "1").table()
    assert len(limited) == 2

    bad = glance(ALICE, "image-list", "--visibility", "everyone", expect=None)
    assert bad.code != 0
    assert "400 Bad Request" in bad.err


def test_update_properties(glance: Glance) -> None:
    image_id = glance(
        ALICE,
        "image-create",
        "--name",
        "before",
        "--property",
        "foo=bar",
        "--property",
        "keep=me",
    ).properties()["id"]
    updated = glance(
        ALICE,
        "image-update",
        image_id,
        "--name",
        "after",
        "--min-disk",
        "2",
        "--property",
        "new=value",
        "--property",
        "keep=changed",
        "--remove-property",
        "foo",
    ).properties()
    assert updated["name"] == "after" and updated["min_disk"] == "2"
    assert updated["new"] == "value" and updated["keep"] == "changed"
    assert "foo" not in updated

    shown = glance(ALICE, "image-show", image_id).properties()
    assert shown["name"] == "after" and "foo" not in shown


def test_tags(glance: Glance) -> None:
    image_id = glance(ALICE, "image-create", "--name", "tagged").properties()["id"]
    listed = glance(ALICE, "image-tag-update", image_id, "blue").table()
    assert listed == [{"ID": image_id, "Tags": "['blue']"}]
    glance(ALICE, "image-tag-update", image_id, "green")
    assert sorted(ast.literal_eval(glance(ALICE, "image-show", image_id).properties()["tags"])) == [
        "blue",
        "green",
    ]
    assert glance(ALICE, "image-list", "--tag", "green").ids() == {image_id}

    glance(ALICE, "image-tag-delete", image_id, "blue")
    assert ast.literal_eval(glance(ALICE, "image-show", image_id).properties()["tags"]) == ["green"]
    gone = glance(ALICE, "image-tag-delete", image_id, "blue", expect=None)
    assert gone.code != 0 and "404 Not Found" in gone.err


def test_sharing_between_two_projects(glance: Glance) -> None:
    image_id = glance(ALICE, "image-create", "--name", "shared-one").properties()["id"]
    assert glance(BOB, "image-list").ids() == set()

    created = glance(ALICE, "member-create", image_id, "projB").table()
    assert created == [{"Image ID": image_id, "Member ID": "projB", "Status": "pending"}]
    # Pending shares are visible on request only.
    assert glance(BOB, "image-list").ids() == set()
    assert glance(BOB, "image-list", "--member-status", "pending").ids() == {image_id}
    assert glance(BOB, "image-show", image_id).properties()["name"] == "shared-one"

    # Only the member may accept; the owner may not do it on its behalf.
    refused = glance(ALICE, "member-update", image_id, "projB", "accepted", expect=None)
    assert refused.code != 0 and "403 Forbidden" in refused.err

    accepted = glance(BOB, "member-update", image_id, "projB", "accepted").table()
    assert accepted[0]["Status"] == "accepted"
    assert glance(BOB, "image-list").ids() == {image_id}
    members = glance(ALICE, "member-list", "--image-id", image_id).table()
    assert members == [{"Image ID": image_id, "Member ID": "projB", "Status": "accepted"}]
    got = glance(ALICE, "member-get", image_id, "projB").properties()
    assert got["status"] == "accepted" and got["member_id"] == "projB"

    # A third project neither sees the image nor may touch its members.
    carol = "carol:projC:member"
    assert glance(carol, "image-list").ids() == set()
    denied = glance(carol, "member-create", image_id, "projC", expect=None)
    assert denied.code != 0 and "404 Not Found" in denied.err

    glance(ALICE, "member-delete", image_id, "projB")
    assert glance(BOB, "image-list").ids() == set()
    assert glance(ALICE, "member-list", "--image-id", image_id).table() == []


def test_hidden_images(glance: Glance) -> None:
    shown_id = glance(ALICE, "image-create", "--name", "plain").properties()["id"]
    hidden = glance(ALICE, "image-create", "--name", "secret", "--hidden", "True").properties()
    assert hidden["os_hidden"] == "True"
    assert glance(ALICE, "image-list").ids() == {shown_id}
    assert glance(ALICE, "image-list", "--hidden").ids() == {hidden["id"]}
    assert glance(ALICE, "image-list", "--hidden", "False").ids() == {shown_id}

    unhidden = glance(ALICE, "image-update", hidden["id"], "--hidden", "False").properties()
    assert unhidden["os_hidden"] == "False"
    assert glance(ALICE, "image-list").ids() == {shown_id, hidden["id"]}


def test_upload_download_deactivate_and_reactivate(glance: Glance, tmp_path: Path) -> None:
    image_id = glance(
        ALICE,
        "image-create",
        "--name",
        "active",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
    ).properties()["id"]
    data = tmp_path / "disk.raw"
    data.write_bytes(bytes(range(256)) * 64)
    uploaded = glance(ALICE, "image-upload", image_id, "--file", str(data))
    assert uploaded.out.strip() == ""
    shown = glance(ALICE, "image-show", image_id).properties()
    assert shown["status"] == "active" and shown["size"] == str(len(data.read_bytes()))
    assert shown["checksum"] == hashlib.md5(data.read_bytes()).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data.read_bytes()).hexdigest()

    glance(ALICE, "image-deactivate", image_id)
    assert glance(ALICE, "image-show", image_id).properties()["status"] == "deactivated"
    glance(ALICE, "image-deactivate", image_id)  # idempotent
    # A deactivated image's data is for administrators only.
    copy = tmp_path / "copy.raw"
    refused = glance(ALICE, "image-download", image_id, "--file", str(copy), expect=None)
    assert refused.code != 0 and "403 Forbidden" in refused.err

    glance(ALICE, "image-reactivate", image_id)
    assert glance(ALICE, "image-show", image_id).properties()["status"] == "active"
    # glanceclient verifies os_hash_value of what it downloads.
    glance(ALICE, "image-download", image_id, "--file", str(copy))
    assert copy.read_bytes() == data.read_bytes()


def test_deactivate_needs_an_active_image(glance: Glance) -> None:
    image_id = glance(ALICE, "image-create", "--name", "queued").properties()["id"]
    for action in ("image-deactivate", "image-reactivate"):
        refused = glance(ALICE, action, image_id, expect=None)
        assert refused.code != 0
        assert "403 Forbidden" in refused.err
        verb = action.removeprefix("image-")
        assert f"Not allowed to {verb} image in status" in refused.err
    assert glance(ALICE, "image-show", image_id).properties()["status"] == "queued"


def test_delete(glance: Glance) -> None:
    image_id = glance(ALICE, "image-create", "--name", "doomed").properties()["id"]
    protected = glance(ALICE, "image-create", "--name", "kept", "--protected", "True")
    kept_id = protected.properties()["id"]

    done = glance(ALICE, "image-delete", image_id)
    assert done.out.strip() == ""
    assert glance(ALICE, "image-list").ids() == {kept_id}
    again = glance(ALICE, "image-delete", image_id, expect=None)
    assert again.code != 0 and f"No image with an ID of '{image_id}' exists" in again.err

    refused = glance(ALICE, "image-delete", kept_id, expect=None)
    assert refused.code != 0
    assert f"You are not permitted to delete the image '{kept_id}'" in refused.err
    assert glance(ALICE, "image-list").ids() == {kept_id}


def test_show_missing_image_is_a_readable_error(glance: Glance) -> None:
    missing = str(uuid.uuid4())
    result = glance(ALICE, "image-show", missing, expect=None)
    assert result.code == 1
    assert result.out == ""
    # glanceclient gets Glance's HTML error form and strips the tags.
    assert "404 Not Found" in result.err
    assert f"No image found with ID {missing}" in result.err
    assert "<" not in result.err


def test_other_projects_private_image_is_not_found(glance: Glance) -> None:
    image_id = glance(
        ALICE, "image-create", "--name", "mine", "--visibility", "private"
    ).properties()["id"]
    result = glance(BOB, "image-show", image_id, expect=None)
    assert result.code == 1
    assert f"No image found with ID {image_id}" in result.err
