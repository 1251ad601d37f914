"""Glimpse behind a real TLS-terminating proxy (nginx), driven by real clients over https.

nginx serves the API under two path prefixes on one https port, with a self-signed
certificate made here: ``/image/`` passes X-Forwarded-Proto/-Host/-Prefix, ``/rfc/``
passes an RFC 7239 ``Forwarded`` header (and X-Forwarded-Prefix). The server has
``[oslo_middleware] enable_proxy_headers_parsing``. The links clients follow (the
versions document, ``Location``, ``next``) must lead back through the proxy: nginx
passes on a Host name nobody can resolve, so a link built from it would fail.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import databases, nginx, sdk
from tests.support.glance_cli import Glance, runner
from tests.support.server import Server, running

ALICE = "alice:projA:member"
pytestmark = sdk.QUIET

#: Two prefixes: X-Forwarded-* headers under /image/, RFC 7239 Forwarded under /rfc/.
_LOCATIONS = """
        location /image/ {{
            proxy_pass http://127.0.0.1:{api_port}/;
            proxy_set_header Host glimpse-backend.invalid;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host:$server_port;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Prefix /image;
        }}
        location /rfc/ {{
            proxy_pass http://127.0.0.1:{api_port}/;
            proxy_set_header Host glimpse-backend.invalid;
            proxy_set_header Forwarded
                "for=$remote_addr;proto=$scheme;host=\\"$host:$server_port\\"";
            proxy_set_header X-Forwarded-Prefix /rfc;
        }}
"""


class Proxy:
    def __init__(self, port: int, ca: Path, api: Server) -> None:
        self.url = f"https://localhost:{port}"
        self.ca = ca
        self.api = api

    def http(self) -> httpx.Client:
        return httpx.Client(
            verify=ssl.create_default_context(cafile=self.ca), trust_env=False, timeout=30
        )


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    folder = tmp_path_factory.mktemp("nginx")
    url = databases.create_database("sqlite", str(tmp_path_factory.mktemp("db")))
    options = {"oslo_middleware": {"enable_proxy_headers_parsing": "true"}}
    with running(url, tmp_path_factory.mktemp("server"), options) as api:
        ca = nginx.self_signed(folder)
        api_port = api.url.rsplit(":", 1)[1]
        with nginx.tls_proxy(folder, _LOCATIONS.format(api_port=api_port)) as port:
            yield Proxy(port, ca, api)
        databases.drop_database(url)


@pytest.fixture
def glance(proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Glance:
    # requests prefers these variables, when set, to the client's --os-cacert.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, str(proxy.ca))
    return runner(proxy.url + "/image", tmp_path)


def test_versions_document_points_back_through_the_proxy(proxy: Proxy) -> None:
    with proxy.http() as http:
        for prefix in ("/image", "/rfc"):
            response = http.get(proxy.url + prefix + "/")
            assert response.status_code == 300
            hrefs = {
                link["href"] for entry in response.json()["versions"] for link in entry["links"]
            }
            assert hrefs == {f"{proxy.url}{prefix}/v2/"}
            # ... and that link works.
            assert http.get(proxy.url + prefix + "/v2/images").status_code == 200


def test_location_header_leads_to_the_image_through_the_proxy(proxy: Proxy) -> None:
    with proxy.http() as http:
        for prefix in ("/image", "/rfc"):
            created = http.post(
                proxy.url + prefix + "/v2/images",
                json={"name": "located", "disk_format": "raw", "container_format": "bare"},
                headers={"X-Auth-Token": ALICE},
            )
            assert created.status_code == 201, created.text
            image_id = created.json()["id"]
            assert created.headers["Location"] == f"{proxy.url}{prefix}/v2/images/{image_id}"
            followed = http.get(created.headers["Location"], headers={"X-Auth-Token": ALICE})
            assert followed.status_code == 200 and followed.json()["id"] == image_id


def test_requests_through_the_proxy_are_logged_with_their_id(proxy: Proxy) -> None:
    with proxy.http() as http:
        response = http.get(
            proxy.url + "/image/v2/images", headers={"X-Openstack-Request-ID": "req-via-proxy"}
        )
    assert response.status_code == 200
    deadline = time.monotonic() + 10
    while "req-via-proxy" not in proxy.api.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(line for line in proxy.api.log().splitlines() if "req-via-proxy" in line)
    assert '127.0.0.1 "GET /v2/images HTTP/1.1" status: 200' in line


def test_glanceclient_pages_uploads_and_downloads_over_https(
    proxy: Proxy, glance: Glance, tmp_path: Path
) -> None:
    cacert = ["--os-cacert", str(proxy.ca)]
    created = set()
    for name in ("one", "two", "three"):
        result = glance(
            ALICE,
            *cacert,
            "image-create",
            "--name",
            f"paged-{name}",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
        )
        created.add(result.properties()["id"])
    # One image per page: the client follows each 'next' link through the proxy.
    listed = glance(ALICE, *cacert, "image-list", "--page-size", "1")
    assert created <= listed.ids()

    data = tmp_path / "data.raw"
    data.write_bytes(bytes(range(256)) * 4096)
    image_id = sorted(created)[0]
    glance(ALICE, *cacert, "image-upload", "--file", str(data), image_id)
    out = tmp_path / "back.raw"
    glance(ALICE, *cacert, "image-download", "--file", str(out), image_id)
    assert out.read_bytes() == data.read_bytes()


def test_openstacksdk_discovers_and_pages_through_the_proxy(proxy: Proxy) -> None:
    for prefix in ("/image", "/rfc"):
        endpoint = proxy.url + prefix
        conn = sdk.connection(endpoint, "bob:projB:member", cacert=str(proxy.ca))
        ids = set()
        for index in range(3):
            image = conn.image.create_image(
                f"sdk-{prefix}-{index}",
                disk_format="raw",
                container_format="bare",
                allow_duplicates=True,
            )
            ids.add(image.id)
        # limit=1: every further page comes from the 'next' link.
        seen = {image.id for image in conn.image.images(owner="projB", limit=1)}
        assert ids <= seen
        data = bytes(range(256)) * 16
        image = sdk.create_active(conn, f"sdk-{prefix}-data", data)
        assert conn.image.download_image(image.id).content == data
        conn.close()
