"""Property-based fuzzing of metadata definitions, tasks and schemas: never a 5xx.

As in ``test_fuzz_images``: one in-process API per test, generated hostile requests,
every answer below 500 and each 4xx in Glance's error format; a refused change
leaves what it aimed at as it was.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import fuzz
from tests.support.client import IMPORT_TASK, Api

NS = "/v2/metadefs/namespaces"
BASE = f"{NS}/fuzz-ns"
JSON = {"Content-Type": "application/json", "Accept": "application/json"}
NAMESPACE_KEYS = [
    "namespace",
    "display_name",
    "description",
    "visibility",
    "protected",
    "owner",
    "resource_type_associations",
    "objects",
    "properties",
    "tags",
    "created_at",
    "schema",
    "self",
]
PROPERTY_KEYS = [
    "name",
    "title",
    "type",
    "description",
    "enum",
    "items",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "default",
    "readonly",
    "operators",
    "additionalItems",
    "uniqueItems",
    "minItems",
    "maxItems",
]
PROPERTY = st.one_of(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["p1", "p2", "prop"]),
            "title": fuzz.text(),
            "type": st.sampled_from(
                ["string", "integer", "number", "boolean", "array", "object", "x", ""]
            ),
        },
        optional={key: fuzz.json_values() for key in PROPERTY_KEYS[3:]},
    ),
    fuzz.objects(PROPERTY_KEYS),
)
OBJECT_KEYS = ["name", "description", "required", "properties", "schema", "self", "created_at"]
LIST_PARAMS = [
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "visibility",
    "resource_types",
    "resource_type",
    "namespace",
]


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite only (see :func:`tests.support.fuzz.sqlite_database`)."""
    yield from fuzz.sqlite_database(tmp_path_factory)


@pytest.fixture
def catalog(api: Api) -> None:
    """A namespace with an object, a property, a tag and a resource type association."""
    _create_catalog(api)


def _look(api: Api, path: str) -> Any:
    response = api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="%")


@fuzz.FUZZ
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {"namespace": st.sampled_from(["fz", "fz2", "fuzz-ns"])},
            optional={
                "objects": st.lists(fuzz.objects(OBJECT_KEYS), max_size=2),
                "properties": st.dictionaries(fuzz.text(), PROPERTY, max_size=2),
                "tags": fuzz.json_values(),
                "resource_type_associations": fuzz.json_values(),
                "visibility": fuzz.json_values(),
                "protected": fuzz.json_values(),
            },
        ).map(fuzz.encode),
        fuzz.bodies(NAMESPACE_KEYS),
    ),
    method=st.sampled_from(["POST", "PUT"]),
)
def test_namespace_bodies(api: Api, catalog: None, body: bytes, method: str) -> None:
    before = _look(api, BASE)
    path = NS if method == "POST" else BASE
    response = api.request(method, path, content=body, headers=JSON)
    fuzz.assert_handled(response)
    if response.status_code == 201:
        name = response.json()["namespace"]
        path = f"{NS}/{_segment(name)}"
        assert api.put(path, json={"namespace": name, "protected": False}).status_code == 200
        assert api.delete(path).status_code == 204
    if response.status_code >= 400:
        assert _look(api, BASE) == before
    elif method == "PUT":
        _reset_catalog(api, response.json()["namespace"])


def _reset_catalog(api: Api, name: str) -> None:
    """Drop namespace ``name`` if it is there (unprotecting it first); create the catalog."""
    path = f"{NS}/{_segment(name)}"
    if api.get(path).status_code == 200:
        assert api.put(path, json={"namespace": name, "protected": False}).status_code == 200
        assert api.delete(path).status_code == 204
    _create_catalog(api)


@fuzz.FUZZ
@given(
    kind=st.sampled_from(["objects", "properties"]),
    body=st.one_of(
        PROPERTY.map(fuzz.encode),
        fuzz.bodies(OBJECT_KEYS + PROPERTY_KEYS),
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["o2", "obj"]),
                "properties": st.dictionaries(fuzz.text(), PROPERTY, max_size=2),
            },
            optional={"required": fuzz.json_values()},
        ).map(fuzz.encode),
    ),
    method=st.sampled_from(["POST", "PUT"]),
)
def test_object_and_property_bodies(
    api: Api, catalog: None, kind: str, body: bytes, method: str
) -> None:
    existing = f"{BASE}/{kind}/{'obj' if kind == 'objects' else 'prop'}"
    before = _look(api, existing)
    path = f"{BASE}/{kind}" if method == "POST" else existing
    response = api.request(method, path, content=body, headers=JSON)
    fuzz.assert_handled(response)
    if response.status_code >= 400:
        assert _look(api, existing) == before
    else:
        _reset_catalog(api, "fuzz-ns")


@fuzz.FUZZ
@given(
    body=st.one_of(
        st.fixed_dictionaries({"tags": st.lists(fuzz.objects(["name"]), max_size=3)}).map(
            fuzz.encode
        ),
        fuzz.bodies(["tags", "name"]),
    ),
    where=st.sampled_from(["tags", "tag", "resource_types"]),
)
def test_tag_and_association_bodies(api: Api, catalog: None, body: bytes, where: str) -> None:
    before = _look(api, f"{BASE}/tags")
    if where == "tags":
        response = api.post(f"{BASE}/tags", content=body, headers=JSON)
    elif where == "tag":
        response = api.put(f"{BASE}/tags/tag", content=body, headers=JSON)
    else:
        response = api.post(f"{BASE}/resource_types", content=body, headers=JSON)
    fuzz.assert_handled(response)
    if response.status_code >= 400 and where != "resource_types":
        assert _look(api, f"{BASE}/tags") == before
    elif where != "resource_types":
        # A successful change of the tags is undone so each example starts alike.
        api.delete(f"{BASE}/tags")
        assert api.post(f"{BASE}/tags/tag").status_code == 201


@fuzz.FUZZ
@given(
    params=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(LIST_PARAMS), fuzz.url_text()),
            st.one_of(fuzz.url_text(), st.sampled_from(["OS::Glance::Image", "namespace", "asc"])),
        ),
        max_size=4,
    ),
    path=st.sampled_from(
        [
            NS,
            BASE,
            f"{BASE}/tags",
            f"{BASE}/objects",
            f"{BASE}/properties",
            f"{BASE}/properties/prop",
            f"{BASE}/resource_types",
            "/v2/metadefs/resource_types",
        ]
    ),
)
def test_metadef_queries(api: Api, catalog: None, params: list[tuple[str, str]], path: str) -> None:
    fuzz.assert_handled(api.get(path, params=params, headers={"Accept": "application/json"}))


@fuzz.FUZZ
@given(
    namespace=st.one_of(st.just("fuzz-ns"), fuzz.url_text()),
    kind=st.sampled_from(["", "/objects/", "/properties/", "/tags/", "/resource_types/"]),
    name=fuzz.url_text(),
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE"]),
)
def test_metadef_names_in_paths(
    api: Api, catalog: None, namespace: str, kind: str, name: str, method: str
) -> None:
    path = f"{NS}/{_segment(namespace)}"
    if kind:
        path += f"{kind}{_segment(name)}"
    response = api.request(method, path, headers={"Accept": "application/json"})
    fuzz.assert_handled(response)
    if response.status_code < 300 and method in ("DELETE", "PUT") and namespace == "fuzz-ns":
        # The change worked: put the catalog back as it was.
        _reset_catalog(api, "fuzz-ns")


def _create_catalog(api: Api) -> None:
    body = {
        "namespace": "fuzz-ns",
        "objects": [{"name": "obj", "properties": {"p": {"type": "string", "title": "P"}}}],
        "properties": {"prop": {"type": "integer", "title": "Prop", "minimum": 0}},
        "tags": [{"name": "tag"}],
        "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "x_"}],
    }
    assert api.post(NS, json=body).status_code == 201


@fuzz.FUZZ
@given(
    name=st.one_of(
        st.sampled_from(
            ["image", "images", "member", "members", "task", "tasks", "metadefs/namespace"]
        ),
        fuzz.url_text(),
    ),
    params=fuzz.query(["x"]),
)
def test_schemas(api: Api, name: str, params: list[tuple[str, str]]) -> None:
    response = api.get(
        f"/v2/schemas/{urllib.parse.quote(name, safe='/%')}",
        params=params,
        headers={"Accept": "application/json"},
    )
    fuzz.assert_handled(response)


TASK_INPUT_KEYS = ["import_from", "import_from_format", "image_properties", "x"]


@fuzz.FUZZ
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {"type": st.one_of(st.just("import"), fuzz.json_values())},
            optional={
                "input": st.one_of(
                    fuzz.objects(TASK_INPUT_KEYS),
                    st.fixed_dictionaries(
                        {
                            "import_from": st.one_of(
                                st.sampled_from(
                                    [
                                        "http://[",
                                        "https://example.invalid/x",
                                        "file:///etc/passwd",
                                        "http://127.0.0.1/",
                                    ]
                                ),
                                fuzz.json_values(),
                            ),
                            "import_from_format": fuzz.json_values(),
                            "image_properties": st.one_of(
                                fuzz.objects(["disk_format", "container_format", "name"]),
                                fuzz.json_values(),
                            ),
                        }
                    ),
                ),
                "status": fuzz.json_values(),
                "result": fuzz.json_values(),
            },
        ).map(fuzz.encode),
        fuzz.bodies(["type", "input", "status", "owner", "result", "message"]),
    )
)
def test_task_bodies(api: Api, body: bytes) -> None:
    fuzz.assert_handled(api.post("/v2/tasks", content=body, headers=JSON))


@fuzz.FUZZ
@given(
    params=fuzz.query(["type", "status", "sort_key", "sort_dir", "limit", "marker"]),
    task_id=st.one_of(st.none(), fuzz.url_text()),
)
def test_task_queries_and_ids(api: Api, params: list[tuple[str, str]], task_id: str | None) -> None:
    if not api.get("/v2/tasks").json()["tasks"]:
        assert api.post("/v2/tasks", json=IMPORT_TASK).status_code == 201
    path = "/v2/tasks" if task_id is None else f"/v2/tasks/{_segment(task_id)}"
    fuzz.assert_handled(api.get(path, params=params, headers={"Accept": "application/json"}))
