"""The metadata definitions catalog: /v2/metadefs/* and /v2/schemas/metadefs/*."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.client import Api

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
NS = "/v2/metadefs/namespaces"


def create_ns(api: Api, namespace: str, expect: int = 201, **body: Any) -> dict[str, Any]:
    response = api.post(NS, json={"namespace": namespace, **body})
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


def names(response: Any, key: str = "namespaces", attr: str = "namespace") -> list[str]:
    assert response.status_code == 200, response.text
    return [item[attr] for item in response.json()[key]]


@pytest.fixture
def alice(api: Api) -> Api:
    return api.as_("alice")


@pytest.fixture
def bob(api: Api) -> Api:
    return api.as_("bob")


@pytest.fixture
def admin(api: Api) -> Api:
    return api.as_("root", roles="admin")


FLAVOR_NS: dict[str, Any] = {
    "namespace": "OS::Compute::CPU",
    "display_name": "CPU",
    "description": "CPU tuning",
    "visibility": "public",
    "resource_type_associations": [
        {"name": "OS::Nova::Flavor", "prefix": "hw:"},
        {"name": "OS::Glance::Image", "prefix": "hw_", "properties_target": "image"},
    ],
    "properties": {
        "cpu_policy": {"title": "CPU policy", "type": "string", "enum": ["shared", "dedicated"]},
        "cpu_cores": {"title": "Cores", "type": "integer", "minimum": 1},
    },
    "objects": [
        {
            "name": "Topology",
            "description": "Sockets and threads",
            "required": ["cpu_sockets"],
            "properties": {
                "cpu_sockets": {"title": "Sockets", "type": "integer"},
                "cpu_threads": {"title": "Threads", "type": "integer"},
            },
        }
    ],
    "tags": [{"name": "fast"}, {"name": "slow"}],
}


# --- namespaces ----------------------------------------------------------------------------


def test_create_namespace_defaults_and_links(alice: Api) -> None:
    response = alice.post(NS, json={"namespace": "MyNS"})
    assert response.status_code == 201, response.text
    assert response.headers["location"].endswith("/v2/metadefs/namespaces/MyNS")
    ns = response.json()
    assert ns["namespace"] == "MyNS"
    assert ns["visibility"] == "private"
    assert ns["protected"] is False
    assert ns["owner"] == "alice"
    assert ns["self"] == "/v2/metadefs/namespaces/MyNS"
    assert ns["schema"] == "/v2/schemas/metadefs/namespace"
    assert TIMESTAMP.match(ns["created_at"]) and TIMESTAMP.match(ns["updated_at"])
    # Glance leaves unset attributes and empty collections out.
    for absent in (
        "display_name",
        "description",
        "objects",
        "properties",
        "tags",
        "resource_type_associations",
    ):
        assert absent not in ns
    shown = alice.get(f"{NS}/MyNS")
    assert shown.status_code == 200
    assert shown.json() == ns


def test_create_namespace_with_everything_in_it(alice: Api) -> None:
    created = create_ns(alice, **FLAVOR_NS)
    assert [a["name"] for a in created["resource_type_associations"]] == [
        "OS::Nova::Flavor",
        "OS::Glance::Image",
    ]
    shown = alice.get(f"{NS}/OS::Compute::CPU").json()
    assert shown["display_name"] == "CPU" and shown["description"] == "CPU tuning"
    assert shown["properties"] == FLAVOR_NS["properties"]
    assert shown["tags"] == [{"name": "fast"}, {"name": "slow"}]
    [topology] = shown["objects"]
    assert topology["name"] == "Topology"
    assert topology["required"] == ["cpu_sockets"]
    assert topology["self"] == "/v2/metadefs/namespaces/OS::Compute::CPU/objects/Topology"
    assert topology["schema"] == "/v2/schemas/metadefs/object"
    image_assoc = shown["resource_type_associations"][1]
    assert image_assoc["prefix"] == "hw_" and image_assoc["properties_target"] == "image"
    assert TIMESTAMP.match(image_assoc["created_at"])
    assert created == shown


def test_namespace_create_errors(alice: Api) -> None:
    create_ns(alice, "taken")
    assert alice.post(NS, json={"namespace": "taken"}).status_code == 409
    bad_bodies = [
        {},
        {"namespace": "x" * 81},
        {"namespace": "ok", "display_name": "d" * 81},
        {"namespace": "ok", "description": "d" * 501},
        {"namespace": "ok", "visibility": "shared"},
        {"namespace": "ok", "protected": "yes"},
        {"namespace": "ok", "unknown": 1},
        {"namespace": 5},
        {"namespace": "ok", "properties": {"p": {"type": "string"}}},
        {"namespace": "ok", "properties": {"p": {"title": "P", "type": "float"}}},
        {"namespace": "ok", "properties": {"p" * 81: {"title": "P", "type": "string"}}},
        {"namespace": "ok", "objects": [{"description": "no name"}]},
        {"namespace": "ok", "objects": [{"name": "o" * 81}]},
        {"namespace": "ok", "tags": [{"name": "t" * 81}]},
        {"namespace": "ok", "resource_type_associations": [{"name": "r", "prefix": "p" * 81}]},
        {"namespace": "bad\U0001f600"},
    ]
    for body in bad_bodies:
        assert alice.post(NS, json=body).status_code == 400, body
    for attr in ("self", "schema", "created_at", "updated_at"):
        response = alice.post(NS, json={"namespace": "ok", attr: "x"})
        assert response.status_code == 403, attr
        assert "read-only" in response.text
    assert alice.post(NS, content=b"{nope").status_code == 400
    assert alice.post(NS).status_code == 400
    # A repeated item makes the whole create fail: nothing is left behind.
    dup = {"namespace": "ok", "tags": [{"name": "a"}, {"name": "a"}]}
    assert alice.post(NS, json=dup).status_code == 409
    assert alice.get(f"{NS}/ok").status_code == 404
    assert names(alice.get(NS)) == ["taken"]


def test_namespace_owner_on_create(alice: Api, admin: Api) -> None:
    assert alice.post(NS, json={"namespace": "n1", "owner": "bob"}).status_code == 403
    assert create_ns(alice, "n2", owner="alice")["owner"] == "alice"
    assert create_ns(admin, "n3", owner="bob")["owner"] == "bob"


def test_visibility_between_projects(alice: Api, bob: Api, admin: Api) -> None:
    create_ns(alice, "alice-private")
    create_ns(alice, "alice-public", visibility="public")
    create_ns(bob, "bob-private")
    assert sorted(names(alice.get(NS))) == ["alice-private", "alice-public"]
    assert sorted(names(bob.get(NS))) == ["alice-public", "bob-private"]
    assert sorted(names(admin.get(NS))) == ["alice-private", "alice-public", "bob-private"]
    assert names(bob.get(NS, params={"visibility": "private"})) == ["bob-private"]
    assert names(bob.get(NS, params={"visibility": "public"})) == ["alice-public"]
    assert sorted(names(admin.get(NS, params={"visibility": "private"}))) == [
        "alice-private",
        "bob-private",
    ]
    # What bob cannot see does not exist for him, whatever the sub-resource.
    for path in (
        "",
        "/objects",
        "/objects/o",
        "/properties",
        "/properties/p",
        "/tags",
        "/tags/t",
        "/resource_types",
    ):
        response = bob.get(f"{NS}/alice-private{path}")
        assert response.status_code == 404, path
    assert bob.get(f"{NS}/alice-public").status_code == 200
    assert bob.put(f"{NS}/alice-private", json={"namespace": "x"}).status_code == 404
    assert bob.delete(f"{NS}/alice-private").status_code == 404
    assert bob.post(f"{NS}/alice-private/tags/t").status_code == 404
    assert admin.get(f"{NS}/alice-private").status_code == 200


def test_only_the_owner_or_an_admin_changes_a_namespace(alice: Api, bob: Api, admin: Api) -> None:
    create_ns(alice, **FLAVOR_NS)
    base = f"{NS}/OS::Compute::CPU"
    prop = {"name": "extra", "title": "Extra", "type": "string"}
    refused = [
        bob.put(base, json={"namespace": "OS::Compute::CPU", "visibility": "public"}),
        bob.delete(base),
        bob.post(f"{base}/objects", json={"name": "Mine"}),
        bob.put(f"{base}/objects/Topology", json={"name": "Topology"}),
        bob.delete(f"{base}/objects/Topology"),
        bob.delete(f"{base}/objects"),
        bob.post(f"{base}/properties", json=prop),
        bob.put(f"{base}/properties/cpu_policy", json={**prop, "name": "cpu_policy"}),
        bob.delete(f"{base}/properties/cpu_policy"),
        bob.delete(f"{base}/properties"),
        bob.post(f"{base}/tags/mine"),
        bob.post(f"{base}/tags", json={"tags": [{"name": "mine"}]}),
        bob.put(f"{base}/tags/fast", json={"name": "faster"}),
        bob.delete(f"{base}/tags/fast"),
        bob.delete(f"{base}/tags"),
        bob.post(f"{base}/resource_types", json={"name": "OS::Cinder::Volume"}),
        bob.delete(f"{base}/resource_types/OS::Nova::Flavor"),
    ]
    for response in refused:
        assert response.status_code == 403, (response.request.method, response.request.url)
    # Nothing changed, and bob can still read it all.
    shown = bob.get(base).json()
    assert len(shown["objects"]) == 1 and len(shown["properties"]) == 2
    assert shown["tags"] == [{"name": "fast"}, {"name": "slow"}]
    assert len(shown["resource_type_associations"]) == 2
    # An admin may change what it does not own.
    assert admin.post(f"{base}/tags/admin-tag").status_code == 201
    assert admin.delete(base).status_code == 204


def test_protected_namespace_keeps_everything(alice: Api) -> None:
    create_ns(alice, **FLAVOR_NS, protected=True)
    base = f"{NS}/OS::Compute::CPU"
    for path in (
        "",
        "/objects",
        "/objects/Topology",
        "/properties",
        "/properties/cpu_policy",
        "/tags",
        "/tags/fast",
        "/resource_types/OS::Nova::Flavor",
    ):
        response = alice.delete(base + path)
        assert response.status_code == 403, path
        assert "protected" in response.text
    # Adding and changing stay allowed.
    assert alice.post(f"{base}/tags/new").status_code == 201
    update = {"namespace": "OS::Compute::CPU", "visibility": "public", "protected": False}
    assert alice.put(base, json=update).status_code == 200
    assert alice.delete(f"{base}/tags/new").status_code == 204
    assert alice.delete(base).status_code == 204
    assert alice.get(base).status_code == 404
    assert alice.delete(base).status_code == 404


def test_delete_namespace_removes_what_it_defines(alice: Api) -> None:
    create_ns(alice, **FLAVOR_NS)
    assert alice.delete(f"{NS}/OS::Compute::CPU").status_code == 204
    # The same definitions load again: nothing of the old namespace is left.
    again = create_ns(alice, **FLAVOR_NS)
    assert len(again["objects"]) == 1
    # Resource types outlive the namespaces associated with them.
    listed = names(alice.get("/v2/metadefs/resource_types"), "resource_types", "name")
    assert sorted(listed) == ["OS::Glance::Image", "OS::Nova::Flavor"]


def test_update_namespace_replaces_its_attributes(alice: Api, admin: Api) -> None:
    create_ns(
        alice,
        "old",
        display_name="Old",
        description="d",
        visibility="public",
        tags=[{"name": "kept"}],
    )
    create_ns(alice, "other")
    assert alice.put(f"{NS}/old", json={"namespace": "other"}).status_code == 409
    response = alice.put(f"{NS}/old", json={"namespace": "new", "display_name": "New"})
    assert response.status_code == 200, response.text
    ns = response.json()
    assert ns["namespace"] == "new" and ns["display_name"] == "New"
    assert ns["self"] == "/v2/metadefs/namespaces/new"
    # PUT replaces: what is not sent falls back to its default.
    assert "description" not in ns and ns["visibility"] == "private" and ns["owner"] == "alice"
    assert alice.get(f"{NS}/old").status_code == 404
    assert alice.get(f"{NS}/new/tags").json()["tags"] == [{"name": "kept"}]
    assert alice.put(f"{NS}/new", json={"namespace": "new", "owner": "bob"}).status_code == 403
    assert alice.put(f"{NS}/new", json={"display_name": "no namespace"}).status_code == 400
    assert alice.put(f"{NS}/new", json={"namespace": "new", "self": "x"}).status_code == 403
    assert alice.put(f"{NS}/new", json={"namespace": "n" * 81}).status_code == 400
    given = admin.put(f"{NS}/new", json={"namespace": "new", "owner": "bob"})
    assert given.status_code == 200 and given.json()["owner"] == "bob"
    assert alice.get(f"{NS}/new").status_code == 404


def test_list_paging_and_sorting(alice: Api) -> None:
    for name in ("c", "a", "e", "b", "d"):
        create_ns(alice, name)
    # Same-second creations: the id breaks the created_at tie, newest first.
    assert names(alice.get(NS)) == ["d", "b", "e", "a", "c"]
    by_name = {"sort_key": "namespace", "sort_dir": "asc", "limit": "2"}
    first = alice.get(NS, params=by_name)
    body = first.json()
    assert names(first) == ["a", "b"]
    assert body["schema"] == "/v2/schemas/metadefs/namespaces"
    assert body["first"] == "/v2/metadefs/namespaces?sort_key=namespace&sort_dir=asc&limit=2"
    assert body["next"].endswith("&marker=b")
    second = alice.get(body["next"])
    assert names(second) == ["c", "d"]
    third = alice.get(second.json()["next"])
    assert names(third) == ["e"]
    assert "next" not in third.json()
    assert names(
        alice.get(NS, params={"sort_key": "namespace", "sort_dir": "desc", "marker": "c"})
    ) == ["b", "a"]
    assert alice.get(NS, params={"limit": "0"}).json()["namespaces"] == []
    for params in (
        {"sort_dir": "up"},
        {"sort_key": "color"},
        {"limit": "-1"},
        {"limit": "many"},
        {"visibility": "shared"},
    ):
        assert alice.get(NS, params=params).status_code == 400, params
    assert alice.get(NS, params={"marker": "nope"}).status_code == 404


def test_list_filtered_by_resource_types(alice: Api) -> None:
    create_ns(alice, "flavor", resource_type_associations=[{"name": "OS::Nova::Flavor"}])
    create_ns(alice, "image", resource_type_associations=[{"name": "OS::Glance::Image"}])
    create_ns(
        alice,
        "both",
        resource_type_associations=[{"name": "OS::Nova::Flavor"}, {"name": "OS::Glance::Image"}],
    )
    create_ns(alice, "none")
    found = alice.get(NS, params={"resource_types": "OS::Nova::Flavor"})
    assert sorted(names(found)) == ["both", "flavor"]
    for ns in found.json()["namespaces"]:
        assert "OS::Nova::Flavor" in [a["name"] for a in ns["resource_type_associations"]]
    found = alice.get(NS, params={"resource_types": "OS::Nova::Flavor,OS::Glance::Image"})
    assert sorted(names(found)) == ["both", "flavor", "image"]
    assert names(alice.get(NS, params={"resource_types": "OS::Cinder::Volume"})) == []


# --- objects -------------------------------------------------------------------------------


def test_objects(alice: Api) -> None:
    create_ns(alice, "ns")
    base = f"{NS}/ns/objects"
    obj = {
        "name": "Disk",
        "description": "d",
        "required": ["size"],
        "properties": {"size": {"title": "Size", "type": "integer", "ignored": 1}},
    }
    response = alice.post(base, json=obj)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["self"] == "/v2/metadefs/namespaces/ns/objects/Disk"
    assert created["schema"] == "/v2/schemas/metadefs/object"
    assert created["properties"] == {"size": {"title": "Size", "type": "integer"}}
    assert TIMESTAMP.match(created["created_at"])
    assert alice.get(f"{base}/Disk").json() == created
    assert alice.post(base, json=obj).status_code == 409
    assert alice.post(base, json={"name": "Bare"}).json()["properties"] == {}
    listed = alice.get(base).json()
    assert listed["schema"] == "/v2/schemas/metadefs/objects"
    assert [o["name"] for o in listed["objects"]] == ["Disk", "Bare"]

    for body in (
        {},
        {"name": "x" * 81},
        {"name": "x", "required": "size"},
        {"name": "x", "required": ["a", "a"]},
        {"name": "x", "colour": "red"},
        {"name": "x", "properties": {"p": {"title": "P"}}},
    ):
        assert alice.post(base, json=body).status_code == 400, body
    for attr in ("self", "schema", "created_at", "updated_at"):
        assert alice.post(base, json={"name": "x", attr: "v"}).status_code == 403, attr

    assert alice.put(f"{base}/Disk", json={"name": "Bare"}).status_code == 409
    updated = alice.put(f"{base}/Disk", json={"name": "Volume"})
    assert updated.status_code == 200, updated.text
    # PUT replaces the definition: what is not sent is gone.
    assert "description" not in updated.json() and "required" not in updated.json()
    assert updated.json()["properties"] == {}
    assert alice.get(f"{base}/Disk").status_code == 404
    assert alice.put(f"{base}/Disk", json={"name": "Disk"}).status_code == 404
    assert alice.delete(f"{base}/Volume").status_code == 204
    assert alice.delete(f"{base}/Volume").status_code == 404
    assert alice.delete(base).status_code == 204
    assert alice.get(base).json()["objects"] == []


# --- properties ----------------------------------------------------------------------------


def test_properties(alice: Api) -> None:
    create_ns(alice, "ns")
    base = f"{NS}/ns/properties"
    prop = {
        "name": "os_distro",
        "title": "Distro",
        "type": "string",
        "enum": ["ubuntu", "fedora"],
        "default": "ubuntu",
        "readonly": False,
    }
    response = alice.post(base, json=prop)
    assert response.status_code == 201, response.text
    assert response.json() == prop
    assert alice.get(f"{base}/os_distro").json() == prop
    assert alice.post(base, json=prop).status_code == 409
    listed = alice.get(base).json()
    assert listed == {"properties": {"os_distro": {k: v for k, v in prop.items() if k != "name"}}}
    bad = [
        {"title": "No name", "type": "string"},
        {"name": "p", "type": "string"},
        {"name": "p", "title": "T"},
        {"name": "p", "title": "T", "type": "float"},
        {"name": "p" * 81, "title": "T", "type": "string"},
        {"name": "p", "title": "T", "type": "string", "pattern": "(unclosed"},
        {"name": "p", "title": "T", "type": "string", "maxLength": -1},
        {"name": "p", "title": "T", "type": "string", "surprise": True},
    ]
    for body in bad:
        assert alice.post(base, json=body).status_code == 400, body
    assert alice.post(base, json={**prop, "name": "x", "created_at": "t"}).status_code == 403

    alice.post(base, json={**prop, "name": "other"})
    assert alice.put(f"{base}/os_distro", json={**prop, "name": "other"}).status_code == 409
    renamed = alice.put(
        f"{base}/os_distro", json={"name": "distro", "title": "D", "type": "string"}
    )
    assert renamed.status_code == 200
    assert renamed.json() == {"name": "distro", "title": "D", "type": "string"}
    assert alice.get(f"{base}/os_distro").status_code == 404
    assert alice.delete(f"{base}/distro").status_code == 204
    assert alice.get(f"{base}/distro").status_code == 404
    assert alice.delete(base).status_code == 204
    assert alice.get(base).json() == {"properties": {}}


# --- resource types ------------------------------------------------------------------------


def test_definitions_too_large_to_store_are_400(alice: Api) -> None:
    """MariaDB's TEXT columns hold 64 KiB: larger definitions were 500 there, so they are
    refused on every database."""
    prop = {"name": "p", "title": "P", "type": "string"}
    create_ns(alice, "ns")
    create_ns(alice, "kept", objects=[{"name": "Disk"}], properties={"p": prop})
    before = alice.get(f"{NS}/kept").json()
    many = {f"p{i}": {"title": "t" * 200, "type": "string"} for i in range(400)}
    refused = [
        (f"{NS}/ns/objects", {"name": "O", "description": "d" * 70_000}, "description"),
        (f"{NS}/ns/objects", {"name": "O", "properties": many}, "The object's properties"),
        (
            f"{NS}/ns/objects",
            {"name": "O", "required": [f"r{i}" + "r" * 200 for i in range(400)]},
            "'required'",
        ),
        (f"{NS}/ns/properties", {**prop, "description": "d" * 70_000}, "The property definition"),
        (
            f"{NS}/ns/properties",
            {**prop, "enum": [f"e{i}" + "e" * 200 for i in range(400)]},
            "The property definition",
        ),
        (f"{NS}/kept/objects/Disk", {"name": "Disk", "properties": many}, "The object's"),
        (f"{NS}/kept/properties/p", {**prop, "description": "d" * 70_000}, "The property"),
        (NS, {"namespace": "big", "objects": [{"name": "O", "properties": many}]}, "The object's"),
    ]
    for path, body, what in refused:
        method = alice.put if path.startswith(f"{NS}/kept/") else alice.post
        response = method(path, json=body, headers={"Accept": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert response.json()["message"].startswith(what), path
        assert "is too large to store (" in response.json()["message"]
    assert alice.get(f"{NS}/ns/objects").json()["objects"] == []
    assert alice.get(f"{NS}/ns/properties").json()["properties"] == {}
    assert alice.get(f"{NS}/big").status_code == 404
    assert alice.get(f"{NS}/kept").json() == before


def test_resource_type_associations(alice: Api, bob: Api) -> None:
    create_ns(alice, "ns", visibility="public")
    base = f"{NS}/ns/resource_types"
    assert alice.get("/v2/metadefs/resource_types").json() == {"resource_types": []}
    response = alice.post(base, json={"name": "OS::Nova::Flavor", "prefix": "hw:"})
    assert response.status_code == 201, response.text
    assoc = response.json()
    assert assoc["name"] == "OS::Nova::Flavor" and assoc["prefix"] == "hw:"
    assert "properties_target" not in assoc and TIMESTAMP.match(assoc["created_at"])
    assert alice.post(base, json={"name": "OS::Nova::Flavor"}).status_code == 409
    assert bob.get(base).json() == {"resource_type_associations": [assoc]}
    [listed] = bob.get("/v2/metadefs/resource_types").json()["resource_types"]
    assert listed["name"] == "OS::Nova::Flavor" and TIMESTAMP.match(listed["created_at"])

    for body in (
        {},
        {"name": "r" * 81},
        {"name": "r", "prefix": "p" * 81},
        {"name": "r", "other": 1},
    ):
        assert alice.post(base, json=body).status_code == 400, body
    assert alice.post(base, json={"name": "r", "created_at": "t"}).status_code == 403

    assert alice.delete(f"{base}/OS::Nova::Flavor").status_code == 204
    assert alice.delete(f"{base}/OS::Nova::Flavor").status_code == 404
    assert alice.get(base).json() == {"resource_type_associations": []}
    assert len(alice.get("/v2/metadefs/resource_types").json()["resource_types"]) == 1


def test_resource_type_prefix(alice: Api) -> None:
    create_ns(alice, **FLAVOR_NS)
    base = f"{NS}/OS::Compute::CPU"
    shown = alice.get(base, params={"resource_type": "OS::Nova::Flavor"}).json()
    assert sorted(shown["properties"]) == ["hw:cpu_cores", "hw:cpu_policy"]
    [topology] = shown["objects"]
    assert sorted(topology["properties"]) == ["hw:cpu_sockets", "hw:cpu_threads"]
    assert topology["required"] == ["hw:cpu_sockets"]
    # Tags are not properties.
    assert shown["tags"] == [{"name": "fast"}, {"name": "slow"}]
    as_image = alice.get(base, params={"resource_type": "OS::Glance::Image"}).json()
    assert sorted(as_image["properties"]) == ["hw_cpu_cores", "hw_cpu_policy"]
    # Not associated: names unchanged.
    plain = alice.get(base, params={"resource_type": "OS::Cinder::Volume"}).json()
    assert sorted(plain["properties"]) == ["cpu_cores", "cpu_policy"]

    prop = alice.get(
        f"{base}/properties/hw:cpu_policy", params={"resource_type": "OS::Nova::Flavor"}
    )
    assert prop.status_code == 200, prop.text
    assert prop.json()["name"] == "cpu_policy"
    assert prop.json()["enum"] == ["shared", "dedicated"]
    unprefixed = alice.get(
        f"{base}/properties/cpu_policy", params={"resource_type": "OS::Nova::Flavor"}
    )
    assert unprefixed.status_code == 404
    assert "prefix" in unprefixed.text
    unassociated = alice.get(
        f"{base}/properties/hw:cpu_policy", params={"resource_type": "OS::Cinder::Volume"}
    )
    assert unassociated.status_code == 404
    # An association without a prefix cannot name a property through it.
    alice.post(f"{base}/resource_types", json={"name": "OS::Cinder::Volume"})
    no_prefix = alice.get(
        f"{base}/properties/cpu_policy", params={"resource_type": "OS::Cinder::Volume"}
    )
    assert no_prefix.status_code == 404
    assert alice.get(f"{base}/properties/cpu_policy").status_code == 200


# --- tags ----------------------------------------------------------------------------------


def test_single_tags(alice: Api) -> None:
    create_ns(alice, "ns")
    base = f"{NS}/ns/tags"
    response = alice.post(f"{base}/red")
    assert response.status_code == 201, response.text
    tag = response.json()
    assert tag["name"] == "red" and TIMESTAMP.match(tag["created_at"])
    assert set(tag) == {"name", "created_at", "updated_at"}
    assert alice.get(f"{base}/red").json() == tag
    assert alice.post(f"{base}/red").status_code == 409
    assert alice.post(f"{base}/{'t' * 81}").status_code == 400
    assert alice.post(f"{base}/blue", json={"name": "x"}).status_code == 400
    # Names are exact: case matters on every database.
    assert alice.post(f"{base}/Red").status_code == 201
    assert alice.get(f"{base}/RED").status_code == 404
    # ...and so do trailing spaces (MariaDB's usual binary collation would ignore them).
    assert alice.post(f"{base}/red%20").status_code == 201
    assert alice.get(f"{base}/red%20").json()["name"] == "red "
    assert alice.delete(f"{base}/red%20").status_code == 204

    alice.post(f"{base}/green")
    assert alice.put(f"{base}/red", json={"name": "green"}).status_code == 409
    assert alice.put(f"{base}/red", json={"name": "r" * 81}).status_code == 400
    assert alice.put(f"{base}/red", json={"name": "x", "created_at": "t"}).status_code == 403
    renamed = alice.put(f"{base}/red", json={"name": "crimson"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "crimson"
    assert alice.get(f"{base}/red").status_code == 404
    assert alice.delete(f"{base}/crimson").status_code == 204
    assert alice.delete(f"{base}/crimson").status_code == 404
    assert alice.delete(base).status_code == 204
    assert alice.get(base).json() == {"tags": []}


def test_bulk_tag_create_replaces_existing_tags(alice: Api) -> None:
    create_ns(alice, "ns", tags=[{"name": "old1"}, {"name": "old2"}])
    base = f"{NS}/ns/tags"
    response = alice.post(base, json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert response.status_code == 201, response.text
    assert response.json() == {"tags": [{"name": "a"}, {"name": "b"}]}
    assert sorted(names(alice.get(base), "tags", "name")) == ["a", "b"]
    # A repeated name fails the whole request; the tags stay as they were.
    dup = alice.post(base, json={"tags": [{"name": "c"}, {"name": "c"}]})
    assert dup.status_code == 409
    assert sorted(names(alice.get(base), "tags", "name")) == ["a", "b"]
    # Rocky only replaced when given tags: an empty list changes nothing.
    assert alice.post(base, json={"tags": []}).json() == {"tags": []}
    assert sorted(names(alice.get(base), "tags", "name")) == ["a", "b"]
    bodies: list[Any] = [
        {},
        {"tags": "a"},
        {"tags": [{"name": "a", "x": 1}]},
        {"tags": [{}]},
        {"tags": [{"name": "t" * 81}]},
        [{"name": "a"}],
    ]
    for body in bodies:
        assert alice.post(base, json=body).status_code == 400, body


def test_tag_listing(alice: Api) -> None:
    create_ns(alice, "ns", tags=[{"name": n} for n in ("b", "d", "a", "c")])
    base = f"{NS}/ns/tags"
    assert names(alice.get(base), "tags", "name") == ["c", "a", "d", "b"]
    by_name = {"sort_key": "name", "sort_dir": "asc"}
    assert names(alice.get(base, params=by_name), "tags", "name") == ["a", "b", "c", "d"]
    page = alice.get(base, params={**by_name, "limit": "2", "marker": "b"})
    assert names(page, "tags", "name") == ["c", "d"]
    assert alice.get(base, params={"marker": "zz"}).status_code == 404
    for params in ({"sort_dir": "sideways"}, {"sort_key": "colour"}, {"limit": "x"}):
        assert alice.get(base, params=params).status_code == 400, params


# --- schemas, policy, HTTP details ---------------------------------------------------------


def test_schemas_are_served(api: Api) -> None:
    expected = {
        "namespace": "namespace",
        "namespaces": "namespaces",
        "object": "object",
        "objects": "objects",
        "property": "property",
        "properties": "properties",
        "tag": "tag",
        "tags": "tags",
        "resource_type": "resource_type_association",
        "resource_types": "resource_type_associations",
    }
    for path, name in expected.items():
        response = api.get(f"/v2/schemas/metadefs/{path}")
        assert response.status_code == 200, path
        assert response.json()["name"] == name
    namespace = api.get("/v2/schemas/metadefs/namespace").json()
    assert namespace["required"] == ["namespace"]
    assert namespace["properties"]["namespace"]["maxLength"] == 80
    assert namespace["additionalProperties"] is False
    assert "property" in namespace["definitions"]
    collection = api.get("/v2/schemas/metadefs/namespaces").json()
    assert collection["properties"]["namespaces"]["items"]["name"] == "namespace"
    assert "definitions" in collection
    prop = api.get("/v2/schemas/metadefs/property").json()
    assert prop["required"] == ["title", "type", "name"]
    props = api.get("/v2/schemas/metadefs/properties").json()
    assert props["properties"]["properties"]["additionalProperties"]["required"] == [
        "title",
        "type",
    ]
    assert api.get("/v2/schemas/metadefs/unknown").status_code == 404
    assert api.post("/v2/schemas/metadefs/tag").status_code == 405


def test_policy_rules_are_enforced(policy_api: Callable[[dict[str, str]], Api]) -> None:
    api = policy_api(
        {
            "add_metadef_namespace": "role:admin",
            "get_metadef_tags": "!",
            "list_metadef_resource_types": "!",
        }
    )
    member, admin = api.as_("alice"), api.as_("root", roles="admin")
    assert member.post(NS, json={"namespace": "n"}).status_code == 403
    assert admin.post(NS, json={"namespace": "n", "owner": "alice"}).status_code == 201
    assert member.get(f"{NS}/n").status_code == 200
    assert member.post(f"{NS}/n/tags/t").status_code == 201
    assert member.get(f"{NS}/n/tags").status_code == 403
    assert member.get("/v2/metadefs/resource_types").status_code == 403


def test_http_details(alice: Api) -> None:
    create_ns(alice, "ns")
    assert alice.request("PATCH", f"{NS}/ns").status_code == 405
    response = alice.request("PATCH", f"{NS}/ns/tags/t")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, POST, PUT"
    assert alice.get(f"{NS}/ns", content=b"{}").status_code == 400
    assert alice.delete(f"{NS}/ns/tags", content=b"{}").status_code == 400
    assert alice.put(f"{NS}/ns", content=b"[1").status_code == 400
    for path in ("", "/ns/objects", "/ns/properties", "/ns/resource_types", "/ns/tags"):
        assert alice.post(f"{NS}{path}", content=b"").status_code == 400, path
        assert alice.post(f"{NS}{path}", json=[{"name": "x"}]).status_code == 400, path
    assert alice.put(f"{NS}/ns", json=["ns"]).status_code == 400
