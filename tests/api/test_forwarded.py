"""Behind a TLS-terminating proxy: ``[oslo_middleware] enable_proxy_headers_parsing``.

Absolute URLs (``Location``, the versions document) follow the proxy's Forwarded /
X-Forwarded-* headers when the option is on, and ignore them when it is off (the
default). Relative links in bodies stay Glance's ``/v2/...``: clients resolve them
against their endpoint, prefix included (tests/clients/test_tls_proxy.py shows that
through a real proxy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.client import IMPORT_TASK, Api

PROXIED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "images.example.com",
    "X-Forwarded-Prefix": "/image",
}


@pytest.fixture
def proxied(make_api: Callable[..., Api]) -> Api:
    return make_api(oslo_middleware__enable_proxy_headers_parsing=True)


def hrefs(response: Any) -> set[str]:
    return {link["href"] for entry in response.json()["versions"] for link in entry["links"]}


def test_versions_document_follows_x_forwarded_headers(proxied: Api) -> None:
    for path, status in (("/versions", 200), ("/", 300), ("/v1/images", 300), ("/v2.99/x", 300)):
        response = proxied.get(path, headers=PROXIED)
        assert response.status_code == status, path
        assert hrefs(response) == {"https://images.example.com/image/v2/"}, path


def test_forwarded_header_wins_over_x_forwarded(proxied: Api) -> None:
    headers = {
        **PROXIED,
        # The first element is the proxy nearest the client.
        "Forwarded": 'for=192.0.2.60;proto=https;host="glance.example.org:8443", '
        "for=10.0.0.1;proto=http;host=internal",
    }
    response = proxied.get("/versions", headers=headers)
    assert hrefs(response) == {"https://glance.example.org:8443/image/v2/"}


def test_forwarded_header_parameters_are_case_insensitive_and_optional(proxied: Api) -> None:
    only_proto = proxied.get(
        "/versions", headers={"Host": "api.internal:9292", "Forwarded": "Proto=HTTPS"}
    )
    assert hrefs(only_proto) == {"https://api.internal:9292/v2/"}
    only_host = proxied.get("/versions", headers={"Forwarded": "for=198.51.100.7;host=a.example"})
    assert hrefs(only_host) == {"http://a.example/v2/"}


def test_default_ports_are_left_out_and_others_kept(proxied: Api) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "images.example.com:443"}
    assert hrefs(proxied.get("/versions", headers=headers)) == {"https://images.example.com/v2/"}
    headers["X-Forwarded-Host"] = "images.example.com:8443"
    assert hrefs(proxied.get("/versions", headers=headers)) == {
        "https://images.example.com:8443/v2/"
    }
    # Only the proto forwarded: the Host the proxy passed on stays.
    response = proxied.get(
        "/versions", headers={"Host": "[2001:db8::5]:443", "X-Forwarded-Proto": "https"}
    )
    assert hrefs(response) == {"https://[2001:db8::5]/v2/"}


def test_list_headers_take_the_entry_nearest_the_client(proxied: Api) -> None:
    headers = {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "outer.example, inner"}
    assert hrefs(proxied.get("/versions", headers=headers)) == {"https://outer.example/v2/"}


def test_prefix_trailing_slash_is_dropped(proxied: Api) -> None:
    response = proxied.get("/versions", headers={"X-Forwarded-Prefix": "/cloud/image/"})
    assert hrefs(response) == {"http://testserver/cloud/image/v2/"}


def test_location_headers_follow_the_proxy(proxied: Api) -> None:
    created = proxied.post("/v2/images", json={"name": "behind"}, headers=PROXIED)
    assert created.status_code == 201
    image_id = created.json()["id"]
    assert created.headers["Location"] == f"https://images.example.com/image/v2/images/{image_id}"

    task = proxied.post("/v2/tasks", json=IMPORT_TASK, headers=PROXIED)
    assert task.status_code == 201, task.text
    assert task.headers["Location"] == (
        f"https://images.example.com/image/v2/tasks/{task.json()['id']}"
    )

    namespace = proxied.post(
        "/v2/metadefs/namespaces", json={"namespace": "OS::Behind Proxy"}, headers=PROXIED
    )
    assert namespace.status_code == 201, namespace.text
    assert namespace.headers["Location"] == (
        "https://images.example.com/image/v2/metadefs/namespaces/OS::Behind%20Proxy"
    )


def test_versioned_paths_get_the_same_location(proxied: Api) -> None:
    created = proxied.post("/v2.5/images", json={"name": "v25"}, headers=PROXIED)
    assert created.headers["Location"] == (
        f"https://images.example.com/image/v2/images/{created.json()['id']}"
    )


def test_relative_links_stay_relative_to_the_endpoint(proxied: Api) -> None:
    for name in ("a", "b"):
        proxied.create_image(name=name, disk_format="raw", container_format="bare")
    page = proxied.get("/v2/images", params={"limit": "1"}, headers=PROXIED).json()
    assert page["first"] == "/v2/images?limit=1"
    assert page["next"] == f"/v2/images?limit=1&marker={page['images'][0]['id']}"
    assert page["schema"] == "/v2/schemas/images"
    image = page["images"][0]
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"

    for _ in range(2):
        assert proxied.post("/v2/tasks", json=IMPORT_TASK).status_code == 201
    tasks = proxied.get("/v2/tasks", params={"limit": "1"}, headers=PROXIED).json()
    assert tasks["next"].startswith("/v2/tasks?limit=1&marker=")

    for ns in ("OS::A", "OS::B"):
        assert proxied.post("/v2/metadefs/namespaces", json={"namespace": ns}).status_code == 201
    namespaces = proxied.get(
        "/v2/metadefs/namespaces", params={"limit": "1"}, headers=PROXIED
    ).json()
    assert namespaces["next"].startswith("/v2/metadefs/namespaces?limit=1&marker=")

    members = proxied.get(f"/v2/images/{image['id']}/members", headers=PROXIED).json()
    assert members["schema"] == "/v2/schemas/members"


def test_headers_are_ignored_by_default(api: Api) -> None:
    headers = {**PROXIED, "Forwarded": "proto=https;host=evil.example"}
    assert hrefs(api.get("/versions", headers=headers)) == {"http://testserver/v2/"}
    created = api.post("/v2/images", json={"name": "direct"}, headers=headers)
    assert created.headers["Location"] == f"http://testserver/v2/images/{created.json()['id']}"
    # Malformed ones too: nothing reads them.
    assert api.get("/versions", headers={"X-Forwarded-Proto": "gopher"}).status_code == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Forwarded-Proto": "gopher"}, "Invalid protocol 'gopher' in the X-Forwarded-Proto"),
        ({"X-Forwarded-Host": "a b"}, "Invalid host 'a b' in the X-Forwarded-Host header"),
        ({"X-Forwarded-Host": "a/b"}, "Invalid host 'a/b'"),
        ({"X-Forwarded-Prefix": "image"}, "Invalid path 'image' in the X-Forwarded-Prefix"),
        ({"X-Forwarded-Prefix": "/a?b"}, "Invalid path '/a?b'"),
        ({"Forwarded": "proto"}, "Invalid Forwarded header."),
        ({"Forwarded": 'host="unterminated'}, "Invalid Forwarded header."),
        ({"Forwarded": "proto=ftp"}, "Invalid protocol 'ftp' in the Forwarded header."),
        ({"Forwarded": "host=x/y"}, "Invalid host 'x/y' in the Forwarded header."),
    ],
)
def test_malformed_proxy_headers_are_400(
    proxied: Api, headers: dict[str, str], message: str
) -> None:
    for path in ("/versions", "/v2/images"):
        response = proxied.get(path, headers={"Accept": "application/json", **headers})
        assert response.status_code == 400, (path, response.text)
        body = response.json()
        assert body["code"] == "400 Bad Request" and body["title"] == "Bad Request"
        assert message in body["message"]
        assert response.headers["x-openstack-request-id"].startswith("req-")


def test_health_check_ignores_proxy_headers(proxied: Api) -> None:
    response = proxied.get("/healthcheck", headers={"X-Forwarded-Proto": "gopher"})
    assert response.status_code == 200 and response.text == "OK"


@pytest.mark.parametrize("host", [b"\xc2\x80", b"a b", b"bad/host", b"h:123456", b"[::1"])
def test_an_invalid_host_header_is_400(make_api: Callable[..., Api], host: bytes) -> None:
    """RFC 9112's rule, with or without proxy headers: the Host would otherwise become the
    authority of the Location header (one the test client could not even read: 500)."""
    for api in (make_api(), make_api(oslo_middleware__enable_proxy_headers_parsing=True)):
        for method, path in (("POST", "/v2/images"), ("GET", "/versions"), ("GET", "/")):
            response = api.client.request(
                method,
                path,
                content=b"{}" if method == "POST" else None,
                headers={"Host": host, "Accept": "application/json"},
            )
            assert response.status_code == 400, (method, path, response.text)
            assert response.json()["message"].startswith(
                f"Invalid host {host.decode('latin-1')!r} in the Host header."
            )
        assert api.get("/v2/images").json()["images"] == []
    # Host names, addresses and ports are fine.
    api = make_api()
    for good in ("images.example.com:9292", "127.0.0.1", "[::1]:9292", "under_score"):
        created = api.post("/v2/images", json={}, headers={"Host": good})
        assert created.status_code == 201, good
        assert created.headers["Location"] == f"http://{good}/v2/images/{created.json()['id']}"
