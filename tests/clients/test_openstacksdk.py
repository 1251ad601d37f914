"""openstacksdk's image proxy against a running glimpse-api, without Keystone (see
tests/support/sdk.py for how it connects)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from openstack import exceptions
from openstack.connection import Connection
from openstack.image.v2.image import Image

from tests.support import sdk

Connect = Callable[[str], Connection]

pytestmark = sdk.QUIET


@pytest.fixture
def connect(server: str) -> Connect:
    """A Connection acting as the identity in ``token`` (``user:project:roles``)."""

    def as_(token: str) -> Connection:
        return sdk.connection(server, token)

    return as_


@pytest.fixture
def alice(connect: Connect) -> Connection:
    return connect("alice:projA:member")


@pytest.fixture
def bob(connect: Connect) -> Connection:
    return connect("bob:projB:member")


def _create(conn: Connection, name: str, **kwargs: object) -> Image:
    image: Image = conn.image.create_image(
        name, disk_format="qcow2", container_format="bare", allow_duplicates=True, **kwargs
    )
    return image


def _ids(images: object) -> set[str]:
    return {image.id for image in images}  # type: ignore[attr-defined]


def test_discovers_the_v2_endpoint(alice: Connection, server: str) -> None:
    assert alice.image.get_endpoint() == f"{server}/v2/"
    assert alice.image.get_api_major_version()[0] == 2


def test_create_without_data_and_get(alice: Connection) -> None:
    # The default create_image first looks the name up with os_hidden=True/False filters.
    image = alice.image.create_image(
        "cirros",
        disk_format="qcow2",
        container_format="bare",
        tags=["a", "b"],
        os_distro="cirros",
        foo="bar",
        min_ram=64,
        visibility="shared",
    )
    assert image.status == "queued"
    assert image.owner == "projA"
    assert image.visibility == "shared"
    assert image.min_ram == 64
    assert sorted(image.tags) == ["a", "b"]
    assert image.properties["foo"] == "bar"
    assert image.os_distro == "cirros"

    fetched = alice.image.get_image(image.id)
    assert fetched.name == "cirros" and fetched.properties["foo"] == "bar"
    assert fetched.created_at == image.created_at
    assert alice.image.find_image("cirros").id == image.id

    with pytest.raises(exceptions.NotFoundException) as caught:
        alice.image.get_image("00000000-0000-0000-0000-000000000000")
    assert "No image found with ID 00000000-0000-0000-0000-000000000000" in str(caught.value)


def test_list_with_filters(alice: Connection, connect: Connect) -> None:
    admin = connect("root:projA:admin")
    ubuntu = _create(alice, "ubuntu", tags=["lts"], visibility="private")
    debian = _create(admin, "debian", visibility="public")
    other = _create(alice, "other", tags=["lts", "beta"], protected=True)
    alice.image.update_image(other, protected=False)

    assert _ids(alice.image.images()) == {ubuntu.id, debian.id, other.id}
    assert _ids(alice.image.images(name="ubuntu")) == {ubuntu.id}
    assert _ids(alice.image.images(visibility="public")) == {debian.id}
    assert _ids(alice.image.images(tag="lts")) == {ubuntu.id, other.id}
    assert _ids(alice.image.images(owner="projA", status="queued")) == {
        ubuntu.id,
        debian.id,
        other.id,
    }
    names = [i.name for i in alice.image.images(sort_key="name", sort_dir="asc")]
    assert names == ["debian", "other", "ubuntu"]
    # Paging through with a small limit still yields everything exactly once.
    paged = [i.id for i in alice.image.images(limit=1)]
    assert sorted(paged) == sorted([ubuntu.id, debian.id, other.id])

    with pytest.raises(exceptions.BadRequestException):
        list(alice.image.images(visibility="everyone"))


def test_update_image(alice: Connection) -> None:
    image = _create(alice, "before", foo="bar", keep="me")
    assert image.properties["keep"] == "me"
    # The SDK sends the given properties as the complete new set: "keep" is removed.
    updated = alice.image.update_image(image, name="after", min_disk=3, foo="baz", extra="new")
    assert updated.name == "after" and updated.min_disk == 3
    assert updated.properties == {"foo": "baz", "extra": "new"}

    fetched = alice.image.get_image(image.id)
    assert fetched.name == "after" and fetched.properties == {"foo": "baz", "extra": "new"}

    with pytest.raises(exceptions.HttpException) as caught:
        alice.image.update_image(image, min_ram=-1)
    assert caught.value.status_code == 400
    assert alice.image.get_image(image.id).min_ram == 0


def test_tags(alice: Connection) -> None:
    image = _create(alice, "tagged")
    alice.image.add_tag(image, "blue")
    alice.image.add_tag(image, "green")
    alice.image.add_tag(image, "green")  # idempotent
    assert sorted(alice.image.get_image(image).tags) == ["blue", "green"]
    alice.image.remove_tag(image, "blue")
    assert alice.image.get_image(image).tags == ["green"]
    with pytest.raises(exceptions.NotFoundException):
        alice.image.remove_tag(image, "blue")


def test_members_between_two_projects(alice: Connection, bob: Connection) -> None:
    image = _create(alice, "to-share", visibility="shared")
    assert _ids(bob.image.images()) == set()

    member = alice.image.add_member(image, member_id="projB")
    assert member.member_id == "projB" and member.status == "pending"
    assert _ids(bob.image.images(member_status="pending")) == {image.id}
    assert _ids(bob.image.images()) == set()

    with pytest.raises(exceptions.ForbiddenException):
        alice.image.update_member(member, image, status="accepted")
    accepted = bob.image.update_member(member, image, status="accepted")
    assert accepted.status == "accepted"
    assert _ids(bob.image.images()) == {image.id}
    assert bob.image.get_image(image.id).name == "to-share"

    listed = list(alice.image.members(image))
    assert [(m.member_id, m.status) for m in listed] == [("projB", "accepted")]
    assert alice.image.get_member("projB", image).status == "accepted"

    with pytest.raises(exceptions.ConflictException):
        alice.image.add_member(image, member_id="projB")

    alice.image.remove_member("projB", image)
    assert list(alice.image.members(image)) == []
    assert _ids(bob.image.images()) == set()


def test_hidden_images(alice: Connection) -> None:
    plain = _create(alice, "plain")
    hidden = _create(alice, "secret")
    alice.image.update_image(hidden, is_hidden=True)
    assert alice.image.get_image(hidden.id).is_hidden is True

    assert _ids(alice.image.images()) == {plain.id}
    assert _ids(alice.image.images(is_hidden=True)) == {hidden.id}
    assert _ids(alice.image.images(is_hidden=False)) == {plain.id}
    # find_image looks hidden images up too.
    assert alice.image.find_image("secret").id == hidden.id

    alice.image.update_image(hidden, is_hidden=False)
    assert _ids(alice.image.images()) == {plain.id, hidden.id}


def test_upload_deactivate_reactivate_download(alice: Connection) -> None:
    queued = _create(alice, "queued")
    # The SDK ignores the 403 a queued image gets; the status must not change.
    alice.image.deactivate_image(queued)
    assert alice.image.get_image(queued).status == "queued"
    data = bytes(range(256)) * 16
    image = sdk.create_active(alice, "active", data)
    active = alice.image.get_image(image)
    assert active.status == "active" and active.size == len(data)
    assert active.checksum == hashlib.md5(data).hexdigest()
    alice.image.deactivate_image(image)
    assert alice.image.get_image(image).status == "deactivated"
    alice.image.reactivate_image(image)
    assert alice.image.get_image(image).status == "active"
    assert alice.image.download_image(image).content == data


def test_delete_image(alice: Connection, bob: Connection) -> None:
    image = _create(alice, "doomed", visibility="private")
    with pytest.raises(exceptions.NotFoundException):
        bob.image.delete_image(image, ignore_missing=False)
    alice.image.delete_image(image)
    assert alice.image.find_image(image.id) is None
    with pytest.raises(exceptions.NotFoundException):
        alice.image.delete_image(image, ignore_missing=False)
    alice.image.delete_image(image)  # ignore_missing=True by default
