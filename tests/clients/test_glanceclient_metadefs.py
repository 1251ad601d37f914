"""The metadata definitions catalog through python-glanceclient's ``glance md-*`` commands,
against a running glimpse-api."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glimpse.services.metadefs.definition_files import SHIPPED
from tests.support.glance_cli import Glance, runner

ALICE = "alice:projA:member"
BOB = "bob:projB:member"
ADMIN = "root:projR:admin"
WIDE = ("--max-column-width", "1000")


@pytest.fixture
def glance(server: str, tmp_path: Path) -> Glance:
    return runner(server, tmp_path)


def _namespace(glance: Glance, name: str = "Alice::Tuning", *args: str) -> dict[str, str]:
    return glance(ALICE, "md-namespace-create", name, *args).properties()


def test_namespace_create_list_show_update_delete(glance: Glance) -> None:
    created = _namespace(
        glance,
        "Alice::Tuning",
        "--display-name",
        "Tuning",
        "--description",
        "Knobs",
        "--visibility",
        "private",
    )
    assert created["namespace"] == "Alice::Tuning"
    assert created["owner"] == "projA"
    assert created["visibility"] == "private" and created["protected"] == "False"
    assert created["schema"] == "/v2/schemas/metadefs/namespace"

    assert glance(ALICE, "md-namespace-list").column("namespace") == ["Alice::Tuning"]
    assert glance(BOB, "md-namespace-list").column("namespace") == []
    hidden = glance(BOB, "md-namespace-show", "Alice::Tuning", expect=1)
    assert "404" in hidden.err and "Alice::Tuning" in hidden.err

    duplicate = glance(ALICE, "md-namespace-create", "Alice::Tuning", expect=1)
    assert "409" in duplicate.err

    updated = glance(
        ALICE,
        "md-namespace-update",
        "Alice::Tuning",
        "--namespace",
        "Alice::Knobs",
        "--display-name",
        "Knobs",
        "--visibility",
        "public",
    ).properties()
    assert updated["namespace"] == "Alice::Knobs" and updated["display_name"] == "Knobs"
    assert glance(BOB, "md-namespace-list", "--visibility", "public").column("namespace") == [
        "Alice::Knobs"
    ]
    refused = glance(BOB, "md-namespace-update", "Alice::Knobs", "--display-name", "x", expect=1)
    assert "403" in refused.err

    shown = glance(ALICE, "md-namespace-show", "Alice::Knobs", *WIDE).properties()
    # glanceclient sends the whole namespace back on update: the rest is kept.
    assert shown["description"] == "Knobs" and shown["owner"] == "projA"
    glance(ALICE, "md-namespace-delete", "Alice::Knobs")
    gone = glance(ALICE, "md-namespace-show", "Alice::Knobs", expect=1)
    assert "404" in gone.err


def test_properties(glance: Glance) -> None:
    _namespace(glance)
    schema = json.dumps({"type": "integer", "title": "Speed", "minimum": 1, "maximum": 8})
    created = glance(
        ALICE,
        "md-property-create",
        "Alice::Tuning",
        "--name",
        "speed",
        "--title",
        "Speed",
        "--type",
        "integer",
        "--schema",
        schema,
    ).properties()
    assert created["name"] == "speed" and created["type"] == "integer"
    assert created["minimum"] == "1" and created["maximum"] == "8"

    shown = glance(ALICE, "md-property-show", "Alice::Tuning", "speed").properties()
    assert shown["title"] == "Speed"
    updated = glance(
        ALICE,
        "md-property-update",
        "Alice::Tuning",
        "speed",
        "--name",
        "velocity",
        "--title",
        "Velocity",
        "--schema",
        json.dumps({"type": "number", "title": "Velocity"}),
    ).properties()
    assert updated["name"] == "velocity" and updated["type"] == "number"
    listed = glance(ALICE, "md-property-list", "Alice::Tuning").table()
    assert listed == [{"name": "velocity", "title": "Velocity", "type": "number"}]

    invalid = glance(
        ALICE,
        "md-property-create",
        "Alice::Tuning",
        "--name",
        "bad",
        "--title",
        "Bad",
        "--type",
        "colour",
        "--schema",
        "{}",
        expect=1,
    )
    assert "colour" in invalid.out + invalid.err

    glance(ALICE, "md-property-delete", "Alice::Tuning", "velocity")
    assert glance(ALICE, "md-property-list", "Alice::Tuning").table() == []
    glance(
        ALICE,
        "md-property-create",
        "Alice::Tuning",
        "--name",
        "a",
        "--title",
        "A",
        "--type",
        "string",
        "--schema",
        "{}",
    )
    glance(ALICE, "md-namespace-properties-delete", "Alice::Tuning")
    assert glance(ALICE, "md-property-list", "Alice::Tuning").table() == []


def test_objects(glance: Glance) -> None:
    _namespace(glance)
    schema = {
        "description": "An engine",
        "required": ["power"],
        "properties": {"power": {"type": "integer", "title": "Power", "minimum": 0}},
    }
    created = glance(
        ALICE,
        "md-object-create",
        "Alice::Tuning",
        "--name",
        "Engine",
        "--schema",
        json.dumps(schema),
    ).properties()
    assert created["name"] == "Engine" and created["description"] == "An engine"
    assert json.loads(created["required"]) == ["power"]

    power = glance(
        ALICE, "md-object-property-show", "Alice::Tuning", "Engine", "power"
    ).properties()
    assert power == {"name": "power", "title": "Power", "type": "integer", "minimum": "0"}

    updated = glance(
        ALICE,
        "md-object-update",
        "Alice::Tuning",
        "Engine",
        "--name",
        "Motor",
        "--schema",
        json.dumps({"description": "A motor"}),
    ).properties()
    assert updated["name"] == "Motor" and updated["description"] == "A motor"
    assert (
        glance(ALICE, "md-object-show", "Alice::Tuning", "Motor").properties()["properties"]
        == '["power"]'
    )
    assert glance(ALICE, "md-object-list", "Alice::Tuning").table() == [
        {"name": "Motor", "description": "A motor"}
    ]
    missing = glance(ALICE, "md-object-show", "Alice::Tuning", "Engine", expect=1)
    assert "404" in missing.err

    glance(ALICE, "md-object-delete", "Alice::Tuning", "Motor")
    glance(ALICE, "md-object-create", "Alice::Tuning", "--name", "Spare", "--schema", "{}")
    glance(ALICE, "md-namespace-objects-delete", "Alice::Tuning")
    assert glance(ALICE, "md-object-list", "Alice::Tuning").table() == []


def test_tags(glance: Glance) -> None:
    _namespace(glance)
    assert (
        glance(ALICE, "md-tag-create", "Alice::Tuning", "--name", "fast").properties()["name"]
        == "fast"
    )
    # Rocky's bulk create replaces every existing tag.
    glance(ALICE, "md-tag-create-multiple", "Alice::Tuning", "--names", "a,b,c")
    assert sorted(glance(ALICE, "md-tag-list", "Alice::Tuning").column("name")) == ["a", "b", "c"]
    renamed = glance(ALICE, "md-tag-update", "Alice::Tuning", "a", "--name", "alpha")
    assert renamed.properties()["name"] == "alpha"
    assert glance(ALICE, "md-tag-show", "Alice::Tuning", "alpha").properties()["name"] == "alpha"
    taken = glance(ALICE, "md-tag-create", "Alice::Tuning", "--name", "b", expect=1)
    assert "409" in taken.err
    glance(ALICE, "md-tag-delete", "Alice::Tuning", "b")
    assert sorted(glance(ALICE, "md-tag-list", "Alice::Tuning").column("name")) == ["alpha", "c"]
    refused = glance(BOB, "md-tag-create", "Alice::Tuning", "--name", "x", expect=1)
    assert "404" in refused.err  # private: Bob does not even see it
    glance(ALICE, "md-namespace-tags-delete", "Alice::Tuning")
    assert glance(ALICE, "md-tag-list", "Alice::Tuning").table() == []


def test_resource_types(glance: Glance) -> None:
    _namespace(glance)
    glance(
        ALICE,
        "md-property-create",
        "Alice::Tuning",
        "--name",
        "cpu_policy",
        "--title",
        "CPU policy",
        "--type",
        "string",
        "--schema",
        "{}",
    )
    associated = glance(
        ALICE,
        "md-resource-type-associate",
        "Alice::Tuning",
        "--name",
        "OS::Nova::Flavor",
        "--prefix",
        "hw:",
    ).properties()
    assert associated["name"] == "OS::Nova::Flavor" and associated["prefix"] == "hw:"
    glance(
        ALICE,
        "md-resource-type-associate",
        "Alice::Tuning",
        "--name",
        "OS::Cinder::Volume",
        "--properties-target",
        "image",
    )

    listed = glance(ALICE, "md-namespace-resource-type-list", "Alice::Tuning").table()
    assert {row["name"]: (row["prefix"], row["properties_target"]) for row in listed} == {
        "OS::Nova::Flavor": ("hw:", ""),
        "OS::Cinder::Volume": ("", "image"),
    }
    assert {"OS::Nova::Flavor", "OS::Cinder::Volume"} <= set(
        glance(ALICE, "md-resource-type-list").column("name")
    )
    for_flavors = glance(ALICE, "md-namespace-list", "--resource-types", "OS::Nova::Flavor")
    assert for_flavors.column("namespace") == ["Alice::Tuning"]
    prefixed = glance(
        ALICE, "md-namespace-show", "Alice::Tuning", "--resource-type", "OS::Nova::Flavor"
    ).properties()
    assert json.loads(prefixed["properties"]) == ["hw:cpu_policy"]

    glance(ALICE, "md-resource-type-deassociate", "Alice::Tuning", "OS::Nova::Flavor")
    remaining = glance(ALICE, "md-namespace-resource-type-list", "Alice::Tuning")
    assert remaining.column("name") == ["OS::Cinder::Volume"]
    gone = glance(
        ALICE, "md-resource-type-deassociate", "Alice::Tuning", "OS::Nova::Flavor", expect=1
    )
    assert "404" in gone.err


def test_import_a_shipped_definition(glance: Glance) -> None:
    path = SHIPPED / "cim-processor-allocation-setting-data.json"
    imported = glance(ADMIN, "md-namespace-import", "--file", str(path)).properties()
    assert imported["namespace"] == "CIM::ProcessorAllocationSettingData"
    assert imported["protected"] == "True" and imported["visibility"] == "public"

    targets = glance(ALICE, "md-namespace-resource-type-list", imported["namespace"]).table()
    server = next(row for row in targets if row["name"] == "OS::Nova::Server")
    assert server == {
        "name": "OS::Nova::Server",
        "prefix": "",
        "properties_target": "scheduler_hints",
    }
    on_images = glance(
        ALICE,
        "md-namespace-show",
        imported["namespace"],
        "--resource-type",
        "OS::Glance::Image",
        *WIDE,
    ).properties()
    assert "CIM_PASD_ProcessorArchitecture" in json.loads(on_images["properties"])
    architecture = glance(
        ALICE, "md-property-show", imported["namespace"], "ProcessorArchitecture", *WIDE
    ).properties()
    assert "x86" in json.loads(architecture["enum"])

    # Public, but only its owner changes it; protected, so not even the owner deletes it.
    refused = glance(ALICE, "md-namespace-delete", imported["namespace"], expect=1)
    assert "403" in refused.err
    protected = glance(ADMIN, "md-namespace-delete", imported["namespace"], expect=1)
    assert "403" in protected.err and "protected" in protected.err
    glance(ADMIN, "md-namespace-update", imported["namespace"], "--protected", "False")
    glance(ADMIN, "md-namespace-delete", imported["namespace"])
    assert glance(ALICE, "md-namespace-list").table() == []
