"""List options written as in Glance's own glance-api.conf: ``[a,b]``, items quoted or not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from glimpse import config
from glimpse.http.app import create_app
from glimpse.runtime import Runtime
from tests.support import databases
from tests.support.client import Api


@pytest.fixture
def api_from_file(database_url: str, tmp_path: Path) -> Iterator[Callable[[str], Api]]:
    """An in-process API configured by a glance-api.conf body (plus its database)."""
    databases.empty_tables(database_url)
    built: list[tuple[Runtime, TestClient]] = []

    def factory(text: str) -> Api:
        path = tmp_path / f"glance-api-{len(built)}.conf"
        path.write_text(
            text.replace("[DEFAULT]", f"[DEFAULT]\ndata_dir = {tmp_path / 'data'}")
            + f"\n[database]\nconnection = {database_url.replace('$', '$$')}\n"
        )
        rt = Runtime.build(config.new_conf(["--config-file", str(path)]))
        client = TestClient(create_app(rt), raise_server_exceptions=False)
        built.append((rt, client))
        return Api(client)

    yield factory
    for rt, client in built:
        client.close()
        rt.close()


GLANCE_STYLE = """
[DEFAULT]
enabled_import_methods = ['web-download', 'glance-direct']

[import_filtering_opts]
allowed_schemes = [http]
allowed_hosts = ["127.0.0.1"]
allowed_ports = [8765, 8766]
"""


def _web_download(api: Api, uri: str) -> int:
    image = api.create_image(name="web", disk_format="raw", container_format="bare")
    body = {"method": {"name": "web-download", "uri": uri}}
    return api.post(f"/v2/images/{image['id']}/import", json=body).status_code


def test_bracketed_lists_of_a_glance_conf_are_read_as_glance_reads_them(
    api_from_file: Callable[[str], Api],
) -> None:
    api = api_from_file(GLANCE_STYLE)
    methods = api.get("/v2/info/import").json()["import-methods"]["value"]
    assert methods == ["web-download", "glance-direct"]
    assert _web_download(api, "http://127.0.0.1:8765/image.raw") == 202
    assert _web_download(api, "http://127.0.0.1:8766/image.raw") == 202
    assert _web_download(api, "http://127.0.0.1:8767/image.raw") == 400  # port not listed
    assert _web_download(api, "http://localhost:8765/image.raw") == 400  # host not listed
    assert _web_download(api, "https://127.0.0.1:8765/image.raw") == 400  # scheme not listed


def test_plain_lists_and_empty_brackets_still_work(api_from_file: Callable[[str], Api]) -> None:
    api = api_from_file(
        "[DEFAULT]\nenabled_import_methods = glance-direct\n"
        "[import_filtering_opts]\nallowed_hosts = 127.0.0.1\nallowed_ports = []\n"
        "disallowed_ports = 8767\n"
    )
    assert api.get("/v2/info/import").json()["import-methods"]["value"] == ["glance-direct"]
    image = api.create_image(name="web", disk_format="raw", container_format="bare")
    body = {"method": {"name": "web-download", "uri": "http://127.0.0.1:8765/x"}}
    # web-download is not enabled here
    assert api.post(f"/v2/images/{image['id']}/import", json=body).status_code == 400
    with_web = api_from_file(
        "[DEFAULT]\nenabled_import_methods = web-download\n"
        "[import_filtering_opts]\nallowed_hosts = 127.0.0.1\nallowed_ports = []\n"
        "disallowed_ports = 8767\n"
    )
    # an empty allow list defers to the deny list
    assert _web_download(with_web, "http://127.0.0.1:8765/x") == 202
    assert _web_download(with_web, "http://127.0.0.1:8767/x") == 400
