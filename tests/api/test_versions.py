"""The versions document, version negotiation and the health check."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.client import Api
from tests.support.multistore import MultiStore

#: What Glance 2026.2 lists without enabled_backends and without an image cache, newest first.
EXPECTED = [
    ("v2.17", "CURRENT"),
    ("v2.15", "SUPPORTED"),
    ("v2.9", "SUPPORTED"),
    ("v2.7", "SUPPORTED"),
    ("v2.6", "SUPPORTED"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
]
VND = "application/vnd.openstack.images-"


def _entries(body: dict[str, list[dict[str, object]]]) -> list[tuple[object, object]]:
    return [(entry["id"], entry["status"]) for entry in body["versions"]]


def test_root_is_300_with_every_version_in_order(api: Api) -> None:
    response = api.get("/")
    assert response.status_code == 300
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-openstack-request-id"].startswith("req-")
    body = response.json()
    assert _entries(body) == EXPECTED
    for entry in body["versions"]:
        assert entry["links"] == [{"rel": "self", "href": "http://testserver/v2/"}]


def test_versions_is_200_with_the_same_document(api: Api) -> None:
    root = api.get("/").json()
    for path in ("/versions", "/versions/"):
        response = api.get(path)
        assert response.status_code == 200, path
        assert response.json() == root
    # Glance answers /versions whatever the method.
    assert api.post("/versions").status_code == 200


def test_multi_store_versions_only_with_multiple_stores(api: Api) -> None:
    ids = [entry["id"] for entry in api.get("/versions").json()["versions"]]
    for version in ("2.8", "2.10", "2.11", "2.12", "2.13"):
        assert f"v{version}" not in ids
        assert api.get(f"/v{version}/images").status_code == 300, version
        vnd = {"Accept": f"{VND}v{version}"}
        assert api.get("/images", headers=vnd).status_code == 300, version


def test_no_image_cache_versions(api: Api, make_multi: Callable[..., MultiStore]) -> None:
    # 2.14, 2.16 and 2.18 are the image cache API, which Glimpse does not have: never
    # listed or accepted, even with enabled_backends.
    for client in (api, make_multi().api):
        ids = [entry["id"] for entry in client.get("/versions").json()["versions"]]
        for version in ("2.14", "2.16", "2.18"):
            assert f"v{version}" not in ids
            assert client.get(f"/v{version}/images").status_code == 300, version
        assert client.get("/v2/cache").status_code == 404


def test_links_use_the_request_host_or_public_endpoint(make_api: Callable[..., Api]) -> None:
    api = make_api()
    response = api.get("/versions", headers={"Host": "glance.example.com:9292"})
    assert (
        response.json()["versions"][0]["links"][0]["href"] == "http://glance.example.com:9292/v2/"
    )

    public = make_api(public_endpoint="https://images.example.org/")
    href = public.get("/versions").json()["versions"][0]["links"][0]["href"]
    assert href == "https://images.example.org/v2/"


def test_every_accepted_prefix_serves_v2(api: Api) -> None:
    image = api.create_image(name="x")
    prefixes = ["/v2"] + [f"/{version}" for version, _ in EXPECTED]
    for prefix in prefixes:
        listed = api.get(f"{prefix}/images")
        assert listed.status_code == 200, prefix
        assert [i["id"] for i in listed.json()["images"]] == [image["id"]]
        shown = api.get(f"{prefix}/images/{image['id']}")
        assert shown.status_code == 200, prefix
        # Links in bodies always name /v2, whatever prefix was used.
        assert shown.json()["self"] == f"/v2/images/{image['id']}"


def test_v2_3_is_the_same_as_v2(api: Api) -> None:
    api.create_image(name="a")
    assert api.get("/v2.3/images").json() == api.get("/v2/images").json()
    created = api.post("/v2.3/images", json={"name": "b"})
    assert created.status_code == 201
    assert created.headers["location"] == f"http://testserver/v2/images/{created.json()['id']}"


def test_unknown_versions_get_the_versions_list(api: Api) -> None:
    for path in (
        "/v2.8/images",
        "/v2.10/images",
        "/v2.16/images",
        "/v2.18/images",
        "/v2.09/images",
        "/v2.017/images",
        "/v1/images",
        "/v1.0/images",
        "/v1.1/images",
        "/v3",
        "/v3/images",
        "/foo",
        "/images",
        "/v20/images",
        "/v2x/images",
        "/V2/images",
    ):
        response = api.get(path)
        assert response.status_code == 300, path
        assert _entries(response.json()) == EXPECTED


def test_unknown_versions_do_not_reach_the_api(api: Api) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert api.request(method, "/v1/images", json={}).status_code == 300, method
    assert api.get("/v2/images").json()["images"] == []


def test_v2_without_a_path_is_not_found(api: Api) -> None:
    assert api.get("/v2/").status_code == 404
    assert api.get("/v2").status_code == 404


def test_accept_header_selects_v2_for_unprefixed_paths(api: Api) -> None:
    image = api.create_image(name="x")
    for version in ("v2", "v2.0", "v2.3", "v2.7", "v2.9", "v2.17"):
        accept = f"{VND}{version}"
        headers = {"Accept": accept}
        listed = api.get("/images", headers=headers)
        assert listed.status_code == 200, accept
        assert [i["id"] for i in listed.json()["images"]] == [image["id"]]
        shown = api.get(f"/images/{image['id']}", headers=headers)
        assert shown.status_code == 200 and shown.json()["id"] == image["id"]
        schema = api.get("/schemas/image", headers=headers)
        assert schema.status_code == 200 and schema.json()["name"] == "image"


def test_unknown_accept_version_gets_the_versions_list(api: Api) -> None:
    for accept in (f"{VND}v2.8", f"{VND}v2.14", f"{VND}v1", "application/json"):
        response = api.get("/images", headers={"Accept": accept})
        assert response.status_code == 300, accept
        assert _entries(response.json()) == EXPECTED


def test_healthcheck(api: Api) -> None:
    response = api.get("/healthcheck")
    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["x-openstack-request-id"].startswith("req-")
    # Identity does not matter to the health check.
    assert api.as_("p1").get("/healthcheck").text == "OK"
