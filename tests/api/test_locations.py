"""Image locations through JSON patch (``show_multiple_locations = True``), spec §5.

External locations are served by a local web server through the http store; the
store that uploads write to is the filesystem one. The server is on 127.0.0.1,
which ``[import_filtering_opts]`` refuses unless an operator allows it: every
runtime here allows that host (on any port), as an operator would.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from glimpse.runtime import Runtime
from glimpse.services import scrub
from tests.store.conftest import RangeRequestHandler, WebServer, private_files_handler
from tests.support.client import Api
from tests.support.multistore import MultiStore

OCTET = {"Content-Type": "application/octet-stream"}
DATA = b"external image data " * 512
#: A user and password full of characters RFC 1738 wants quoted in a URL.
USER, PASSWORD = "us@er:1", "p@ss:w/rd%?#"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    served = tmp_path_factory.mktemp("served")
    (served / "private").mkdir()
    (served / "image.raw").write_bytes(DATA)
    (served / "other.raw").write_bytes(DATA)
    (served / "third.raw").write_bytes(DATA)
    (served / "empty.raw").write_bytes(b"")
    (served / "private" / "secret.raw").write_bytes(DATA)
    server = WebServer(served, handler=private_files_handler(USER, PASSWORD))
    yield server
    server.stop()


#: An operator's opt-in to locations on the loopback test servers (any port).
LOOPBACK = {
    "import_filtering_opts__allowed_hosts": ["127.0.0.1"],
    "import_filtering_opts__allowed_ports": [],
}


@pytest.fixture
def make_runtime(make_runtime: Callable[..., Runtime]) -> Callable[..., Runtime]:
    """Runtimes (and so ``make_api``'s) whose filter allows 127.0.0.1 unless told otherwise."""

    def factory(**overrides: Any) -> Runtime:
        return make_runtime(**{**LOOPBACK, **overrides})

    return factory


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """Single-store (file and http, Glance's default ``stores``) with locations shown."""
    return make_api(show_multiple_locations=True, show_image_direct_url=True)


def new_image(api: Api, **body: Any) -> str:
    body.setdefault("disk_format", "raw")
    body.setdefault("container_format", "bare")
    return str(api.create_image(**body)["id"])


def patch(api: Api, image_id: str, *ops: dict[str, Any]) -> Any:
    return api.patch(f"/v2/images/{image_id}", list(ops), headers={"Accept": "application/json"})


def add(url: str, where: str = "-", **metadata: Any) -> dict[str, Any]:
    return {"op": "add", "path": f"/locations/{where}", "value": {"url": url, "metadata": metadata}}


def replace(*locations: dict[str, Any]) -> dict[str, Any]:
    return {"op": "replace", "path": "/locations", "value": list(locations)}


def remove(where: str) -> dict[str, Any]:
    return {"op": "remove", "path": f"/locations/{where}"}


def loc(url: str, **metadata: Any) -> dict[str, Any]:
    return {"url": url, "metadata": metadata}


def urls(api: Api, image_id: str) -> list[str]:
    return [location["url"] for location in api.get(f"/v2/images/{image_id}").json()["locations"]]


def message(response: Any) -> str:
    return str(response.json()["message"])


# --- add -------------------------------------------------------------------------------


def test_adding_a_location_activates_a_queued_image(api: Api, web: WebServer) -> None:
    image_id = new_image(api)
    response = patch(api, image_id, add(web.url("image.raw"), foo="bar"))
    assert response.status_code == 200, response.text
    image = response.json()
    assert image["status"] == "active"
    assert image["size"] == len(DATA)
    assert image["locations"] == [{"url": web.url("image.raw"), "metadata": {"foo": "bar"}}]
    assert image["direct_url"] == web.url("image.raw")
    assert api.get(f"/v2/images/{image_id}/file").content == DATA


def test_a_queued_image_needs_its_formats(api: Api, web: WebServer) -> None:
    image_id = str(api.create_image(name="no formats")["id"])
    response = patch(api, image_id, add(web.url("image.raw")))
    assert response.status_code == 400
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def test_locations_need_show_multiple_locations(
    make_api: Callable[..., Api], web: WebServer
) -> None:
    hidden = make_api()
    image_id = new_image(hidden)
    for op in (add(web.url("image.raw")), replace(loc(web.url("image.raw"))), remove("0")):
        assert patch(hidden, image_id, op).status_code == 403, op
    assert "locations" not in hidden.get(f"/v2/images/{image_id}").json()


def test_add_requires_queued_or_active(api: Api, web: WebServer) -> None:
    image_id = new_image(api)
    assert patch(api, image_id, add(web.url("image.raw"))).status_code == 200
    assert api.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    response = patch(api, image_id, add(web.url("other.raw")))
    assert response.status_code == 409
    staged = new_image(api)
    put = api.put(f"/v2/images/{staged}/stage", content=b"x", headers=OCTET)
    assert put.status_code == 204
    assert patch(api, staged, add(web.url("other.raw"))).status_code == 409


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "filesystem:///etc/passwd",
        "swift+config://ref1/container/object",
        "ftp://127.0.0.1/image.raw",
        "not a url",
    ],
)
def test_restricted_or_unknown_schemes_are_invalid(api: Api, url: str) -> None:
    image_id = new_image(api)
    response = patch(api, image_id, add(url))
    assert response.status_code == 400
    assert message(response).startswith("Invalid location")
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def test_a_file_location_of_the_store_itself_is_refused(api: Api, tmp_path: Path) -> None:
    uploaded = new_image(api)
    api.put(f"/v2/images/{uploaded}/file", content=DATA, headers=OCTET)
    stored = api.get(f"/v2/images/{uploaded}").json()["locations"][0]["url"]
    image_id = new_image(api)
    assert patch(api, image_id, add(stored)).status_code == 400


# --- [import_filtering_opts]: http(s) locations are URLs fetched for a user ----------------


def no_loopback(make_api: Callable[..., Api], **overrides: Any) -> Api:
    """An API with Glance's filter defaults (ports 80 and 443, no private addresses)."""
    options: dict[str, Any] = {
        "show_multiple_locations": True,
        "import_filtering_opts__allowed_hosts": [],
        "import_filtering_opts__allowed_ports": [80, 443],
    }
    return make_api(**{**options, **overrides})


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/image.raw",
        "http://[::1]/image.raw",
        "http://example.com:22/image.raw",
    ],
)
def test_patch_added_http_locations_must_pass_the_filter(
    make_api: Callable[..., Api], url: str
) -> None:
    api = no_loopback(make_api)
    image_id = new_image(api)

    for op in (add(url), replace(loc(url))):
        response = patch(api, image_id, op)
        assert response.status_code == 400, op
        assert message(response).startswith(f"URI for add location does not pass filtering: {url}")
    image = api.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["locations"]) == ("queued", [])


def test_a_location_host_name_is_checked_by_what_it_resolves_to(
    make_api: Callable[..., Api], web: WebServer
) -> None:
    api = no_loopback(make_api, import_filtering_opts__allowed_ports=[])
    image_id = new_image(api)
    # "localhost" passes the filter by name; it resolves to loopback.
    url = f"http://localhost:{web.server_address[1]}/image.raw"

    response = patch(api, image_id, add(url))

    assert response.status_code == 400
    assert "not publicly routable" in message(response)
    assert api.get(f"/v2/images/{image_id}").json()["locations"] == []


class _Redirector(RangeRequestHandler):
    """``/hop`` redirects to the server's ``target`` URL (changed by the test)."""

    def _serve(self, send_body: bool) -> None:
        if self.path == "/hop":
            self._reply(302, {"Location": self.server.target}, b"")  # type: ignore[attr-defined]
            return
        super()._serve(send_body)


def test_a_location_redirecting_to_a_refused_address_is_not_read(
    api: Api, web: WebServer, tmp_path: Path
) -> None:
    redirector = WebServer(tmp_path, handler=_Redirector)
    redirector.target = web.url("image.raw")  # type: ignore[attr-defined]
    try:
        image_id = new_image(api)
        response = patch(api, image_id, add(redirector.url("hop")))
        assert response.status_code == 200, response.text
        assert api.get(f"/v2/images/{image_id}/file").content == DATA

        # The location now sends its readers to the cloud's metadata service.
        redirector.target = "http://169.254.169.254/latest/meta-data/"  # type: ignore[attr-defined]
        response = api.get(f"/v2/images/{image_id}/file")

        assert response.status_code == 503
        assert "redirects to http://169.254.169.254/latest/meta-data/" in response.text
    finally:
        redirector.stop()


def test_locations_without_data_are_invalid(api: Api, web: WebServer) -> None:
    image_id = new_image(api)
    closed = "http://127.0.0.1:9/image.raw"
    for url in (web.url("missing.raw"), web.url("empty.raw"), closed):
        response = patch(api, image_id, add(url))
        assert response.status_code == 400, url
        assert message(response).startswith("Invalid location")


def test_malformed_location_values_are_400(api: Api, web: WebServer) -> None:
    image_id = new_image(api)
    bad: list[Any] = [
        "http://x",
        {"url": web.url("image.raw")},
        {"metadata": {}},
        {"url": web.url("image.raw"), "metadata": "x"},
        {"url": 5, "metadata": {}},
        {"url": web.url("a" * 260), "metadata": {}},
    ]
    for value in bad:
        op = {"op": "add", "path": "/locations/-", "value": value}
        assert patch(api, image_id, op).status_code == 400, value


def test_location_urls_that_cannot_be_parsed_are_400(api: Api, web: WebServer) -> None:
    image_id = new_image(api)
    assert patch(api, image_id, add(web.url("image.raw"))).status_code == 200
    before = api.get(f"/v2/images/{image_id}").json()
    for url in ("A://[", "http://[::1/image.raw", "swift://a:b@[x/c/o"):
        for op in (add(url), replace(loc(web.url("image.raw")), loc(url))):
            response = patch(api, image_id, op)
            assert response.status_code == 400, (url, op)
            assert message(response).startswith(
                "Location cannot be parsed as a URL (Invalid IPv6 URL).<br />"
            )
    assert api.get(f"/v2/images/{image_id}").json() == before


def test_location_metadata_too_large_to_store_is_400(api: Api, web: WebServer) -> None:
    """Location metadata is kept as text, which MariaDB caps at 64 KiB (500 there before)."""
    image_id = new_image(api)
    assert patch(api, image_id, add(web.url("image.raw"))).status_code == 200
    before = api.get(f"/v2/images/{image_id}").json()
    big = {"note": "n" * 70_000}
    for op in (add(web.url("other.raw"), **big), replace(loc(web.url("image.raw"), **big))):
        response = patch(api, image_id, op)
        assert response.status_code == 400, response.text
        assert message(response).startswith("Location metadata is too large to store (")
    assert api.get(f"/v2/images/{image_id}").json() == before


def test_positions(api: Api, web: WebServer) -> None:
    image_id = new_image(api)
    assert patch(api, image_id, add(web.url("image.raw"))).status_code == 200
    assert patch(api, image_id, add(web.url("other.raw"), "0")).status_code == 200
    assert patch(api, image_id, add(web.url("third.raw"), "1")).status_code == 200
    assert urls(api, image_id) == [web.url(n) for n in ("other.raw", "third.raw", "image.raw")]
    for where in ("4", "-1", "x", "01"):
        assert patch(api, image_id, add(web.url("third.raw"), where, n=1)).status_code == 400
    assert patch(api, image_id, {"op": "add", "path": "/locations", "value": []}).status_code == 400


def test_duplicates_are_400(api: Api, web: WebServer) -> None:
    image_id = new_image(api)
    assert patch(api, image_id, add(web.url("image.raw"), a="1")).status_code == 200
    response = patch(api, image_id, add(web.url("image.raw"), a="1"))
    assert response.status_code == 400 and "already exists" in message(response)
    # The same URL with other metadata is another location, as in Glance.
    assert patch(api, image_id, add(web.url("image.raw"), a="2")).status_code == 200


def test_image_location_quota_is_413(make_api: Callable[..., Api], web: WebServer) -> None:
    api = make_api(show_multiple_locations=True, image_location_quota=2)
    image_id = new_image(api)
    assert (
        patch(api, image_id, add(web.url("image.raw")), add(web.url("other.raw"))).status_code
        == 200
    )
    assert patch(api, image_id, add(web.url("third.raw"))).status_code == 413
    assert len(urls(api, image_id)) == 2
    queued = new_image(api)
    three = [loc(web.url(n)) for n in ("image.raw", "other.raw", "third.raw")]
    assert patch(api, queued, replace(*three)).status_code == 413


def test_storage_quota_counts_added_locations(make_api: Callable[..., Api], web: WebServer) -> None:
    api = make_api(show_multiple_locations=True, user_storage_quota=str(len(DATA) + 10))
    owner = api.as_("projA")
    image_id = new_image(owner)
    assert patch(owner, image_id, add(web.url("image.raw"))).status_code == 200
    assert patch(owner, image_id, add(web.url("other.raw"))).status_code == 413


def test_a_patch_with_a_bad_location_changes_nothing(api: Api, web: WebServer) -> None:
    image_id = new_image(api)
    ops = [{"op": "replace", "path": "/name", "value": "renamed"}, add(web.url("missing.raw"))]
    assert patch(api, image_id, *ops).status_code == 400
    image = api.get(f"/v2/images/{image_id}").json()
    assert image["name"] != "renamed" and image["status"] == "queued"


def test_validation_data_sets_the_checksums_of_a_queued_image(api: Api, web: WebServer) -> None:
    import hashlib

    image_id = new_image(api)
    checksum = hashlib.md5(DATA).hexdigest()
    digest = hashlib.sha512(DATA).hexdigest()
    value = {
        "url": web.url("image.raw"),
        "metadata": {},
        "validation_data": {
            "checksum": checksum,
            "os_hash_algo": "sha512",
            "os_hash_value": digest,
        },
    }
    wrong = {**value, "validation_data": {"os_hash_algo": "sha256", "os_hash_value": "ab"}}
    assert (
        patch(api, image_id, {"op": "add", "path": "/locations/-", "value": wrong}).status_code
        == 409
    )
    response = patch(api, image_id, {"op": "add", "path": "/locations/-", "value": value})
    assert response.status_code == 200, response.text
    image = response.json()
    assert (image["checksum"], image["os_hash_algo"], image["os_hash_value"]) == (
        checksum,
        "sha512",
        digest,
    )
    assert image["locations"] == [{"url": web.url("image.raw"), "metadata": {}}]
    other = {
        **value,
        "url": web.url("other.raw"),
        "validation_data": {"os_hash_algo": "sha512", "os_hash_value": "0" * 128},
    }
    assert (
        patch(api, image_id, {"op": "add", "path": "/locations/-", "value": other}).status_code
        == 409
    )


# --- replace ---------------------------------------------------------------------------


def test_replace_rules(api: Api, web: WebServer) -> None:
    image_id = new_image(api)
    assert patch(api, image_id, replace()).status_code == 403
    first, second = web.url("image.raw"), web.url("other.raw")
    response = patch(api, image_id, replace(loc(first), loc(second, k="v")))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    assert urls(api, image_id) == [first, second]
    # Reorder, and change metadata: allowed.
    response = patch(api, image_id, replace(loc(second), loc(first, k="w")))
    assert response.status_code == 200
    assert response.json()["locations"] == [loc(second), loc(first, k="w")]
    # Any other set of URLs: 400.
    assert patch(api, image_id, replace(loc(first))).status_code == 400
    assert patch(api, image_id, replace(loc(first), loc(web.url("third.raw")))).status_code == 400
    assert patch(api, image_id, replace()).status_code == 403
    assert (
        patch(api, image_id, {"op": "replace", "path": "/locations", "value": "x"}).status_code
        == 400
    )
    assert urls(api, image_id) == [second, first]
    assert api.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    assert patch(api, image_id, replace(loc(first), loc(second))).status_code == 409


def test_replace_refuses_duplicates_and_invalid_locations(api: Api, web: WebServer) -> None:
    image_id = new_image(api)
    same = loc(web.url("image.raw"))
    assert patch(api, image_id, replace(same, same)).status_code == 400
    assert patch(api, image_id, replace(loc("file:///etc/passwd"))).status_code == 400
    assert patch(api, image_id, replace(loc(web.url("empty.raw")))).status_code == 400
    assert api.get(f"/v2/images/{image_id}").json()["locations"] == []


# --- remove ----------------------------------------------------------------------------


def test_remove_rules_and_data_removal(api: Api, web: WebServer, tmp_path: Path) -> None:
    image_id = new_image(api)
    put = api.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET)
    assert put.status_code == 204
    stored = urls(api, image_id)[0]
    path = stored[len("file://") :]
    assert os.path.exists(path)
    assert patch(api, image_id, remove("0")).status_code == 403  # the last one
    assert patch(api, image_id, add(web.url("image.raw"))).status_code == 200
    for where in ("2", "-", "x", "-1"):
        assert patch(api, image_id, remove(where)).status_code == 400, where
    response = patch(api, image_id, remove("0"))
    assert response.status_code == 200, response.text
    assert response.json()["locations"] == [loc(web.url("image.raw"))]
    assert not os.path.exists(path)
    assert api.get(f"/v2/images/{image_id}/file").content == DATA
    queued = new_image(api)
    assert patch(api, queued, remove("0")).status_code == 409


def test_remove_with_delayed_delete_leaves_the_data_to_the_scrubber(
    make_runtime: Callable[..., Any], web: WebServer
) -> None:
    from starlette.testclient import TestClient

    from glimpse.http.app import create_app

    rt = make_runtime(show_multiple_locations=True, delayed_delete=True)
    api = Api(TestClient(create_app(rt), raise_server_exceptions=False))
    image_id = new_image(api)
    api.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET)
    path = urls(api, image_id)[0][len("file://") :]
    assert patch(api, image_id, add(web.url("image.raw")), remove("0")).status_code == 200
    assert urls(api, image_id) == [web.url("image.raw")]
    assert os.path.exists(path)
    scrub.run_pass(rt)
    assert not os.path.exists(path)
    assert urls(api, image_id) == [web.url("image.raw")]


# --- policies --------------------------------------------------------------------------


def _policy(tmp_path: Path, rules: dict[str, str]) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text("".join(f'"{name}": "{rule}"\n' for name, rule in rules.items()))
    return str(path)


def test_location_policies(make_api: Callable[..., Api], web: WebServer, tmp_path: Path) -> None:
    rules = {"set_image_location": "!", "delete_image_location": "!", "get_image_location": "!"}
    api = make_api(
        show_multiple_locations=True,
        show_image_direct_url=True,
        oslo_policy__policy_file=_policy(tmp_path, rules),
    )
    owner = api.as_("projA")
    image_id = new_image(owner)
    assert patch(owner, image_id, add(web.url("image.raw"))).status_code == 403
    assert patch(owner, image_id, replace(loc(web.url("image.raw")))).status_code == 403
    put = owner.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET)
    assert put.status_code == 204
    image = owner.get(f"/v2/images/{image_id}").json()
    # Hidden by get_image_location.
    assert image["locations"] == [] and "direct_url" not in image
    assert patch(owner, image_id, remove("0")).status_code == 403


# --- credentials -----------------------------------------------------------------------


def test_credentials_never_show_and_quoted_ones_work(api: Api, web: WebServer) -> None:
    port = web.server_address[1]
    secret = f"http://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}"
    private = f"{secret}/private/secret.raw"
    public = f"http://127.0.0.1:{port}/private/secret.raw"
    image_id = new_image(api)
    # Without credentials the server refuses: not a valid location.
    assert patch(api, image_id, add(public)).status_code == 400
    response = patch(api, image_id, add(private))
    assert response.status_code == 200, response.text
    shown = json.dumps(response.json())
    assert quote(PASSWORD, safe="") not in shown and PASSWORD not in shown
    image = api.get(f"/v2/images/{image_id}").json()
    assert image["locations"] == [loc(public)]
    assert image["direct_url"] == public
    assert api.get(f"/v2/images/{image_id}/file").content == DATA
    # The list as shown can be sent back (reordered): the stored URL keeps its credentials.
    assert patch(api, image_id, add(web.url("image.raw"))).status_code == 200
    listed = api.get(f"/v2/images/{image_id}").json()["locations"]
    assert patch(api, image_id, replace(*reversed(listed))).status_code == 200
    assert patch(api, image_id, remove("0")).status_code == 200
    assert urls(api, image_id) == [public]
    assert api.get(f"/v2/images/{image_id}/file").content == DATA


def test_the_patch_media_type_v2_0_reaches_locations_too(api: Api, web: WebServer) -> None:
    image_id = new_image(api)
    ops = [{"add": "/locations/-", "value": loc(web.url("image.raw"))}]
    response = api.patch(
        f"/v2/images/{image_id}", ops, media_type="application/openstack-images-v2.0-json-patch"
    )
    assert response.status_code == 200, response.text
    assert urls(api, image_id) == [web.url("image.raw")]


# --- multi-store -----------------------------------------------------------------------


def test_with_multi_store_a_location_names_its_store(
    make_multi: Callable[..., MultiStore], web: WebServer
) -> None:
    multi = make_multi(
        {
            "DEFAULT": {"show_multiple_locations": True},
            "import_filtering_opts": {"allowed_hosts": "127.0.0.1", "allowed_ports": "[]"},
        }
    )
    image_id = multi.uploaded("cheap")
    # Whatever store a client names, the store that holds the URL is recorded.
    response = patch(multi.api, image_id, add(web.url("image.raw"), store="fast", k="v"))
    assert response.status_code == 200, response.text
    image = response.json()
    assert image["locations"][1] == loc(web.url("image.raw"), store="web", k="v")
    assert image["stores"] == "cheap,web"
    # Replacing keeps each location's store.
    reordered = [image["locations"][1], {**image["locations"][0], "metadata": {}}]
    response = patch(multi.api, image_id, replace(*reordered))
    assert response.status_code == 200, response.text
    assert [location["metadata"]["store"] for location in response.json()["locations"]] == [
        "web",
        "cheap",
    ]
    # A file location of another store of this deployment: restricted scheme.
    stored = f"file://{multi.store_dir('cheap')}/{image_id}"
    other = multi.new_image()
    assert patch(multi.api, other, add(stored)).status_code == 400
