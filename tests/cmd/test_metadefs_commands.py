"""``glimpse-manage db load_metadefs / unload_metadefs / export_metadefs``, run as real
commands against each database, checked through the API; and the shipped definitions."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from glimpse.schemas import metadefs as schemas
from glimpse.services.metadefs.definition_files import SHIPPED
from tests.support import databases
from tests.support.client import Api

NS = "/v2/metadefs/namespaces"
SHIPPED_FILES = sorted(SHIPPED.glob("*.json"))
PASD = "CIM::ProcessorAllocationSettingData"
PASD_FILE = SHIPPED / "cim-processor-allocation-setting-data.json"


@dataclasses.dataclass
class Run:
    code: int
    out: str
    err: str


Manage = Callable[..., Run]


def _read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def shipped() -> dict[str, dict[str, Any]]:
    return {doc["namespace"]: doc for doc in map(_read, SHIPPED_FILES)}


def as_exported(document: dict[str, Any]) -> dict[str, Any]:
    """A definition file as export_metadefs writes it back after loading it."""
    expected = copy.deepcopy(document)
    expected.setdefault("owner", "admin")
    expected.setdefault("visibility", "private")
    expected.setdefault("protected", False)
    expected.setdefault("properties", {})
    expected.setdefault("objects", [])
    expected.setdefault("tags", [])
    expected["resource_type_associations"] = sorted(
        expected.get("resource_type_associations") or [], key=lambda a: a["name"]
    )
    return expected


def _write_conf(directory: Path, url: str) -> Path:
    path = directory / "glimpse-manage.conf"
    path.write_text(f"[database]\nconnection = {url.replace('$', '$$')}\n")
    return path


def _command(conf: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "glimpse.cmd.manage", "--config-file", str(conf), *args]


@pytest.fixture
def manage_conf(database_url: str, tmp_path: Path) -> Path:
    """A configuration naming this backend's database, emptied for the test."""
    databases.empty_tables(database_url)
    return _write_conf(tmp_path, database_url)


@pytest.fixture
def manage(manage_conf: Path) -> Manage:
    """``manage(*args, expect=0)``: run glimpse-manage with pipes (as a script would)."""

    def run(*args: str, expect: int | None = 0) -> Run:
        done = subprocess.run(
            _command(manage_conf, *args), capture_output=True, text=True, timeout=300
        )
        result = Run(done.returncode, done.stdout, done.stderr)
        if expect is not None:
            assert result.code == expect, result
        return result

    return run


def namespace_names(api: Api, **params: str) -> set[str]:
    response = api.get(NS, params={"limit": "1000", **params})
    assert response.status_code == 200, response.text
    return {ns["namespace"] for ns in response.json()["namespaces"]}


def associations(api: Api, namespace: str) -> dict[str, dict[str, Any]]:
    response = api.get(f"{NS}/{namespace}/resource_types")
    assert response.status_code == 200, response.text
    return {a["name"]: a for a in response.json()["resource_type_associations"]}


# --- loading the shipped set ---------------------------------------------------------------


def test_shipped_definitions_load_and_are_served(manage: Manage, api: Api) -> None:
    loaded = manage("db", "load_metadefs")
    assert f"{len(SHIPPED_FILES)} created." in loaded.out
    assert loaded.err == ""  # no progress when stderr is not a terminal

    alice = api.as_("alice")
    assert namespace_names(api) == set(shipped())
    assert namespace_names(alice) == set(shipped())  # all public

    # The Rocky fix: Nova reads these from a server's scheduler hints, unprefixed.
    pasd = associations(alice, PASD)
    assert pasd["OS::Nova::Server"]["properties_target"] == "scheduler_hints"
    assert "prefix" not in pasd["OS::Nova::Server"]
    for resource_type in ("OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor"):
        assert pasd[resource_type]["prefix"] == "CIM_PASD_"
    assert pasd["OS::Cinder::Volume"]["properties_target"] == "image"
    assert PASD in namespace_names(alice, resource_types="OS::Nova::Server")

    for_images = namespace_names(alice, resource_types="OS::Glance::Image")
    assert {"OS::Compute::LibvirtImage", "OS::Compute::Hypervisor", "OS::Glance::Signatures"} <= (
        for_images
    )
    libvirt_image = associations(alice, "OS::Compute::LibvirtImage")
    assert libvirt_image["OS::Cinder::Volume"]["properties_target"] == "image"
    disk_bus = alice.get(f"{NS}/OS::Compute::LibvirtImage/properties/hw_disk_bus").json()
    assert {"virtio", "scsi", "ide", "sata"} <= set(disk_bus["enum"])

    flavor_view = alice.get(
        f"{NS}/OS::Compute::CPUPinning", params={"resource_type": "OS::Nova::Flavor"}
    ).json()
    assert set(flavor_view["properties"]) == {"hw:cpu_policy", "hw:cpu_thread_policy"}

    webservers = alice.get(f"{NS}/OS::Software::WebServers").json()
    assert {o["name"] for o in webservers["objects"]} == {"Apache HTTP Server", "Nginx", "IIS"}
    assert {"nginx", "apache"} <= {t["name"] for t in webservers["tags"]}

    resource_types = {
        r["name"] for r in alice.get("/v2/metadefs/resource_types").json()["resource_types"]
    }
    assert {
        "OS::Glance::Image",
        "OS::Cinder::Volume",
        "OS::Nova::Flavor",
        "OS::Nova::Server",
        "OS::Nova::Aggregate",
    } <= resource_types

    # Loaded namespaces belong to "admin", as Glance's loader has it: projects only read them.
    shown = alice.get(f"{NS}/OS::Compute::Libvirt").json()
    assert shown["owner"] == "admin" and shown["protected"] is True
    assert alice.delete(f"{NS}/OS::Software::DBMS/tags").status_code == 403

    again = manage("db", "load_metadefs")
    assert f"{len(SHIPPED_FILES)} skipped." in again.out
    assert "--merge" in again.out


def test_merge_modes_bring_the_rocky_fix_into_an_older_catalog(
    manage: Manage, api: Api, tmp_path: Path
) -> None:
    original = _read(PASD_FILE)
    older = copy.deepcopy(original)
    # Before Rocky, the OS::Nova::Server association carried a misspelt target.
    for association in older["resource_type_associations"]:
        if association["name"] == "OS::Nova::Server":
            association["properties_target"] = "schedular_hints"
    older["display_name"] = "Older display name"
    older["properties"]["ProcessorArchitecture"]["title"] = "Older title"
    del older["properties"]["InstructionSetExtensionName"]
    older["properties"]["SiteSpecific"] = {"title": "Site specific", "type": "string"}
    older["tags"] = [{"name": "site-tag"}]
    folder = tmp_path / "older"
    folder.mkdir()
    (folder / "pasd.json").write_text(json.dumps(older))
    manage("db", "load_metadefs", "--path", str(folder))

    def pasd() -> tuple[dict[str, Any], str]:
        shown = api.get(f"{NS}/{PASD}").json()
        return shown, associations(api, PASD)["OS::Nova::Server"]["properties_target"]

    others = len(SHIPPED_FILES) - 1
    skipped = manage("db", "load_metadefs")
    assert f"{others} created, 1 skipped." in skipped.out
    shown, target = pasd()
    assert target == "schedular_hints"
    assert "InstructionSetExtensionName" not in shown["properties"]

    # --merge adds what is missing, keeps what exists.
    merged = manage("db", "load_metadefs", "--merge")
    assert f"{others + 1} merged." in merged.out
    shown, target = pasd()
    assert target == "schedular_hints"
    assert shown["display_name"] == "Older display name"
    assert shown["properties"]["ProcessorArchitecture"]["title"] == "Older title"
    assert (
        shown["properties"]["InstructionSetExtensionName"]
        == (original["properties"]["InstructionSetExtensionName"])
    )
    assert "SiteSpecific" in shown["properties"]

    # --merge --prefer_new makes existing items what the files say: the fix lands.
    updated = manage("db", "load_metadefs", "--merge", "--prefer_new")
    assert f"{others + 1} updated." in updated.out
    shown, target = pasd()
    assert target == "scheduler_hints"
    assert shown["display_name"] == original["display_name"]
    assert (
        shown["properties"]["ProcessorArchitecture"]
        == (original["properties"]["ProcessorArchitecture"])
    )
    # ...but a merge never removes what only the database has.
    assert "SiteSpecific" in shown["properties"]
    assert shown["tags"] == [{"name": "site-tag"}]

    # --merge --overwrite reloads the namespace from its file (a single file here).
    replaced = manage("db", "load_metadefs", "--merge", "--overwrite", "--path", str(PASD_FILE))
    assert "1 replaced." in replaced.out
    export = tmp_path / "export"
    manage("db", "export_metadefs", "--path", str(export))
    assert _read(export / "CIMProcessorAllocationSettingData.json") == as_exported(original)
    assert "SiteSpecific" not in api.get(f"{NS}/{PASD}").json()["properties"]


def test_export_then_load_into_an_empty_database_gives_the_same_catalog(
    manage: Manage, api: Api, tmp_path: Path
) -> None:
    manage("db", "load_metadefs")
    # What the shipped files do not use: a project's private namespace, required object
    # properties, array items, confidential and read-only properties, patterns.
    alice = api.as_("alice")
    private = {
        "namespace": "Alice::Private",
        "visibility": "private",
        "resource_type_associations": [
            {"name": "OS::Glance::Image", "prefix": "alice_"},
            {"name": "Alice::Thing", "properties_target": "metadata"},
        ],
        "properties": {
            "secret": {
                "title": "Secret",
                "type": "string",
                "confidential": True,
                "readonly": True,
                "maxLength": 10,
                "minLength": 2,
                "pattern": "^a",
            },
        },
        "objects": [
            {"name": "Bare", "properties": {}},
            {
                "name": "Shaped",
                "description": "With required names",
                "required": ["colours"],
                "properties": {
                    "colours": {
                        "title": "Colours",
                        "type": "array",
                        "uniqueItems": True,
                        "minItems": 1,
                        "maxItems": 3,
                        "items": {"type": "string", "enum": ["red", "blue"]},
                    }
                },
            },
        ],
        "tags": [{"name": "zeta"}, {"name": "alpha"}],
    }
    assert alice.post(NS, json=private).status_code == 201

    first = tmp_path / "first"
    exported = manage("db", "export_metadefs", "--path", str(first))
    assert f"Exported {len(SHIPPED_FILES) + 1} namespace(s)" in exported.out
    documents = {doc["namespace"]: doc for doc in map(_read, first.iterdir())}
    assert set(documents) == {*shipped(), "Alice::Private"}
    for name, document in shipped().items():
        assert documents[name] == as_exported(document), name
    assert documents["Alice::Private"]["owner"] == "alice"
    assert documents["Alice::Private"]["tags"] == [{"name": "zeta"}, {"name": "alpha"}]

    unloaded = manage("db", "unload_metadefs")
    assert "metadef_namespaces" in unloaded.out
    assert namespace_names(api) == set()
    assert api.get("/v2/metadefs/resource_types").json()["resource_types"] == []

    manage("db", "load_metadefs", "--path", str(first))
    second = tmp_path / "second"
    manage("db", "export_metadefs", "--path", str(second))
    assert {p.name: p.read_bytes() for p in second.iterdir()} == {
        p.name: p.read_bytes() for p in first.iterdir()
    }
    again = alice.get(f"{NS}/Alice::Private").json()
    assert again["owner"] == "alice" and again["visibility"] == "private"
    assert api.as_("bob").get(f"{NS}/Alice::Private").status_code == 404


def test_unload_deletes_every_definition(manage: Manage, api: Api) -> None:
    manage("db", "load_metadefs")
    assert api.post(NS, json={"namespace": "Mine", "tags": [{"name": "x"}]}).status_code == 201
    result = manage("db", "unload_metadefs")
    assert "Deleted 26 row(s) from metadef_namespaces." in result.out
    assert namespace_names(api) == set()
    assert api.get("/v2/metadefs/resource_types").json()["resource_types"] == []
    assert manage("db", "unload_metadefs").code == 0  # nothing left is fine


def test_bad_files_are_reported_and_the_others_loaded(
    manage: Manage, api: Api, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.json").write_text(json.dumps({"namespace": "Good::One"}))
    (folder / "broken.json").write_text('{"namespace": ')
    (folder / "untitled.json").write_text(
        json.dumps({"namespace": "Bad::Untitled", "properties": {"p": {"type": "string"}}})
    )
    (folder / "repeated.json").write_text(
        json.dumps({"namespace": "Bad::Repeated", "tags": [{"name": "t"}, {"name": "t"}]})
    )
    (folder / "README.txt").write_text("not a definition")
    result = manage("db", "load_metadefs", "--path", str(folder), expect=1)
    assert "4 definition file(s)" in result.out and "1 created, 3 failed." in result.out
    for name in ("broken.json", "untitled.json", "repeated.json"):
        assert f"{folder / name}: " in result.err
    assert "'t' is listed twice" in result.err
    assert namespace_names(api) == {"Good::One"}


def test_legacy_spellings_take_positional_values(manage: Manage, api: Api, tmp_path: Path) -> None:
    folder = tmp_path / "defs"
    folder.mkdir()
    definition = {
        "namespace": "Legacy::NS",
        "display_name": "First",
        "properties": {"p": {"title": "P", "type": "string"}},
    }
    (folder / "legacy.json").write_text(json.dumps(definition))
    assert "1 created." in manage("db_load_metadefs", str(folder)).out

    definition["display_name"] = "Second"
    (folder / "legacy.json").write_text(json.dumps(definition))
    # db_load_metadefs PATH MERGE PREFER_NEW: "False" reads as unset.
    assert "1 merged." in manage("db_load_metadefs", str(folder), "True", "False").out
    assert api.get(f"{NS}/Legacy::NS").json()["display_name"] == "First"
    assert "1 updated." in manage("db_load_metadefs", str(folder), "True", "True").out
    assert api.get(f"{NS}/Legacy::NS").json()["display_name"] == "Second"

    out = tmp_path / "out"
    manage("db_export_metadefs", str(out))
    assert [p.name for p in out.iterdir()] == ["LegacyNS.json"]
    manage("db_unload_metadefs")
    assert namespace_names(api) == set()


def test_refused_options_and_paths(tmp_path: Path) -> None:
    # A database never synced: each of these must fail before it matters.
    conf = _write_conf(tmp_path, f"sqlite:///{tmp_path}/never-synced.sqlite")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        ("--prefer_new",): "add --merge",
        ("--overwrite",): "add --merge",
        ("--merge", "--prefer_new", "--overwrite"): "at most one of --prefer_new and --overwrite",
        ("--path", str(tmp_path / "missing")): "No such file or folder",
        ("--path", str(empty)): "No metadata definition files (*.json)",
        (): "run 'glimpse-manage db sync'",
    }
    # The commands are independent: run them side by side.
    running = {
        args: subprocess.Popen(
            _command(conf, "db", "load_metadefs", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in cases
    }
    for args, process in running.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 1, (args, out, err)
        assert cases[args] in err, (args, err)
        assert out == ""


def test_progress_is_shown_on_a_terminal(manage_conf: Path) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        _command(manage_conf, "db", "load_metadefs"),
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the command closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, shown
    total = len(SHIPPED_FILES)
    assert f"Loading {total}/{total}: " in shown.decode()
    assert f"{total} created." in out


# --- the shipped files ---------------------------------------------------------------------


def test_shipped_files_match_the_served_schemas(api: Api) -> None:
    served = {
        kind: api.get(f"/v2/schemas/metadefs/{kind}").json()
        for kind in ("namespace", "object", "property", "tag", "resource_type")
    }
    checkers = jsonschema.FormatChecker()

    def check(kind: str, document: dict[str, Any]) -> None:
        jsonschema.Draft4Validator(served[kind], format_checker=checkers).validate(document)

    assert 15 <= len(SHIPPED_FILES) <= 30
    names = [_read(path)["namespace"] for path in SHIPPED_FILES]
    assert len(set(names)) == len(names)
    for path in SHIPPED_FILES:
        document = _read(path)
        check("namespace", document)
        assert document["visibility"] == "public", path.name
        assert document.get("display_name") and document.get("description"), path.name
        for association in document["resource_type_associations"]:
            check("resource_type", association)
        every_property = dict(document.get("properties", {}))
        for obj in document.get("objects", []):
            check("object", obj)
            assert obj.get("description"), (path.name, obj["name"])
            every_property.update(obj["properties"])
        for name, definition in every_property.items():
            check("property", {"name": name, **definition})
            assert definition.get("description"), (path.name, name)
            # Nothing the catalog would drop, so an export gives the file back.
            assert schemas.property_definition(definition) == definition, (path.name, name)
            enum = definition.get("enum") or definition.get("items", {}).get("enum") or []
            assert len(set(enum)) == len(enum), (path.name, name)
        for tag in document.get("tags", []):
            check("tag", tag)
