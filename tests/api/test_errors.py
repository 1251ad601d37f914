"""Glance's error bodies, request ids, and malformed input that must never reach a 500.

Every malformed request here must get a 4xx and leave the database as it was.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.client import IMPORT_TASK, PATCH, Api

REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MISSING = "00000000-0000-0000-0000-000000000000"
EMOJI = "\U0001f600"  # 4 bytes in UTF-8


@pytest.fixture
def image(api: Api) -> dict[str, Any]:
    """A shared image with an extra property, a tag and a member."""
    created = api.create_image(name="orig", visibility="shared", foo="bar", tags=["t"])
    assert (
        api.post(f"/v2/images/{created['id']}/members", json={"member": "projB"}).status_code == 200
    )
    return api.get(f"/v2/images/{created['id']}").json()  # type: ignore[no-any-return]


def _state(api: Api) -> Any:
    """Everything a failed request must leave alone: images, their members."""
    images = api.get("/v2/images", params={"limit": 1000}).json()["images"]
    hidden = api.get("/v2/images", params={"os_hidden": "true"}).json()["images"]
    members = {
        img["id"]: api.get(f"/v2/images/{img['id']}/members").json()["members"]
        for img in images + hidden
        if img["visibility"] == "shared"
    }
    return sorted(images + hidden, key=lambda i: i["id"]), members


@pytest.fixture
def unchanged(api: Api, image: dict[str, Any]) -> Iterator[None]:
    """Asserts, after the test, that the database looks as it did before."""
    before = _state(api)
    yield
    assert _state(api) == before


# --- error body formats -------------------------------------------------------------------


def _not_found(api: Api, accept: str | None) -> Any:
    """GET a missing image with this Accept header (None: without one)."""
    request = api.client.build_request("GET", f"/v2/images/{MISSING}")
    del request.headers["accept"]  # the client's default */*
    if accept is not None:
        request.headers["accept"] = accept
    return api.client.send(request)


def test_html_error_body(api: Api) -> None:
    for accept in (
        "*/*",
        "text/html",
        "text/*",
        "application/json, text/html",
        "text/html;q=0.9, application/json;q=0.9",
        "*/*;q=0.5, application/json;q=0.4",
    ):
        response = _not_found(api, accept)
        assert response.status_code == 404
        assert response.headers["content-type"] == "text/html; charset=UTF-8", accept
        assert response.text == (
            "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n"
            f"  <h1>404 Not Found</h1>\n  No image found with ID {MISSING}<br /><br />\n\n\n\n"
            " </body>\n</html>"
        ), accept


def test_json_error_body(api: Api) -> None:
    for accept in (
        "application/json",
        "application/*",
        "text/html;q=0.5, application/json",
        "text/*;q=0.1, */*",
        "APPLICATION/JSON",
    ):
        response = _not_found(api, accept)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json", accept
        assert response.json() == {
            "message": f"No image found with ID {MISSING}<br /><br />\n\n\n",
            "code": "404 Not Found",
            "title": "Not Found",
        }, accept


def test_plain_text_error_body(api: Api) -> None:
    for accept in (
        None,
        "",
        "text/plain",
        "image/png",
        "application/json;q=0",
        "text/html;level=1",
    ):
        response = _not_found(api, accept)
        assert response.status_code == 404
        assert response.headers["content-type"] == "text/plain; charset=UTF-8", accept
        assert response.text == f"404 Not Found\n\nNo image found with ID {MISSING}\n\n   "


def test_malformed_accept_accepts_anything(api: Api) -> None:
    # webob treats an unparseable Accept header as accepting every offer: HTML first.
    for accept in ("garbage", "application/json;q=2", "text/html;q=x"):
        response = _not_found(api, accept)
        assert response.headers["content-type"] == "text/html; charset=UTF-8", accept


def test_html_escapes_the_message_json_does_not(api: Api) -> None:
    response = api.post("/v2/images", json={"visibility": "<b>'x'</b>"})
    assert response.status_code == 400
    assert "&lt;b&gt;&#x27;x&#x27;&lt;/b&gt;" in response.text and "<b>" not in response.text
    as_json = api.post(
        "/v2/images", json={"visibility": "<b>'x'</b>"}, headers={"Accept": "application/json"}
    )
    assert "<b>'x'</b>" in as_json.json()["message"]


def test_every_error_status_uses_the_same_shape(api: Api, image: dict[str, Any]) -> None:
    cases = [
        ("GET", "/v2/images?limit=x", {}, 400),
        ("PATCH", f"/v2/images/{image['id']}", {"content": b"[]"}, 415),
        ("DELETE", "/v2/images", {}, 405),
        ("FOO", "/v2/nowhere", {}, 501),
        ("POST", "/v2/images", {"json": {"status": "active"}}, 403),
        ("POST", "/v2/images", {"json": {"id": image["id"]}}, 409),
        ("GET", "/v2/nowhere", {}, 404),
    ]
    for method, path, kwargs, status in cases:
        response = api.request(method, path, headers={"Accept": "application/json"}, **kwargs)
        assert response.status_code == status, (method, path, response.text)
        body = response.json()
        assert set(body) == {"message", "code", "title"}
        assert body["code"].startswith(f"{status} ") and body["code"].endswith(body["title"])
        assert body["message"].endswith("<br /><br />\n\n\n")


# --- request ids ----------------------------------------------------------------------------


def test_every_response_carries_a_request_id(api: Api, image: dict[str, Any]) -> None:
    requests = [
        ("GET", "/"),
        ("GET", "/versions"),
        ("GET", "/healthcheck"),
        ("GET", "/v2/images"),
        ("GET", f"/v2/images/{image['id']}"),
        ("GET", f"/v2/images/{MISSING}"),
        ("PUT", "/v2/images"),
        ("FOO", "/v2/x"),
        ("GET", "/v2/schemas/image"),
        ("HEAD", "/v2/images"),
        ("GET", "/v1/images"),
    ]
    seen = set()
    for method, path in requests:
        response = api.request(method, path)
        request_id = response.headers["x-openstack-request-id"]
        assert REQUEST_ID.match(request_id), (method, path, request_id)
        seen.add(request_id)
    assert len(seen) == len(requests)


def test_client_request_id_is_reused_with_req_prefix(api: Api) -> None:
    for sent, echoed in [
        ("abc", "req-abc"),
        ("req-abc", "req-abc"),
        ("x" * 64, "req-" + "x" * 64),
        ("req-" + "y" * 60, "req-" + "y" * 60),
    ]:
        response = api.get("/v2/images", headers={"X-Openstack-Request-Id": sent})
        assert response.status_code == 200
        assert response.headers["x-openstack-request-id"] == echoed
    failed = api.get(f"/v2/images/{MISSING}", headers={"X-OpenStack-Request-ID": "mine"})
    assert failed.status_code == 404
    assert failed.headers["x-openstack-request-id"] == "req-mine"


def test_the_longest_client_request_id_queues_tasks(api: Api) -> None:
    """With its req- prefix such an id is 68 characters, which the tasks table (then 64)
    refused on PostgreSQL and MariaDB: 500 for every request that queued a task."""
    sent = "x" * 64
    queued = api.create_image(name="q", disk_format="raw", container_format="bare")
    web = {"method": {"name": "web-download", "uri": "https://example.invalid/x"}}
    for path, body, status in (
        ("/v2/tasks", IMPORT_TASK, 201),
        (f"/v2/images/{queued['id']}/import", web, 202),
    ):
        response = api.post(path, json=body, headers={"X-Openstack-Request-ID": sent})
        assert response.status_code == status, (path, response.text)
        assert response.headers["x-openstack-request-id"] == "req-" + sent
    assert len(api.get("/v2/tasks").json()["tasks"]) == 2


def test_overlong_request_id_is_431(api: Api) -> None:
    response = api.post(
        "/v2/images", json={"name": "x"}, headers={"X-Openstack-Request-Id": "x" * 65}
    )
    assert response.status_code == 431
    assert REQUEST_ID.match(response.headers["x-openstack-request-id"])
    assert api.get("/v2/images").json()["images"] == []


# --- malformed bodies ---------------------------------------------------------------------


def _body_routes(image_id: str) -> list[tuple[str, str, dict[str, str]]]:
    """The routes that take a JSON body, with the headers each needs."""
    return [
        ("POST", "/v2/images", {}),
        ("PATCH", f"/v2/images/{image_id}", {"Content-Type": PATCH}),
        ("POST", f"/v2/images/{image_id}/members", {}),
        ("PUT", f"/v2/images/{image_id}/members/projB", {}),
    ]


BAD_JSON = [
    (b"{", "Malformed JSON in request body."),
    (b"[1", "Malformed JSON in request body."),
    (b"{'name': 'x'}", "Malformed JSON in request body."),
    (b'{"name": "x"} trailing', "Malformed JSON in request body."),
    (b"\xff\xfe{}", "Malformed JSON in request body."),
    (b'{"name": "\xed\xa0\x80"}', "Malformed JSON in request body."),  # raw surrogate
    (b'{"name": "\xf0\x9f"}', "Malformed JSON in request body."),  # truncated 4-byte
    (b'{"min_ram": NaN}', "Malformed JSON in request body."),
    (b'{"min_ram": Infinity}', "Malformed JSON in request body."),
    (b'{"min_ram": -Infinity}', "Malformed JSON in request body."),
    (b'{"min_ram": 1' + b"0" * 5000 + b"}", "Malformed JSON in request body."),
    (b"[" * 100_000 + b"]" * 100_000, "Malformed JSON in request body."),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "Malformed JSON in request body."),
    (b"1", "Unexpected body type. Expected list/dict."),
    (b'"x"', "Unexpected body type. Expected list/dict."),
    (b"null", "Unexpected body type. Expected list/dict."),
    (b"true", "Unexpected body type. Expected list/dict."),
    (b" ", "Body expected in request."),
    (b"", "Body expected in request."),
]


def test_bad_json_bodies_are_400(api: Api, image: dict[str, Any], unchanged: None) -> None:
    for raw, message in BAD_JSON:
        for method, path, headers in _body_routes(image["id"]):
            response = api.request(
                method, path, content=raw, headers={"Accept": "application/json", **headers}
            )
            assert response.status_code == 400, (raw[:40], method, path, response.text)
            assert response.json()["message"].startswith(message), (raw[:40], method, path)


def test_task_inputs_too_large_to_store_are_400(
    api: Api, image: dict[str, Any], unchanged: None
) -> None:
    """A task's input is kept as text, which MariaDB caps at 64 KiB: larger inputs (a
    long import URI, extra members) were 500 there, so they are refused everywhere."""
    queued = api.create_image(name="q", disk_format="raw", container_format="bare")
    before = api.get(f"/v2/images/{queued['id']}").json()
    legacy = {**IMPORT_TASK, "input": {**IMPORT_TASK["input"], "extra": ["j" * 1000] * 70}}
    web = {"name": "web-download", "uri": "https://example.invalid/x"}
    requests = [
        ("/v2/tasks", legacy),
        (f"/v2/images/{queued['id']}/import", {"method": {**web, "junk": "j" * 70_000}}),
        (f"/v2/images/{queued['id']}/import", {"method": web, "stores": ["s" * 70_000]}),
    ]
    for path, body in requests:
        response = api.post(path, json=body, headers={"Accept": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert response.json()["message"].startswith("The task input is too large to store (")
    assert api.get("/v2/tasks").json()["tasks"] == []
    assert api.get(f"/v2/images/{queued['id']}").json() == before
    assert api.delete(f"/v2/images/{queued['id']}").status_code == 204


def test_json_content_type_is_not_checked(api: Api) -> None:
    # Like Glance, POST bodies are JSON whatever Content-Type says.
    response = api.post(
        "/v2/images", content=b'{"name": "x"}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 201


def test_body_on_bodyless_routes_is_400(api: Api, image: dict[str, Any], unchanged: None) -> None:
    image_id = image["id"]
    routes = [
        ("GET", "/v2/images"),
        ("GET", f"/v2/images/{image_id}"),
        ("DELETE", f"/v2/images/{image_id}"),
        ("POST", f"/v2/images/{image_id}/actions/deactivate"),
        ("POST", f"/v2/images/{image_id}/actions/reactivate"),
        ("PUT", f"/v2/images/{image_id}/tags/new"),
        ("DELETE", f"/v2/images/{image_id}/tags/t"),
        ("GET", f"/v2/images/{image_id}/members"),
        ("GET", f"/v2/images/{image_id}/members/projB"),
        ("DELETE", f"/v2/images/{image_id}/members/projB"),
        ("GET", "/v2/schemas/image"),
    ]
    for method, path in routes:
        for kwargs in ({"content": b"{}"}, {"content": b"x"}, {"json": {"name": "y"}}):
            response = api.request(method, path, headers={"Accept": "application/json"}, **kwargs)
            assert response.status_code == 400, (method, path, response.text)
            assert response.json()["message"].startswith(
                "A body is not expected with this request."
            ), (method, path)


def test_chunked_body_on_a_bodyless_route_is_400(
    api: Api, image: dict[str, Any], unchanged: None
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"{}"

    response = api.request("DELETE", f"/v2/images/{image['id']}", content=chunks())
    assert response.status_code == 400


BAD_CREATE_BODIES: list[Any] = [
    [],
    [{"name": "x"}],
    {"name": 1},
    {"name": ["x"]},
    {"name": {"x": 1}},
    {"name": True},
    {"visibility": 1},
    {"visibility": None},
    {"protected": "true"},
    {"protected": 1},
    {"os_hidden": "yes"},
    {"min_ram": "1"},
    {"min_ram": 1.5},
    {"min_ram": True},
    {"min_ram": -1},
    {"min_disk": 2**31},
    {"min_disk": 2**63},
    {"min_disk": 10**400},
    {"min_ram": -(10**400)},
    {"tags": "a"},
    {"tags": [1]},
    {"tags": [None]},
    {"tags": {}},
    {"tags": [["a"]]},
    {"foo": 1},
    {"foo": None},
    {"foo": ["x"]},
    {"foo": {"a": "b"}},
    {"foo": json.loads("[" * 500 + "]" * 500)},
    {"owner": 5},
    {"id": 5},
    {"id": "not-a-uuid"},
    {"id": str(uuid.uuid4()) + "0"},
    {"kernel_id": "x"},
    {"disk_format": "Qcow2"},
    {"container_format": 1},
    {"name": "x" * 256},
    {"owner": "x" * 256},
    {"tags": ["x" * 256]},
    {"x" * 256: "v"},
    {"name": "a\x00b"},
    {"foo": "\x00"},
    {"\x00": "v"},
    {"tags": ["\x00"]},
    {"os_distro": "x\x00"},
]


def test_bad_create_bodies_are_400(api: Api, unchanged: None) -> None:
    for body in BAD_CREATE_BODIES:
        response = api.post("/v2/images", content=json.dumps(body).encode())
        assert response.status_code == 400, (str(body)[:80], response.text)


FOUR_BYTE_BODIES: list[dict[str, Any]] = [
    {"name": EMOJI},
    {"name": "a" + EMOJI + "b"},
    {EMOJI: "v"},
    {"foo": EMOJI},
    {"tags": [EMOJI]},
    {"tags": ["ok", "x" + EMOJI]},
    {"os_distro": EMOJI},
]
SURROGATE_BODIES: list[dict[str, Any]] = [
    {"name": "\ud800"},
    {"name": "\udfff"},
    {"foo": "\ud83d"},
    {"\udc00": "v"},
    {"tags": ["\ud800"]},
]


def test_4_byte_utf8_and_lone_surrogates_on_create_are_400(api: Api, unchanged: None) -> None:
    for body in FOUR_BYTE_BODIES:
        # As \\u escapes (a surrogate pair) and as raw UTF-8.
        for raw in (json.dumps(body).encode(), json.dumps(body, ensure_ascii=False).encode()):
            response = api.post("/v2/images", content=raw)
            assert response.status_code == 400, (raw, response.text)
    for body in SURROGATE_BODIES:
        # A lone surrogate can only be sent as a \\u escape: raw, it is not UTF-8.
        response = api.post("/v2/images", content=json.dumps(body).encode())
        assert response.status_code == 400, (body, response.text)


def test_3_byte_utf8_is_fine(api: Api) -> None:
    created = api.create_image(name="日本語 ☃", foo="€", tags=["ü"])
    assert created["name"] == "日本語 ☃" and created["foo"] == "€" and created["tags"] == ["ü"]


BAD_PATCHES: list[Any] = (
    [
        {"op": "replace", "path": "/name", "value": "x"},
        [1],
        ["x"],
        [None],
        [[]],
        [{"op": "replace", "path": "/name"}],
        [{"op": "replace", "value": "x"}],
        [{"op": "move", "path": "/name", "value": "x"}],
        [{"op": 1, "path": "/name", "value": "x"}],
        [{"op": "replace", "path": 1, "value": "x"}],
        [{"op": "replace", "path": "name", "value": "x"}],
        [{"op": "replace", "path": "/", "value": "x"}],
        [{"op": "replace", "path": "/name/", "value": "x"}],
        [{"op": "replace", "path": "/na~2me", "value": "x"}],
        [{"op": "add", "path": "/tags/-", "value": "x"}],
        [{"op": "replace", "path": "/name", "value": 1}],
        [{"op": "replace", "path": "/name", "value": "x" * 256}],
        [{"op": "replace", "path": "/name", "value": EMOJI}],
        [{"op": "replace", "path": "/name", "value": "\ud800"}],
        [{"op": "replace", "path": "/name", "value": "\x00"}],
        [{"op": "add", "path": "/foo", "value": "a\x00"}],
        [{"op": "add", "path": "/a\x00", "value": "v"}],
        [{"op": "add", "path": "/" + EMOJI, "value": "v"}],
        [{"op": "add", "path": "/\udc00", "value": "v"}],
        [{"op": "replace", "path": "/foo", "value": EMOJI}],
        [{"op": "replace", "path": "/foo", "value": 1}],
        [{"op": "replace", "path": "/foo", "value": None}],
        [{"op": "add", "path": "/" + "k" * 256, "value": "v"}],
        [{"op": "replace", "path": "/tags", "value": [EMOJI]}],
        [{"op": "replace", "path": "/tags", "value": "t"}],
        [{"op": "replace", "path": "/min_ram", "value": 10**400}],
        [{"op": "replace", "path": "/min_ram", "value": 2**31}],
        [{"op": "replace", "path": "/min_ram", "value": "1"}],
        [{"op": "replace", "path": "/protected", "value": "false"}],
        [{"op": "replace", "path": "/visibility", "value": "everyone"}],
        # A valid first operation does not survive an invalid second one.
        [
            {"op": "replace", "path": "/name", "value": "new"},
            {"op": "replace", "path": "/min_ram", "value": -1},
        ],
    ],
)


def test_bad_patches_are_400(api: Api, image: dict[str, Any], unchanged: None) -> None:
    for ops in BAD_PATCHES:
        response = api.patch(f"/v2/images/{image['id']}", ops)
        assert response.status_code == 400, (str(ops)[:80], response.text)


def test_patch_with_the_v2_0_media_type_and_bad_ops(
    api: Api, image: dict[str, Any], unchanged: None
) -> None:
    v20 = "application/openstack-images-v2.0-json-patch"
    for ops in (
        [{"replace": "/name"}],
        [{"replace": "/name", "add": "/foo", "value": "x"}],
        [{"replace": 1, "value": "x"}],
        [{"op": "replace", "path": "/name", "value": "x"}],
    ):
        response = api.patch(f"/v2/images/{image['id']}", ops, media_type=v20)
        assert response.status_code == 400, (ops, response.text)


def test_bad_tags_are_400(api: Api, image: dict[str, Any], unchanged: None) -> None:
    image_id = image["id"]
    for tag in ("x" * 256, EMOJI, "a%F0%9F%98%80b", "%ED%A0%80"):
        response = api.put(f"/v2/images/{image_id}/tags/{tag}")
        assert response.status_code == 400, (tag, response.text)


def test_bad_member_bodies_are_400(api: Api, image: dict[str, Any], unchanged: None) -> None:
    bodies: list[Any] = [
        {},
        {"member": ""},
        {"member": None},
        {"member": 1},
        {"member": ["projC"]},
        {"member": {"id": "projC"}},
        [],
        ["projC"],
        {"members": "projC"},
    ]
    for body in bodies:
        response = api.post(f"/v2/images/{image['id']}/members", json=body)
        assert response.status_code == 400, (body, response.text)


def test_bad_member_updates_are_400(api: Api, image: dict[str, Any], unchanged: None) -> None:
    bodies: list[Any] = [
        {},
        {"status": ""},
        {"status": "maybe"},
        {"status": None},
        {"status": 1},
        {"status": ["accepted"]},
        [],
        ["accepted"],
        {"member_status": "accepted"},
        {"status": "ACCEPTED"},
    ]
    for body in bodies:
        response = api.as_("projB").put(f"/v2/images/{image['id']}/members/projB", json=body)
        assert response.status_code == 400, (body, response.text)


def test_odd_member_ids_never_fail_the_server(api: Api, image: dict[str, Any]) -> None:
    for member in (EMOJI, "m" * 256, "\ud800", "a/b", "x\x00y"):
        response = api.post(
            f"/v2/images/{image['id']}/members", content=json.dumps({"member": member}).encode()
        )
        assert response.status_code in (200, 400), (member, response.text)
        if response.status_code == 200:
            assert response.json()["member_id"] == member


# --- bad paths --------------------------------------------------------------------------------


BAD_IMAGE_IDS = [
    "not-a-uuid",
    "1",
    MISSING + "0",
    MISSING.upper(),
    "..",
    "x" * 5000,
    "%F0%9F%98%80",
    "'; DROP TABLE images; --",
    "\\",
    "%25",
]


def test_bad_image_ids_in_paths_are_404(api: Api, image: dict[str, Any], unchanged: None) -> None:
    for image_id in BAD_IMAGE_IDS:
        _assert_image_routes_404(api, image_id)


def _assert_image_routes_404(api: Api, image_id: str) -> None:
    paths = [
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/actions/deactivate"),
        ("POST", "/actions/reactivate"),
        ("PUT", "/tags/x"),
        ("DELETE", "/tags/t"),
        ("GET", "/members"),
        ("GET", "/members/projB"),
        ("DELETE", "/members/projB"),
    ]
    for method, suffix in paths:
        response = api.request(method, f"/v2/images/{image_id}{suffix}")
        assert response.status_code == 404, (method, image_id, suffix, response.text)
    patched = api.patch(
        f"/v2/images/{image_id}", [{"op": "replace", "path": "/name", "value": "x"}]
    )
    assert patched.status_code == 404
    for method, body in (("POST", {"member": "projC"}), ("PUT", {"status": "accepted"})):
        suffix = "/members" if method == "POST" else "/members/projB"
        response = api.request(method, f"/v2/images/{image_id}{suffix}", json=body)
        assert response.status_code == 404, (method, image_id)


def test_bad_member_ids_in_paths_are_404(api: Api, image: dict[str, Any], unchanged: None) -> None:
    for member in ("nobody", "x" * 5000, "%F0%9F%98%80"):
        base = f"/v2/images/{image['id']}/members/{member}"
        assert api.get(base).status_code == 404, member
        assert api.delete(base).status_code == 404, member
        updated = api.as_("projB").put(base, json={"status": "accepted"})
        assert updated.status_code in (403, 404), member


def test_invalid_utf8_or_nul_in_the_path_is_400(
    api: Api, image: dict[str, Any], unchanged: None
) -> None:
    image_id = image["id"]
    for path in (
        "/v2/images/%FF",
        f"/v2/images/{image_id}/tags/%ED%A0%80",
        f"/v2/images/{image_id}/tags/a%C3",
        f"/v2/images/{image_id}/members/%80",
        "/v2/images/%00",
        "/v2/images/a%00b",
        f"/v2/images/{image_id}/tags/%00",
        f"/v2/images/{image_id}/members/x%00",
    ):
        for method in ("GET", "PUT", "DELETE"):
            response = api.request(method, path)
            assert response.status_code == 400, (method, path, response.text)
    # Only the v2 API checks; unknown versions still get the versions list.
    assert api.get("/v9/%FF").status_code == 300


def test_tag_delete_with_odd_names_is_404(api: Api, image: dict[str, Any], unchanged: None) -> None:
    for tag in ("nope", "%00", "%FF", "x" * 300):
        response = api.delete(f"/v2/images/{image['id']}/tags/{tag}")
        assert response.status_code in (400, 404), tag


# --- bad list filters -------------------------------------------------------------------------


BAD_FILTERS = [
    "limit=x",
    "limit=-1",
    "limit=1.5",
    "limit=",
    "marker=" + MISSING,
    "marker=not-a-uuid",
    "marker=%00",
    "sort_key=nope",
    "sort_key=name&sort_dir=up",
    "sort_dir=sideways",
    "sort=name:up",
    "sort=nope",
    "sort=name&sort_key=name",
    "sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc&sort_dir=asc",
    "size_min=x",
    "size_max=1.5",
    "size_min=" + "9" * 400,
    "size_min=-" + "9" * 400,
    "created_at=yesterday",
    "created_at=gt:nope",
    "updated_at=foo:2020-01-01T00:00:00Z",
    "created_at=gt:",
    "visibility=all",
    "visibility=everyone",
    "visibility=",
    "member_status=maybe",
    "protected=yes",
    "protected=True",
    "os_hidden=maybe",
    "name=foo:bar",
    'name=in:"unterminated',
    "status=neq:active",
    "changes-since=2020-01-01T00:00:00Z",
]
ODD_FILTERS = [
    "name=%00",
    "owner=%00",
    "foo=%00",
    "name=%FF",
    f"name={EMOJI}",
    "name=" + "x" * 5000,
    "tag=%00",
    f"tag={EMOJI}",
    "os_distro=\\",
    "name=%25",
    "checksum=%00",
    "os_hash_value=" + "f" * 1000,
    "id=%00",
    "%00=x",
    "id=in:",
    "limit=" + "9" * 400,
]


def test_bad_filters_are_400(api: Api, image: dict[str, Any]) -> None:
    for query in BAD_FILTERS:
        response = api.get(f"/v2/images?{query}")
        assert response.status_code == 400, (query[:80], response.text)


def test_odd_filter_values_never_fail_the_server(api: Api, image: dict[str, Any]) -> None:
    for query in ODD_FILTERS:
        response = api.get(f"/v2/images?{query}")
        assert response.status_code in (200, 400), (query[:80], response.text)
        if response.status_code == 200 and not query.startswith("limit"):
            assert response.json()["images"] == [], query[:80]
