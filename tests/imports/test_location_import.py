"""The locations API of Images API 2.17 end to end: a real glimpse-api with its embedded
glimpse-worker, python-glanceclient's ``glance add-location``, openstacksdk's
``add_image_location``/``image_locations``, and a local HTTP server holding the data."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import databases, sdk
from tests.support.glance_cli import runner
from tests.support.imports import Source, wait_for_status, worker
from tests.support.polling import wait_for
from tests.support.server import Server, running

ALICE = {"X-Project-Id": "projA", "X-User-Id": "alice", "X-Roles": "member"}
ADMIN = {"X-Project-Id": "ops", "X-User-Id": "root", "X-Roles": "admin"}
SECRET = "pa55-w0rd-never-logged"

pytestmark = sdk.QUIET


@pytest.fixture(scope="module")
def api_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, source: Source
) -> Iterator[Server]:
    options: dict[str, dict[str, object]] = {
        "import_filtering_opts": source.allowed(),
        "worker": worker(1),
    }
    with running(database_url, tmp_path_factory.mktemp("locations"), options) as server:
        yield server


@pytest.fixture
def api(api_server: Server, database_url: str) -> Iterator[httpx.Client]:
    databases.empty_tables(database_url)
    with httpx.Client(
        base_url=api_server.url, headers=ALICE, timeout=30, trust_env=False
    ) as client:
        yield client


def _new_image(api: httpx.Client) -> str:
    response = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _task(api: httpx.Client, task_id: str) -> dict[str, Any]:
    response = api.get(f"/v2/tasks/{task_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


def test_the_versions_document_offers_2_17(api: httpx.Client) -> None:
    versions = api.get("/versions").json()["versions"]
    assert versions[0] == {
        "id": "v2.17",
        "status": "CURRENT",
        "links": [{"rel": "self", "href": str(api.base_url).rstrip("/") + "/v2/"}],
    }


def test_glance_add_location(
    api: httpx.Client, api_server: Server, source: Source, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    source.files["/cli.raw"] = data
    image_id = _new_image(api)
    glance = runner(api_server.url, tmp_path)
    validation = {"os_hash_algo": "sha256", "os_hash_value": hashlib.sha256(data).hexdigest()}
    result = glance(
        "alice:projA:member",
        "add-location",
        "--url",
        source.url("/cli.raw"),
        "--validation-data",
        json.dumps(validation),
        image_id,
    )
    assert result.properties()["id"] == image_id
    image = wait_for_status(api, image_id, ("active",), timeout=30)
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert (image["os_hash_algo"], image["os_hash_value"]) == (
        "sha256",
        validation["os_hash_value"],
    )
    assert api.get(f"/v2/images/{image_id}/file").content == data
    # glanceclient checks the validation data before sending it.
    refused = glance(
        "alice:projA:member",
        "add-location",
        "--url",
        source.url("/cli.raw"),
        "--validation-data",
        '{"os_hash_algo": "sha3", "os_hash_value": "00"}',
        image_id,
        expect=None,
    )
    assert refused.code != 0 and "os_hash_algo" in refused.err + refused.out


def test_openstacksdk_adds_and_lists_locations(
    api: httpx.Client, api_server: Server, source: Source
) -> None:
    data = os.urandom(1024 * 1024)
    source.files["/sdk.raw"] = data
    image_id = _new_image(api)
    member = sdk.connection(api_server.url, "alice:projA:member")
    member.image.add_image_location(
        image_id,
        url=source.url("/sdk.raw"),
        validation_data={
            "os_hash_algo": "sha512",
            "os_hash_value": hashlib.sha512(data).hexdigest(),
        },
    )
    image = wait_for_status(api, image_id, ("active",), timeout=30)
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    # Listing locations is for services.
    service = sdk.connection(api_server.url, "nova:projA:service")
    listed = list(service.image.image_locations(image_id))
    assert [(loc.url, loc.metadata) for loc in listed] == [(source.url("/sdk.raw"), {})]
    with pytest.raises(Exception, match="fetch_image_location"):
        list(member.image.image_locations(image_id))


def test_a_wrong_hash_fails_and_the_image_stays_queued(api: httpx.Client, source: Source) -> None:
    source.files["/wrong.raw"] = os.urandom(200_000)
    image_id = _new_image(api)
    response = api.post(
        f"/v2/images/{image_id}/locations",
        json={
            "url": source.url("/wrong.raw"),
            "validation_data": {"os_hash_algo": "sha512", "os_hash_value": "00" * 64},
        },
    )
    assert response.status_code == 202, response.text
    tasks = wait_for(
        lambda: [
            t
            for t in api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
            if t["status"] in ("success", "failure")
        ],
        "the location import to end",
        timeout=30,
    )
    assert tasks[0]["status"] == "failure"
    assert tasks[0]["type"] == "location_import"
    assert "not matched with actual os_hash_value" in tasks[0]["message"]
    image = api.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["os_hash_value"], image["checksum"]) == ("queued", None, None)


def test_deleting_the_image_cancels_its_hashing_in_the_worker(
    api: httpx.Client, api_server: Server, source: Source
) -> None:
    # About 12 s to serve it all: 64 KiB pieces 0.1 s apart.
    source.files["/slow.raw"] = os.urandom(120 * 64 * 1024)
    source.delay = 0.1
    try:
        image_id = _new_image(api)
        # Credentials in the URL (the source ignores them) must never be logged.
        url = source.url("/slow.raw").replace("http://", f"http://svc:{SECRET}@")
        response = api.post(f"/v2/images/{image_id}/locations", json={"url": url})
        assert response.status_code == 202, response.text
        wait_for_status(api, image_id, ("active",), timeout=30)
        [task] = api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        assert task["input"]["loc_url"] == source.url("/slow.raw")
        assert api.delete(f"/v2/images/{image_id}").status_code == 204
        finished = wait_for(
            lambda: (t := _task(api, task["id"]))["status"] != "processing" and t,
            "the hashing to stop",
            timeout=5,
        )
    finally:
        source.delay = 0.0
    assert finished["status"] == "failure"
    assert finished["message"] == (
        f"Hash calculation for image {image_id} has been canceled: the image was deleted."
    )
    log = api_server.log()
    assert SECRET not in log
    assert f"Running task {task['id']}" in log
