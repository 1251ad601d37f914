"""Requests exactly as Tempest's image client sends them (see docs/tempest.md)."""

from __future__ import annotations

from tests.support.client import Api

OCTET = {"Content-Type": "application/octet-stream"}


def test_single_store_import_accepts_tempests_all_stores_true(api: Api) -> None:
    # tempest.lib's images_client.image_import() sends "all_stores": true unless told
    # which stores; Glance without enabled_backends ignores it and imports to its store.
    staged = api.create_image(name="direct", disk_format="raw", container_format="bare")
    put = api.put(f"/v2/images/{staged['id']}/stage", content=b"x" * 1024, headers=OCTET)
    assert put.status_code == 204
    body = {"method": {"name": "glance-direct"}, "all_stores": True}
    assert api.post(f"/v2/images/{staged['id']}/import", json=body).status_code == 202

    fetched = api.create_image(name="web", disk_format="qcow2", container_format="bare")
    body = {
        "method": {"name": "web-download", "uri": "http://example.com/test-image.qcow2"},
        "all_stores": True,
    }
    assert api.post(f"/v2/images/{fetched['id']}/import", json=body).status_code == 202


def test_os_glance_namespace_is_reserved_on_create_and_patch(api: Api) -> None:
    # tempest ImagesNegativeTest.test_{create,update}_image_reserved_property
    response = api.post("/v2/images", json={"name": "x", "os_glance_foo": "bar"})
    assert response.status_code == 403
    assert "os_glance_foo" in response.text
    image = api.create_image(name="x")
    for op in ("add", "replace", "remove"):
        change = {"op": op, "path": "/os_glance_foo"}
        if op != "remove":
            change["value"] = "bar"
        assert api.patch(f"/v2/images/{image['id']}", [change]).status_code == 403
    assert "os_glance_foo" not in api.get(f"/v2/images/{image['id']}").json()


def test_empty_image_id_with_trailing_slash_is_404(api: Api) -> None:
    # tempest ImagesNegativeTest.test_{get,delete}_image_null_id: no redirect to the list
    api.create_image(name="x")
    for method in ("GET", "DELETE"):
        response = api.request(method, "/v2/images/", follow_redirects=False)
        assert response.status_code == 404
