"""Every route of Glance's v2 API (spec §2), and how the router answers what it does not serve.

``ROUTES`` lists every route of the spec and whether this build serves it yet. The
test probes each one over HTTP, so adding (or losing) a route fails it until the
table is updated.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from starlette.routing import Route

from glimpse.http.app import v2_routes
from tests.support.client import IMPORT_TASK, PATCH, Api
from tests.support.multistore import MultiStore

SERVED = "served"
NOT_YET = "not yet served"

#: (method, path template) → SERVED or NOT_YET, for every route of spec §2.
ROUTES: dict[tuple[str, str], str] = {
    # 2.1 Images
    ("POST", "/v2/images"): SERVED,
    ("GET", "/v2/images"): SERVED,
    ("GET", "/v2/images/{image_id}"): SERVED,
    ("PATCH", "/v2/images/{image_id}"): SERVED,
    ("DELETE", "/v2/images/{image_id}"): SERVED,
    ("POST", "/v2/images/{image_id}/actions/deactivate"): SERVED,
    ("POST", "/v2/images/{image_id}/actions/reactivate"): SERVED,
    ("POST", "/v2/images/{image_id}/import"): SERVED,
    # 2.2 Image data
    ("PUT", "/v2/images/{image_id}/file"): SERVED,
    ("GET", "/v2/images/{image_id}/file"): SERVED,
    ("PUT", "/v2/images/{image_id}/stage"): SERVED,
    # 2.3 Tags
    ("PUT", "/v2/images/{image_id}/tags/{tag}"): SERVED,
    ("DELETE", "/v2/images/{image_id}/tags/{tag}"): SERVED,
    # 2.4 Members
    ("POST", "/v2/images/{image_id}/members"): SERVED,
    ("GET", "/v2/images/{image_id}/members"): SERVED,
    ("GET", "/v2/images/{image_id}/members/{member_id}"): SERVED,
    ("PUT", "/v2/images/{image_id}/members/{member_id}"): SERVED,
    ("DELETE", "/v2/images/{image_id}/members/{member_id}"): SERVED,
    # 2.5 Tasks
    ("POST", "/v2/tasks"): SERVED,
    ("GET", "/v2/tasks"): SERVED,
    ("GET", "/v2/tasks/{task_id}"): SERVED,
    ("DELETE", "/v2/tasks/{task_id}"): SERVED,  # always 405 with Allow: GET
    # 2.6 Schemas
    ("GET", "/v2/schemas/image"): SERVED,
    ("GET", "/v2/schemas/images"): SERVED,
    ("GET", "/v2/schemas/member"): SERVED,
    ("GET", "/v2/schemas/members"): SERVED,
    ("GET", "/v2/schemas/task"): SERVED,
    ("GET", "/v2/schemas/tasks"): SERVED,
    ("GET", "/v2/schemas/metadefs/namespace"): SERVED,
    ("GET", "/v2/schemas/metadefs/namespaces"): SERVED,
    ("GET", "/v2/schemas/metadefs/object"): SERVED,
    ("GET", "/v2/schemas/metadefs/objects"): SERVED,
    ("GET", "/v2/schemas/metadefs/property"): SERVED,
    ("GET", "/v2/schemas/metadefs/properties"): SERVED,
    ("GET", "/v2/schemas/metadefs/tag"): SERVED,
    ("GET", "/v2/schemas/metadefs/tags"): SERVED,
    ("GET", "/v2/schemas/metadefs/resource_type"): SERVED,
    ("GET", "/v2/schemas/metadefs/resource_types"): SERVED,
    # 2.7 Discovery
    ("GET", "/v2/info/import"): SERVED,
    ("GET", "/v2/info/stores"): SERVED,  # 404 "Multi backend is not supported" without it
    # 2.8 Metadata definitions
    ("GET", "/v2/metadefs/resource_types"): SERVED,
    ("GET", "/v2/metadefs/namespaces/{ns}/resource_types"): SERVED,
    ("POST", "/v2/metadefs/namespaces/{ns}/resource_types"): SERVED,
    ("DELETE", "/v2/metadefs/namespaces/{ns}/resource_types/{rt}"): SERVED,
    ("GET", "/v2/metadefs/namespaces"): SERVED,
    ("POST", "/v2/metadefs/namespaces"): SERVED,
    ("GET", "/v2/metadefs/namespaces/{ns}"): SERVED,
    ("PUT", "/v2/metadefs/namespaces/{ns}"): SERVED,
    ("DELETE", "/v2/metadefs/namespaces/{ns}"): SERVED,
    ("GET", "/v2/metadefs/namespaces/{ns}/objects"): SERVED,
    ("POST", "/v2/metadefs/namespaces/{ns}/objects"): SERVED,
    ("DELETE", "/v2/metadefs/namespaces/{ns}/objects"): SERVED,
    ("GET", "/v2/metadefs/namespaces/{ns}/objects/{name}"): SERVED,
    ("PUT", "/v2/metadefs/namespaces/{ns}/objects/{name}"): SERVED,
    ("DELETE", "/v2/metadefs/namespaces/{ns}/objects/{name}"): SERVED,
    ("GET", "/v2/metadefs/namespaces/{ns}/properties"): SERVED,
    ("POST", "/v2/metadefs/namespaces/{ns}/properties"): SERVED,
    ("DELETE", "/v2/metadefs/namespaces/{ns}/properties"): SERVED,
    ("GET", "/v2/metadefs/namespaces/{ns}/properties/{name}"): SERVED,
    ("PUT", "/v2/metadefs/namespaces/{ns}/properties/{name}"): SERVED,
    ("DELETE", "/v2/metadefs/namespaces/{ns}/properties/{name}"): SERVED,
    ("GET", "/v2/metadefs/namespaces/{ns}/tags"): SERVED,
    ("POST", "/v2/metadefs/namespaces/{ns}/tags"): SERVED,
    ("DELETE", "/v2/metadefs/namespaces/{ns}/tags"): SERVED,
    ("GET", "/v2/metadefs/namespaces/{ns}/tags/{tag}"): SERVED,
    ("POST", "/v2/metadefs/namespaces/{ns}/tags/{tag}"): SERVED,
    ("PUT", "/v2/metadefs/namespaces/{ns}/tags/{tag}"): SERVED,
    ("DELETE", "/v2/metadefs/namespaces/{ns}/tags/{tag}"): SERVED,
}

#: Routes served beyond Rocky's (spec §17), with the release and the API version that added them.
LATER_ROUTES: dict[tuple[str, str], tuple[str, str]] = {
    ("DELETE", "/v2/stores/{store_id}/{image_id}"): ("Ussuri", "2.10"),
    ("GET", "/v2/images/{image_id}/tasks"): ("Wallaby", "2.12"),
    ("GET", "/v2/info/usage"): ("Yoga", "2.13"),
    ("GET", "/v2/info/stores/detail"): ("Yoga", "2.15"),
    ("POST", "/v2/images/{image_id}/locations"): ("2024.2", "2.17"),
    ("GET", "/v2/images/{image_id}/locations"): ("2024.2", "2.17"),
}

#: The versions listed (and accepted) in each configuration, as Glance lists them without an
#: image cache: the cache API's 2.14, 2.16 and 2.18 never are.
LISTED = {
    "single store": ["2.17", "2.15", "2.9", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"],
    "enabled_backends": [
        *("2.17", "2.15", "2.13", "2.12", "2.11", "2.10", "2.9", "2.8", "2.7"),
        *("2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"),
    ],
}

#: Routes whose correct answer is itself a 404 or 405, and how to tell it from the router's.
_DESIGNED_ERRORS = {
    ("DELETE", "/v2/tasks/{task_id}"): (405, None),
    ("GET", "/v2/info/stores"): (404, "Multi backend is not supported at this site."),
    ("GET", "/v2/info/stores/detail"): (404, "Multi backend is not supported at this site."),
}

#: The message of the router's own 404 (no route); handlers always say what was missing.
_ROUTER_404 = "The resource could not be found."

#: Request bodies for the routes that take one; anything plausible will do.
_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v2/images"): {"json": {"name": "routed"}},
    ("PATCH", "/v2/images/{image_id}"): {
        "content": b"[]",
        "headers": {"Content-Type": PATCH},
    },
    ("PUT", "/v2/images/{image_id}/file"): {
        "content": b"data",
        "headers": {"Content-Type": "application/octet-stream"},
    },
    ("PUT", "/v2/images/{image_id}/stage"): {
        "content": b"data",
        "headers": {"Content-Type": "application/octet-stream"},
    },
    ("POST", "/v2/images/{image_id}/import"): {"json": {"method": {"name": "glance-direct"}}},
    ("POST", "/v2/images/{image_id}/members"): {"json": {"member": "projC"}},
    ("PUT", "/v2/images/{image_id}/members/{member_id}"): {"json": {"status": "accepted"}},
    ("POST", "/v2/tasks"): {"json": {"type": "import", "input": {}}},
    ("POST", "/v2/images/{image_id}/locations"): {"json": {"url": "http://127.0.0.1:1/x"}},
}


def _prepare(api: Api, template: str) -> dict[str, str]:
    """Fresh resources for probing ``template``; the value of each path parameter.

    An image with a member and a tag, a task, or a metadef namespace with an object,
    a property, a tag and a resource type association.
    """
    owner = api.as_("projA", roles="admin")
    values = {
        "member_id": "projB",
        "tag": "t",
        "name": "x",
        "rt": "OS::Glance::Image",
        "task_id": str(uuid.uuid4()),
        "ns": f"probe-{uuid.uuid4().hex[:12]}",
        "store_id": "fast",
    }
    if "{image_id}" in template:
        image = owner.create_image(
            name="route-probe", visibility="shared", disk_format="raw", container_format="bare"
        )
        values["image_id"] = image["id"]
        assert (
            owner.post(f"/v2/images/{image['id']}/members", json={"member": "projB"}).status_code
            == 200
        )
        assert owner.put(f"/v2/images/{image['id']}/tags/t").status_code == 204
    if "{task_id}" in template:
        task = owner.post("/v2/tasks", json=IMPORT_TASK)
        if task.status_code == 201:
            values["task_id"] = task.json()["id"]
    if "{ns}" in template:
        base = f"/v2/metadefs/namespaces/{values['ns']}"
        owner.post("/v2/metadefs/namespaces", json={"namespace": values["ns"]})
        owner.post(f"{base}/objects", json={"name": "x"})
        owner.post(f"{base}/properties", json={"name": "x", "title": "x", "type": "string"})
        owner.post(f"{base}/tags/t")
        owner.post(f"{base}/resource_types", json={"name": "OS::Glance::Image"})
    return values


def _probe(api: Api, method: str, template: str) -> tuple[bool, int]:
    """Whether the app routes ``method template`` to a handler, and the status it gave."""
    path = template.format(**_prepare(api, template))
    kwargs = dict(_BODIES.get((method, template), {}))
    if not kwargs and method in ("POST", "PUT", "PATCH") and "/tags/" not in template:
        kwargs = {"json": {}}
    headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
    response = api.as_("projA", roles="admin").request(method, path, headers=headers, **kwargs)
    status = response.status_code
    designed = _DESIGNED_ERRORS.get((method, template))
    if designed is not None:
        expected_status, message = designed
        if status == expected_status:
            if message is None:
                return response.headers.get("allow") == "GET", status
            return response.json()["message"].startswith(message), status
    if status == 405:
        return False, status
    if status == 404:
        return not response.json()["message"].startswith(_ROUTER_404), status
    return True, status


def test_the_table_is_what_the_app_serves(api: Api) -> None:
    results = {route: _probe(api, *route) for route in ROUTES}
    lacking = {route for route, (routed, _) in results.items() if not routed}
    assert lacking == {route for route, state in ROUTES.items() if state == NOT_YET}
    for route, (routed, status) in results.items():
        assert status < 500, (route, status)
        if routed and route not in _DESIGNED_ERRORS:
            assert status not in (404, 405), (route, status)


def test_the_app_declares_no_route_missing_from_the_tables() -> None:
    def shape(path: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", path)

    known = {(method, shape(path)) for method, path in (*ROUTES, *LATER_ROUTES)}
    declared = set()
    for route in v2_routes():
        assert isinstance(route, Route)
        declared |= {(method, shape(route.path)) for method in route.methods or ()}
    assert declared - known == set()
    served = {(m, shape(p)) for (m, p), state in ROUTES.items() if state == SERVED}
    assert served | {(m, shape(p)) for m, p in LATER_ROUTES} == declared


def test_listed_versions_in_each_configuration(
    api: Api, make_multi: Callable[..., MultiStore]
) -> None:
    for configuration, client in (("single store", api), ("enabled_backends", make_multi().api)):
        listed = client.get("/versions").json()["versions"]
        assert [v["id"] for v in listed] == [f"v{v}" for v in LISTED[configuration]]
        assert [v["status"] for v in listed] == ["CURRENT"] + ["SUPPORTED"] * (len(listed) - 1)
        for version in LISTED[configuration]:
            assert client.get(f"/v{version}/images").status_code == 200, (configuration, version)
    # Every later route's version is listed where multi-store makes all of them meaningful.
    assert {version for _, version in LATER_ROUTES.values()} <= set(LISTED["enabled_backends"])


def test_later_routes_are_served(make_multi: Callable[..., MultiStore]) -> None:
    multi = make_multi()
    for route in LATER_ROUTES:
        routed, status = _probe(multi.api, *route)
        assert routed, (route, status)
        assert status < 500, (route, status)


def test_image_routes_succeed_on_a_real_image(api: Api) -> None:
    # The probe above accepts any 4xx but 404/405; these must simply work.
    expected = {
        ("GET", "/v2/images/{image_id}"): 200,
        ("PATCH", "/v2/images/{image_id}"): 200,
        ("PUT", "/v2/images/{image_id}/file"): 204,
        ("DELETE", "/v2/images/{image_id}"): 204,
        ("PUT", "/v2/images/{image_id}/tags/{tag}"): 204,
        ("DELETE", "/v2/images/{image_id}/tags/{tag}"): 204,
        ("POST", "/v2/images/{image_id}/members"): 200,
        ("GET", "/v2/images/{image_id}/members"): 200,
        ("GET", "/v2/images/{image_id}/members/{member_id}"): 200,
        ("DELETE", "/v2/images/{image_id}/members/{member_id}"): 204,
    }
    for route, status in expected.items():
        assert _probe(api, *route) == (True, status), route


WRONG_METHODS = [
    ("PUT", "/v2/images", {"GET", "POST"}),
    ("DELETE", "/v2/images", {"GET", "POST"}),
    ("POST", "/v2/images/{id}", {"GET", "PATCH", "DELETE"}),
    ("PUT", "/v2/images/{id}", {"GET", "PATCH", "DELETE"}),
    ("GET", "/v2/images/{id}/actions/deactivate", {"POST"}),
    ("DELETE", "/v2/images/{id}/actions/reactivate", {"POST"}),
    ("GET", "/v2/images/{id}/tags/t", {"PUT", "DELETE"}),
    ("PATCH", "/v2/images/{id}/members", {"GET", "POST"}),
    ("POST", "/v2/images/{id}/members/m", {"GET", "PUT", "DELETE"}),
    ("POST", "/v2/schemas/image", {"GET"}),
    ("DELETE", "/v2/images/{id}/file", {"GET", "PUT"}),
    ("DELETE", "/v2/images/{id}/locations", {"GET", "POST"}),
    ("POST", "/v2/info/usage", {"GET"}),
    # Glance's reject route has no method condition: unknown methods are 405 here too.
    ("FOO", "/v2/images", {"GET", "POST"}),
    ("PROPFIND", "/v2/images/{id}", {"GET", "PATCH", "DELETE"}),
]


def test_wrong_method_on_a_known_path_is_405_with_allow(api: Api) -> None:
    image = api.create_image(name="x")
    for method, path, allow in WRONG_METHODS:
        response = api.request(method, path.format(id=image["id"]))
        assert response.status_code == 405, (method, path)
        assert {m.strip() for m in response.headers["allow"].split(",")} == allow, (method, path)
        assert "405 Method Not Allowed" in response.text
    # Nothing happened to the image.
    assert api.get(f"/v2/images/{image['id']}").json() == image


def test_head_on_a_get_route_is_405(api: Api) -> None:
    image = api.create_image(name="x")
    for path in (
        "/v2/images",
        "/v2/images/{id}",
        "/v2/images/{id}/members",
        "/v2/schemas/image",
        "/v2/images/{id}/file",
    ):
        response = api.request("HEAD", path.format(id=image["id"]))
        assert response.status_code == 405, path
        assert "GET" in response.headers["allow"] and "HEAD" not in response.headers["allow"]
        assert response.content == b""


def test_unknown_method_on_an_unknown_path_is_501(api: Api) -> None:
    for method in ("FOO", "PROPFIND", "TRACE", "OPTIONS", "CONNECTX"):
        response = api.request(method, "/v2/nothing/here")
        assert response.status_code == 501, method
        assert "501 Not Implemented" in response.text


def test_standard_method_on_an_unknown_path_is_404(api: Api) -> None:
    image = api.create_image(name="x")
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"):
        for path in (
            "/v2/nothing",
            f"/v2/images/{image['id']}/nothing",
            f"/v2/images/{image['id']}/actions/explode",
            "/v2/images/a/b/c/d/e",
        ):
            response = api.request(method, path)
            assert response.status_code == 404, (method, path)
    assert api.get(f"/v2/images/{image['id']}").json() == image
