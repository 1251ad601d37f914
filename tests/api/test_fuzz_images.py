"""Property-based fuzzing of the images API: hostile input never gets a 5xx.

Each test keeps one in-process API (SQLite is enough: the examples are about parsing
and validation) and sends it generated requests; every answer must be below 500 and,
when 4xx, in Glance's error format. Refused changes must leave the image as it was.
"""

from __future__ import annotations

import datetime
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import fuzz
from tests.support.client import PATCH, Api
from tests.support.multistore import MultiStore

PATCH_2_0 = "application/openstack-images-v2.0-json-patch"
IMAGE_KEYS = [
    "id",
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "container_format",
    "disk_format",
    "min_disk",
    "min_ram",
    "tags",
    "owner",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "locations",
    "location",
    "direct_url",
    "self",
    "file",
    "schema",
    "os_hash_algo",
    "os_hash_value",
    "created_at",
    "updated_at",
    "deleted",
    "stores",
    "os_glance_import_task",
    "kernel_id",
    "ramdisk_id",
    "hw_disk_bus",
    "foo",
]
LIST_PARAMS = [
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "sort",
    "name",
    "id",
    "status",
    "visibility",
    "member_status",
    "owner",
    "checksum",
    "os_hash_value",
    "os_hidden",
    "tag",
    "size_min",
    "size_max",
    "created_at",
    "updated_at",
    "container_format",
    "disk_format",
    "min_ram",
    "protected",
    "foo",
]
#: ISO 8601 instants anywhere in Python's range (its ends most of all), in any fixed
#: offset from UTC.
OFFSETS = st.integers(-23 * 60, 23 * 60).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
)
DATES = st.one_of(
    st.datetimes(timezones=OFFSETS),
    st.builds(
        lambda moment, zone: moment.replace(tzinfo=zone),
        st.sampled_from([datetime.datetime.min, datetime.datetime.max]),
        OFFSETS,
    ),
).map(datetime.datetime.isoformat)
DATE_OR_FILTER = st.one_of(
    fuzz.url_text(),
    DATES,
    st.tuples(st.sampled_from(["gt", "gte", "lt", "lte", "eq", "neq"]), DATES).map(":".join),
    st.tuples(
        st.sampled_from(["gt", "gte", "lt", "lte", "eq", "neq", "in", "x", ""]),
        st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01", "now", "", "1", "a,b", "in:x"]),
    ).map(lambda t: f"{t[0]}:{t[1]}"),
)
ACCEPT = st.sampled_from(fuzz.ACCEPTS)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite only (see :func:`tests.support.fuzz.sqlite_database`)."""
    yield from fuzz.sqlite_database(tmp_path_factory)


@pytest.fixture
def image(api: Api) -> dict[str, Any]:
    """An image with a tag, shared by default as in Glance."""
    return api.create_image(name="fuzzed", disk_format="raw", container_format="bare", tags=["t"])


def _look(api: Api, image_id: str) -> Any:
    response = api.get(f"/v2/images/{image_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _drop(api: Api, response: Any) -> None:
    """Delete an image a fuzzed request happened to create, so the table stays small."""
    if response.status_code != 201:
        return
    image_id = response.json()["id"]
    api.patch(f"/v2/images/{image_id}", [{"op": "replace", "path": "/protected", "value": False}])
    assert api.delete(f"/v2/images/{image_id}").status_code == 204


@fuzz.FUZZ
@given(body=fuzz.bodies(IMAGE_KEYS), accept=ACCEPT)
def test_create_bodies(api: Api, body: bytes, accept: str) -> None:
    response = api.post(
        "/v2/images", content=body, headers={"Content-Type": "application/json", "Accept": accept}
    )
    fuzz.assert_handled(response)
    _drop(api, response)


@fuzz.FUZZ
@given(
    ops=st.one_of(
        st.lists(
            st.one_of(
                st.fixed_dictionaries(
                    {
                        "op": st.sampled_from(["add", "replace", "remove", "test", "move", "x"]),
                        "path": st.one_of(
                            st.sampled_from([f"/{k}" for k in IMAGE_KEYS]),
                            st.sampled_from(["/", "", "/tags/0", "/tags/-", "/locations/0"]),
                            st.sampled_from(["/locations/-", "/foo/bar", "/~1x", "/~2", "~"]),
                            fuzz.text(),
                        ),
                        "value": fuzz.json_values(),
                    }
                ),
                fuzz.objects(["op", "path", "value", "from"]),
                fuzz.json_values(),
            ),
            max_size=3,
        ).map(fuzz.encode),
        fuzz.bodies(["op", "path", "value"]),
    ),
    media=st.sampled_from(
        [PATCH, PATCH, PATCH_2_0, "application/json", "text/plain", "", PATCH + "; charset=x"]
    ),
    accept=ACCEPT,
)
def test_patch_bodies(api: Api, image: dict[str, Any], ops: bytes, media: str, accept: str) -> None:
    before = _look(api, image["id"])
    response = api.request(
        "PATCH",
        f"/v2/images/{image['id']}",
        content=ops,
        headers={"Content-Type": media, "Accept": accept},
    )
    fuzz.assert_handled(response)
    if response.status_code >= 400:
        assert _look(api, image["id"]) == before


@fuzz.FUZZ
@given(
    params=st.lists(
        st.one_of(
            st.tuples(st.sampled_from(LIST_PARAMS), fuzz.url_text()),
            st.tuples(
                st.sampled_from(["created_at", "updated_at", "name", "id", "status", "size_min"]),
                DATE_OR_FILTER,
            ),
            st.tuples(fuzz.url_text(), fuzz.url_text()),
        ),
        max_size=5,
    ),
    accept=ACCEPT,
)
def test_list_queries(
    api: Api, image: dict[str, Any], params: list[tuple[str, str]], accept: str
) -> None:
    response = api.get("/v2/images", params=params, headers={"Accept": accept})
    fuzz.assert_handled(response)


@fuzz.FUZZ
@given(key=st.sampled_from(["created_at", "updated_at"]), value=DATE_OR_FILTER)
def test_date_filters(api: Api, image: dict[str, Any], key: str, value: str) -> None:
    """One date filter alone, so that no other parameter is refused first."""
    response = api.get("/v2/images", params={key: value}, headers={"Accept": "application/json"})
    fuzz.assert_handled(response)


@fuzz.FUZZ
@given(raw=st.one_of(fuzz.url_text().map(str.encode), st.binary(max_size=30)))
def test_raw_query_strings(api: Api, image: dict[str, Any], raw: bytes) -> None:
    """Query strings as sent, percent escapes and all (invalid UTF-8 too)."""
    query = urllib.parse.quote_from_bytes(raw, safe="=&%:,+")
    fuzz.assert_handled(api.get(f"/v2/images?{query}", headers={"Accept": "application/json"}))


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="%")


@fuzz.FUZZ
@given(
    image_id=fuzz.url_text(),
    suffix=st.sampled_from(
        [
            "",
            "/file",
            "/stage",
            "/import",
            "/tasks",
            "/locations",
            "/members",
            "/members/p",
            "/tags/x",
            "/actions/deactivate",
            "/actions/reactivate",
        ]
    ),
    method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"]),
)
def test_odd_image_ids(
    api: Api, image: dict[str, Any], image_id: str, suffix: str, method: str
) -> None:
    before = _look(api, image["id"])
    response = api.request(
        method,
        f"/v2/images/{_segment(image_id)}{suffix}",
        headers={"Accept": "application/json"},
    )
    fuzz.assert_handled(response)
    assert _look(api, image["id"]) == before


@fuzz.FUZZ
@given(tag=fuzz.url_text(), method=st.sampled_from(["PUT", "DELETE"]))
def test_tags(api: Api, image: dict[str, Any], tag: str, method: str) -> None:
    before = _look(api, image["id"])
    response = api.request(
        method,
        f"/v2/images/{image['id']}/tags/{_segment(tag)}",
        headers={"Accept": "application/json"},
    )
    fuzz.assert_handled(response)
    if response.status_code >= 400:
        assert _look(api, image["id"]) == before
    elif method == "PUT":
        assert tag in _look(api, image["id"])["tags"]


@fuzz.FUZZ
@given(
    body=fuzz.bodies(["member", "status"]),
    member=fuzz.url_text(),
    method=st.sampled_from(["POST", "PUT"]),
)
def test_member_bodies(api: Api, body: bytes, member: str, method: str) -> None:
    shared = _shared_image(api)
    path = f"/v2/images/{shared}/members"
    if method == "PUT":
        path += f"/{_segment(member)}"
    response = api.request(
        method,
        path,
        content=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    fuzz.assert_handled(response)


def _shared_image(api: Api) -> str:
    found = api.get("/v2/images", params={"name": "shared-fuzz"}).json()["images"]
    if found:
        return str(found[0]["id"])
    return str(api.create_image(name="shared-fuzz", visibility="shared")["id"])


@fuzz.fewer(60)
@given(
    where=st.sampled_from(["file", "stage"]),
    content_type=st.sampled_from(
        ["application/octet-stream", "application/json", "", "text/plain; x=y", "a/b/c"]
    ),
    length=st.one_of(
        st.none(), st.sampled_from(["-1", "abc", "1e3", "99999999999999999999", " 3", "0x10"])
    ),
    expected_hash=st.one_of(
        st.none(), st.sampled_from(["sha512:", "md5:zz", "nope", "sha512:" + "0" * 128, ":"])
    ),
    declared_size=st.one_of(
        st.none(), st.sampled_from(["-1", "x", "0", "3", "99999999999999999999", "1e3", ""])
    ),
    data=st.binary(max_size=64),
)
def test_data_headers(
    api: Api,
    where: str,
    content_type: str,
    length: str | None,
    expected_hash: str | None,
    declared_size: str | None,
    data: bytes,
) -> None:
    target = api.create_image(disk_format="raw", container_format="bare")
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if length is not None:
        headers["Content-Length"] = length
    if expected_hash is not None:
        headers["X-Image-Meta-Expected-Hash"] = expected_hash
    if declared_size is not None:
        headers["X-Openstack-Image-Size"] = declared_size
    response = api.put(f"/v2/images/{target['id']}/{where}", content=data, headers=headers)
    fuzz.assert_handled(response)
    after = _look(api, target["id"])
    if response.status_code >= 400:
        assert after["status"] == "queued"
        assert after["size"] is None
    api.delete(f"/v2/images/{target['id']}")


@fuzz.FUZZ
@given(
    range_header=st.one_of(
        fuzz.url_text(),
        st.sampled_from(
            [
                "bytes=0-0",
                "bytes=-1",
                "bytes=5-",
                "bytes=99-100",
                "bytes=3-1",
                "bytes=0-1,2-3",
                "bytes=-0",
                "bytes=--1",
                "bytes=0-99999999999999999999999",
                "items=0-1",
                "bytes=",
            ]
        ),
    ),
    content_range=st.one_of(st.none(), st.sampled_from(["bytes 0-1/4", "bytes */4", "x", ""])),
)
def test_download_ranges(api: Api, range_header: str, content_range: str | None) -> None:
    active = _active_image(api)
    headers = {"Range": range_header.encode(), "Accept": b"application/json"}
    if content_range is not None:
        headers["Content-Range"] = content_range.encode()
    response = api.get(f"/v2/images/{active}/file", headers=headers)
    fuzz.assert_handled(response)


def _active_image(api: Api) -> str:
    found = api.get("/v2/images", params={"name": "active-fuzz"}).json()["images"]
    if found:
        return str(found[0]["id"])
    image = api.create_image(name="active-fuzz", disk_format="raw", container_format="bare")
    response = api.put(
        f"/v2/images/{image['id']}/file",
        content=b"0123456789",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 204, response.text
    return str(image["id"])


@fuzz.FUZZ
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {
                "method": st.one_of(
                    fuzz.objects(["name", "uri", "decompress", "expected_hash", "glance_image_id"]),
                    st.fixed_dictionaries(
                        {
                            "name": st.sampled_from(
                                ["glance-direct", "web-download", "copy-image", "glance-download"]
                            ),
                        },
                        optional={
                            "uri": fuzz.json_values(),
                            "decompress": fuzz.json_values(),
                            "expected_hash": fuzz.objects(["algorithm", "value"]),
                        },
                    ),
                ),
            },
            optional={
                "stores": fuzz.json_values(),
                "all_stores": fuzz.json_values(),
                "all_stores_must_succeed": fuzz.json_values(),
            },
        ).map(fuzz.encode),
        fuzz.bodies(["method", "stores", "all_stores", "all_stores_must_succeed"]),
    ),
)
def test_import_bodies(api: Api, image: dict[str, Any], body: bytes) -> None:
    response = api.post(
        f"/v2/images/{image['id']}/import",
        content=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    fuzz.assert_handled(response)


@pytest.fixture
def locations_api(make_api: Callable[..., Api]) -> Api:
    """The API showing locations, as the 2.17 locations API's users configure it."""
    return make_api(show_multiple_locations=True)


@fuzz.FUZZ
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "url": st.one_of(
                    fuzz.text(),
                    st.sampled_from(
                        [
                            "http://",
                            "http://[::1",
                            "http://x:99999/",
                            "file:///etc/passwd",
                            "swift+config://ref1/c/o",
                            "http://example.invalid/a",
                            "https://user:pw@example.invalid/",
                        ]
                    ),
                    fuzz.json_values(),
                ),
                "validation_data": st.one_of(
                    fuzz.objects(["checksum", "os_hash_algo", "os_hash_value"]),
                    fuzz.json_values(),
                ),
            },
        ).map(fuzz.encode),
        fuzz.bodies(["url", "validation_data"]),
    )
)
def test_location_bodies(locations_api: Api, body: bytes) -> None:
    api = locations_api
    target = api.create_image(disk_format="raw", container_format="bare")
    response = api.post(
        f"/v2/images/{target['id']}/locations",
        content=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    fuzz.assert_handled(response)
    if response.status_code >= 400:
        assert _look(api, target["id"])["status"] == "queued"


IDENTITY_HEADERS = [
    "X-Auth-Token",
    "X-Project-Id",
    "X-Tenant-Id",
    "X-User-Id",
    "X-Roles",
    "X-Service-Roles",
    "X-Identity-Status",
    "X-Openstack-Request-ID",
    "Accept",
    "Content-Type",
]


@fuzz.FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(IDENTITY_HEADERS),
        st.one_of(
            fuzz.url_text(),
            st.sampled_from(["a:b:member", "a:b:", "::", "%ff:%00:admin", "admin,,reader", ","]),
        ).map(str.encode),
        max_size=4,
    ),
    method=st.sampled_from(["GET", "POST"]),
)
def test_identity_and_accept_headers(
    api: Api, image: dict[str, Any], headers: dict[str, bytes], method: str
) -> None:
    """Odd identity, request id, Accept and Content-Type headers on a read and a create."""
    if method == "GET":
        response = api.client.request("GET", f"/v2/images/{image['id']}", headers=headers)
    else:
        response = api.client.request("POST", "/v2/images", content=b"{}", headers=headers)
    if response.status_code < 400:
        _drop(api, response)
        return
    assert response.status_code < 500, response.text
    accept = headers.get("Accept")
    fuzz.assert_error_body(response, "*/*" if accept is None else accept.decode("latin-1"))


@fuzz.fewer(60)
@given(
    body=fuzz.bodies(["status", "member"]),
    member=st.one_of(st.just("projB"), fuzz.url_text()),
    method=st.sampled_from(["PUT", "GET", "DELETE"]),
)
def test_member_updates_by_the_member(api: Api, body: bytes, member: str, method: str) -> None:
    """The member itself changes its status (the path Glance's member API takes most)."""
    shared = _shared_image(api)
    if api.get(f"/v2/images/{shared}/members/projB").status_code == 404:
        assert api.post(f"/v2/images/{shared}/members", json={"member": "projB"}).status_code == 200
    before = api.get(f"/v2/images/{shared}/members/projB").json()
    response = api.as_("projB").request(
        method,
        f"/v2/images/{shared}/members/{_segment(member)}",
        content=body if method == "PUT" else None,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    fuzz.assert_handled(response)
    if response.status_code >= 400 and member == "projB":
        assert api.get(f"/v2/images/{shared}/members/projB").json() == before


@pytest.fixture
def multi(make_multi: Callable[..., MultiStore]) -> MultiStore:
    return make_multi()


@fuzz.fewer(40)
@given(
    body=st.fixed_dictionaries(
        {"method": fuzz.objects(["name", "uri", "glance_image_id", "glance_region"])},
        optional={
            "stores": st.one_of(
                st.lists(st.sampled_from(["fast", "cheap", "web", "nope", ""]), max_size=3),
                fuzz.json_values(),
            ),
            "all_stores": fuzz.json_values(),
            "all_stores_must_succeed": fuzz.json_values(),
        },
    ).map(lambda body: {**body, "method": {"name": "glance-direct", **body["method"]}}),
    store_header=st.one_of(st.none(), st.sampled_from(["fast", "web", "nope", ""])),
)
def test_imports_of_a_staged_image_on_multi_store(
    multi: MultiStore, body: dict[str, Any], store_header: str | None
) -> None:
    """glance-direct (or whatever the name became) with odd stores, on a staged image."""
    image = multi.api.create_image(disk_format="raw", container_format="bare")
    staged = multi.api.put(
        f"/v2/images/{image['id']}/stage",
        content=b"data",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert staged.status_code == 204, staged.text
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if store_header is not None:
        headers["X-Image-Meta-Store"] = store_header
    response = multi.api.post(
        f"/v2/images/{image['id']}/import", content=fuzz.encode(body), headers=headers
    )
    fuzz.assert_handled(response)
    if response.status_code >= 400:
        assert multi.image(image["id"])["status"] == "uploading"
    multi.api.delete(f"/v2/images/{image['id']}")


PROTECTIONS = """\
[^x_open_.*]
create = @
read = @
update = @
delete = @

[^x_secret_.*]
create = admin
read = admin
update = admin
delete = admin

[^x_readonly_.*]
create = admin
read = @
update = !
delete = !

[.*]
create = admin,member
read = admin,member
update = admin,member
delete = admin
"""
PROTECTED_KEYS = ["x_open_a", "x_secret_b", "x_readonly_c", "other", "name", "tags"]


@pytest.fixture
def protected_api(make_api: Callable[..., Api], tmp_path: Any) -> Api:
    """The API with property protections, acting as a member of projA."""
    rules = tmp_path / "protections.conf"
    rules.write_text(PROTECTIONS)
    return make_api(property_protection_file=str(rules)).as_("projA")


@fuzz.fewer(60)
@given(
    ops=st.lists(
        st.fixed_dictionaries(
            {
                "op": st.sampled_from(["add", "replace", "remove"]),
                "path": st.sampled_from([f"/{key}" for key in PROTECTED_KEYS]),
                "value": st.one_of(st.sampled_from(["v", "", "w"]), fuzz.json_values()),
            }
        ),
        min_size=1,
        max_size=3,
    ),
    media=st.sampled_from([PATCH, PATCH_2_0]),
    params=st.lists(st.tuples(st.sampled_from(PROTECTED_KEYS), fuzz.url_text()), max_size=2),
)
def test_protected_properties(
    protected_api: Api, ops: list[Any], media: str, params: list[tuple[str, str]]
) -> None:
    api = protected_api
    found = api.get("/v2/images", params={"name": "protected-fuzz"}).json()["images"]
    image_id = found[0]["id"] if found else api.create_image(name="protected-fuzz")["id"]
    before = _look(api, image_id)
    response = api.patch(
        f"/v2/images/{image_id}", ops, media, headers={"Accept": "application/json"}
    )
    fuzz.assert_handled(response)
    if response.status_code >= 400:
        assert _look(api, image_id) == before
    fuzz.assert_handled(api.get("/v2/images", params=params, headers={"Accept": "text/plain"}))


FORWARDED = st.one_of(
    fuzz.url_text(),
    st.sampled_from(
        [
            "for=1.2.3.4;proto=https;host=cloud",
            'for="[::1]:80";host="a:b:c"',
            "proto=gopher",
            "host=",
            "for=;;;",
            'host="unterminated',
            "host=a, host=b",
            "proto=https;proto=http",
        ]
    ),
)


@pytest.fixture
def proxied_api(make_api: Callable[..., Api]) -> Api:
    return make_api(oslo_middleware__enable_proxy_headers_parsing=True)


@fuzz.FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(
            [
                "Forwarded",
                "X-Forwarded-Proto",
                "X-Forwarded-Host",
                "X-Forwarded-For",
                "X-Forwarded-Prefix",
                "Host",
            ]
        ),
        FORWARDED.map(str.encode),
        max_size=3,
    ),
    path=st.sampled_from(["/", "/versions", "/v2/images", "/v2/images?limit=1"]),
    method=st.sampled_from(["GET", "POST"]),
)
def test_proxy_headers(proxied_api: Api, headers: dict[str, bytes], path: str, method: str) -> None:
    """Forwarded and X-Forwarded-* headers as any client could send them."""
    content = b"{}" if method == "POST" else None
    response = proxied_api.client.request(
        method, path, content=content, headers={"Accept": b"application/json", **headers}
    )
    fuzz.assert_handled(response)
    _drop(proxied_api, response)
