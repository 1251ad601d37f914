"""The locations API of Images API 2.17: ``POST`` and ``GET /v2/images/{id}/locations``.

In process, on every database backend: the API queues a ``location_import`` task and
the worker's code runs it here (``Deployment.run_worker``), reading real http
locations from a local web server through the http store.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.testclient import TestClient

from glimpse.http.app import create_app
from glimpse.imports import queue, runner
from glimpse.runtime import Runtime
from tests.store.conftest import WebServer, private_files_handler
from tests.support.client import Api
from tests.support.multistore import MultiStore

DATA = b"location data " * 20_000
SHA256 = hashlib.sha256(DATA).hexdigest()
SHA512 = hashlib.sha512(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()
USER, PASSWORD = "svc", "s3cr3t-pa55"
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    served = tmp_path_factory.mktemp("served")
    (served / "private").mkdir()
    (served / "image.raw").write_bytes(DATA)
    (served / "other.raw").write_bytes(DATA)
    (served / "empty.raw").write_bytes(b"")
    (served / "private" / "secret.raw").write_bytes(DATA)
    server = WebServer(served, handler=private_files_handler(USER, PASSWORD))
    yield server
    server.stop()


class Deployment:
    """An in-process API with its runtime; ``run_worker`` does what a glimpse-worker does."""

    def __init__(self, rt: Runtime, client: TestClient) -> None:
        self.rt = rt
        self.api = Api(client)

    def run_worker(self) -> None:
        while (claim := queue.claim(self.rt, "test-worker")) is not None:
            asyncio.run(runner.run(self.rt, claim))

    def member(self, project: str = "projA") -> Api:
        return self.api.as_(project, roles="member")

    def service(self, project: str = "projA") -> Api:
        """A member of ``project`` whose service token has the service role, as Nova or
        Cinder calls on a user's behalf."""
        return Api(
            self.api.client,
            {
                "X-Project-Id": project,
                "X-User-Id": f"user-of-{project}",
                "X-Roles": "member",
                "X-Service-Roles": "service",
            },
        )

    def new_image(self, project: str = "projA", **body: Any) -> str:
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        return str(self.member(project).create_image(**body)["id"])

    def add(self, who: Api, image_id: str, url: str, **validation: str) -> Any:
        body: dict[str, Any] = {"url": url}
        if validation:
            body["validation_data"] = validation
        return who.post(f"/v2/images/{image_id}/locations", json=body, headers=JSON)

    def image(self, image_id: str) -> dict[str, Any]:
        response = self.api.get(f"/v2/images/{image_id}")
        assert response.status_code == 200, response.text
        image: dict[str, Any] = response.json()
        return image

    def tasks(self, image_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/v2/images/{image_id}/tasks")
        assert response.status_code == 200, response.text
        return list(response.json()["tasks"])


@pytest.fixture
def deploy(
    make_runtime: Callable[..., Runtime], web: WebServer
) -> Iterator[Callable[..., Deployment]]:
    clients: list[TestClient] = []

    def factory(**overrides: Any) -> Deployment:
        options: dict[str, Any] = {
            "show_multiple_locations": True,
            "import_filtering_opts__allowed_hosts": ["127.0.0.1"],
            "import_filtering_opts__allowed_ports": [web.server_address[1]],
            "worker__poll_seconds": 0.05,
            **overrides,
        }
        rt = make_runtime(**options)
        client = TestClient(create_app(rt), raise_server_exceptions=False)
        clients.append(client)
        return Deployment(rt, client)

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def dep(deploy: Callable[..., Deployment]) -> Deployment:
    return deploy()


def message(response: Any) -> str:
    """The explanation of a JSON error body, without Glance's trailing line breaks."""
    return str(response.json()["message"]).split("<br />")[0]


# --- adding a location -------------------------------------------------------------------


def test_a_member_adds_a_location_with_validation_data(dep: Deployment, web: WebServer) -> None:
    image_id = dep.new_image()
    response = dep.add(
        dep.member(), image_id, web.url("image.raw"), os_hash_algo="sha256", os_hash_value=SHA256
    )
    assert response.status_code == 202, response.text
    assert response.content == b""
    # Nothing happened yet but the task and its lock on the image.
    image = dep.image(image_id)
    assert image["status"] == "queued" and image["locations"] == []
    [task] = dep.tasks(image_id)
    assert task["type"] == "location_import" and task["status"] == "pending"
    assert task["input"] == {
        "image_id": image_id,
        "loc_url": web.url("image.raw"),
        "validation_data": {"os_hash_algo": "sha256", "os_hash_value": SHA256},
    }
    assert image["os_glance_import_task"] == task["id"]

    dep.run_worker()
    image = dep.image(image_id)
    assert image["status"] == "active"
    assert image["size"] == len(DATA)
    assert image["checksum"] == MD5
    assert image["os_hash_algo"] == "sha256"  # the algorithm of the validation data
    assert image["os_hash_value"] == SHA256
    assert image["locations"] == [{"url": web.url("image.raw"), "metadata": {}}]
    assert "os_glance_import_task" not in image
    [task] = dep.tasks(image_id)
    assert task["status"] == "success"
    assert task["result"] == {"image_id": image_id}
    assert task["user_id"] == "user-of-projA"
    assert dep.member().get(f"/v2/images/{image_id}/file").content == DATA


def test_without_validation_data_the_configured_hash_is_computed(
    dep: Deployment, web: WebServer
) -> None:
    image_id = dep.new_image()
    assert dep.add(dep.member(), image_id, web.url("image.raw")).status_code == 202
    dep.run_worker()
    image = dep.image(image_id)
    assert (image["status"], image["checksum"]) == ("active", MD5)
    assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha512", SHA512)
    assert dep.tasks(image_id)[0]["status"] == "success"


def test_a_wrong_hash_fails_the_task_and_leaves_the_image_queued(
    dep: Deployment, web: WebServer
) -> None:
    image_id = dep.new_image()
    wrong = "beefdead" * 16
    response = dep.add(
        dep.member(), image_id, web.url("image.raw"), os_hash_algo="sha512", os_hash_value=wrong
    )
    assert response.status_code == 202
    dep.run_worker()
    [task] = dep.tasks(image_id)
    assert task["status"] == "failure"
    assert task["message"] == (
        f"os_hash_value: ({wrong}) not matched with actual os_hash_value: ({SHA512})"
    )
    image = dep.image(image_id)
    assert image["status"] == "queued"
    assert image["size"] is None and image["checksum"] is None
    assert image["os_hash_algo"] is None and image["os_hash_value"] is None
    assert image["locations"] == []
    assert "os_glance_import_task" not in image
    # The lock is gone: the right hash can be given now.
    again = dep.add(
        dep.member(), image_id, web.url("image.raw"), os_hash_algo="sha512", os_hash_value=SHA512
    )
    assert again.status_code == 202, again.text
    dep.run_worker()
    assert dep.image(image_id)["status"] == "active"
    assert sorted(t["status"] for t in dep.tasks(image_id)) == ["failure", "success"]


def test_without_do_secure_hash_the_given_hash_is_recorded_unread(
    deploy: Callable[..., Deployment], web: WebServer
) -> None:
    dep = deploy(do_secure_hash=False)
    checked = dep.new_image()
    wrong = "beefdead" * 16
    response = dep.add(
        dep.member(), checked, web.url("image.raw"), os_hash_algo="sha512", os_hash_value=wrong
    )
    assert response.status_code == 202
    plain = dep.new_image()
    assert dep.add(dep.member(), plain, web.url("other.raw")).status_code == 202
    dep.run_worker()
    image = dep.image(checked)
    assert image["status"] == "active" and image["size"] == len(DATA)
    assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha512", wrong)
    assert image["checksum"] is None
    image = dep.image(plain)
    assert image["status"] == "active"
    assert (image["checksum"], image["os_hash_algo"], image["os_hash_value"]) == (None,) * 3
    assert [dep.tasks(i)[0]["status"] for i in (checked, plain)] == ["success", "success"]


def test_a_location_that_cannot_be_read_fails_the_task(dep: Deployment, web: WebServer) -> None:
    for name in ("missing.raw", "empty.raw"):
        image_id = dep.new_image()
        assert dep.add(dep.member(), image_id, web.url(name)).status_code == 202
        dep.run_worker()
        [task] = dep.tasks(image_id)
        assert task["status"] == "failure", name
        assert task["message"].startswith("Invalid location"), task["message"]
        image = dep.image(image_id)
        assert (image["status"], image["locations"]) == ("queued", []), name


def test_the_location_quota_applies(deploy: Callable[..., Deployment], web: WebServer) -> None:
    dep = deploy(image_location_quota=0)
    image_id = dep.new_image()
    assert dep.add(dep.member(), image_id, web.url("image.raw")).status_code == 202
    dep.run_worker()
    [task] = dep.tasks(image_id)
    assert task["status"] == "failure"
    assert "number of allowed image locations" in task["message"]
    assert dep.image(image_id)["status"] == "queued"


def test_an_image_changed_meanwhile_fails_the_task(dep: Deployment, web: WebServer) -> None:
    image_id = dep.new_image()
    assert dep.add(dep.member(), image_id, web.url("image.raw")).status_code == 202
    upload = dep.member().put(
        f"/v2/images/{image_id}/file",
        content=b"uploaded",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 204
    dep.run_worker()
    [task] = dep.tasks(image_id)
    assert task["status"] == "failure"
    assert task["message"] == "It's not allowed to add locations if image status is active."
    image = dep.image(image_id)
    assert image["status"] == "active" and image["size"] == len(b"uploaded")
    assert [loc["url"] for loc in image["locations"]] != [web.url("image.raw")]


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "'url' is a required property"),
        ({"url": 5}, "5 is not of type 'string'"),
        ({"url": ""}, "should be non-empty"),
        ({"url": "http://x/", "validation_data": None}, "None is not of type 'object'"),
        ({"url": "http://x/", "validation_data": {"checksum": "x"}}, "Additional properties"),
        (
            {"url": "http://x/", "validation_data": {"os_hash_value": "ab"}},
            "'os_hash_algo' is a dependency of 'os_hash_value'",
        ),
        (
            {"url": "http://x/", "validation_data": {"os_hash_algo": "sha512"}},
            "'os_hash_value' is a dependency of 'os_hash_algo'",
        ),
        (
            {
                "url": "http://x/",
                "validation_data": {"os_hash_algo": "sha123", "os_hash_value": "a"},
            },
            "'sha123' is not one of ['sha1', 'sha256', 'sha512', 'md5']",
        ),
        ([], "[] is not of type 'object'"),
    ],
)
def test_malformed_bodies_are_400(dep: Deployment, body: Any, expected: str) -> None:
    image_id = dep.new_image()
    response = dep.member().post(f"/v2/images/{image_id}/locations", json=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert message(response).startswith("Provided object does not match schema 'location'")
    assert expected in message(response)


def test_bodies_that_are_not_json_are_400(dep: Deployment) -> None:
    image_id = dep.new_image()
    path = f"/v2/images/{image_id}/locations"
    response = dep.member().post(path, content=b"", headers=JSON)
    assert (response.status_code, message(response)) == (400, "Body expected in request.")
    response = dep.member().post(path, content=b"{url", headers=JSON)
    assert (response.status_code, message(response)) == (400, "Malformed JSON in request body.")


@pytest.mark.parametrize("url", ["A://[", "http://[::1/image.raw", "swift://a:b@[x/c/o"])
def test_urls_that_cannot_be_parsed_are_400(dep: Deployment, url: str) -> None:
    image_id = dep.new_image()
    before = dep.image(image_id)
    for who in (dep.member(), dep.service()):
        response = who.post(f"/v2/images/{image_id}/locations", json={"url": url}, headers=JSON)
        assert response.status_code == 400, response.text
        assert message(response) == "Location cannot be parsed as a URL (Invalid IPv6 URL)."
    assert dep.image(image_id) == before
    assert dep.tasks(image_id) == []


def test_hash_values_are_checked_against_their_algorithm(dep: Deployment, web: WebServer) -> None:
    image_id = dep.new_image()
    url = web.url("image.raw")
    short = "dbc9e0f80d131e64b94913a7b40bb5"
    response = dep.add(dep.member(), image_id, url, os_hash_algo="sha512", os_hash_value=short)
    assert response.status_code == 400
    assert message(response) == (
        f"os_hash_value: ({short}) is not the correct size for (sha512) (should be (64) bytes)"
    )
    response = dep.add(dep.member(), image_id, url, os_hash_algo="sha512", os_hash_value=SHA256)
    assert response.status_code == 400
    response = dep.add(dep.member(), image_id, url, os_hash_algo="md5", os_hash_value="xyz")
    assert response.status_code == 400
    assert message(response) == "os_hash_value (xyz) is not a valid hexadecimal value"
    assert dep.tasks(image_id) == []


def test_missing_or_invisible_images_are_404(dep: Deployment, web: WebServer) -> None:
    image_id = dep.new_image(visibility="private")
    for who, target in (
        (dep.member(), "0b8e0a54-4e48-4a4c-9d8c-9b34c1e3cb71"),
        (dep.member("projB"), image_id),
    ):
        response = dep.add(who, target, web.url("image.raw"))
        assert response.status_code == 404, response.text
        assert who.get(f"/v2/images/{target}/locations").status_code == 404
    assert dep.tasks(image_id) == []


def test_only_queued_images_take_locations(dep: Deployment, web: WebServer) -> None:
    image_id = dep.new_image()
    dep.member().put(
        f"/v2/images/{image_id}/file",
        content=b"data",
        headers={"Content-Type": "application/octet-stream"},
    )
    response = dep.add(dep.service(), image_id, web.url("image.raw"))
    assert response.status_code == 409
    assert message(response) == "It's not allowed to add locations if image status is active."


def test_who_may_add_locations(dep: Deployment, web: WebServer) -> None:
    image_id = dep.new_image()
    url = web.url("image.raw")
    response = dep.add(dep.api.as_("projA", roles="reader"), image_id, url)
    assert response.status_code == 403, response.text
    assert "add_image_location" in message(response)
    # Only callers with the service role add locations that are not http(s).
    response = dep.add(dep.member(), image_id, "swift+https://u:k@swift.example.com/c/o")
    assert response.status_code == 403
    assert message(response) == "http store must be enabled to use location API by normal user."
    assert dep.tasks(image_id) == []
    # Another project's member may see a public image, but not add to it; a caller with
    # the service role (or an administrator) may.
    public = dep.api.create_image(
        owner="projA", visibility="public", disk_format="raw", container_format="bare"
    )["id"]
    response = dep.add(dep.member("projB"), public, url)
    assert response.status_code == 403
    assert "add_image_location" in message(response)
    assert dep.add(dep.api.as_("services", roles="service"), public, url).status_code == 202
    other = dep.api.create_image(
        owner="projA", visibility="public", disk_format="raw", container_format="bare"
    )["id"]
    assert dep.add(dep.api.as_("ops", roles="admin"), other, url).status_code == 202
    # Without seeing the image, the service role gets 404 like anyone else.
    assert dep.add(dep.api.as_("services", roles="service"), image_id, url).status_code == 404


def test_users_need_the_http_store(deploy: Callable[..., Deployment], web: WebServer) -> None:
    dep = deploy(glance_store__stores=["file"])
    image_id = dep.new_image()
    response = dep.add(dep.member(), image_id, web.url("image.raw"))
    assert response.status_code == 403
    assert message(response) == "http store must be enabled to use location API by normal user."
    # A service may name any store's location, but not one no store reads.
    response = dep.add(dep.service(), image_id, web.url("image.raw"))
    assert response.status_code == 400
    assert message(response) == "Invalid location: no store may read http:// locations."


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "filesystem:///etc/passwd", "swift+config://ref1/c/o", "ftp://x/"]
)
def test_restricted_or_unknown_schemes_are_400_for_services(dep: Deployment, url: str) -> None:
    image_id = dep.new_image()
    response = dep.add(dep.service(), image_id, url)
    assert response.status_code == 400
    assert message(response).startswith("Invalid location: no store may read")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/image.raw", "the host 'example.com' is not allowed"),
        ("http://127.0.0.1:1/image.raw", "the port 1 is not allowed"),
    ],
)
def test_import_filtering_applies_to_http_locations(dep: Deployment, url: str, reason: str) -> None:
    image_id = dep.new_image()
    response = dep.add(dep.service(), image_id, url)
    assert response.status_code == 400
    assert message(response).startswith(f"URI for add location does not pass filtering: {url}")
    assert reason in message(response)


def test_private_addresses_are_refused_without_an_allowed_host(
    deploy: Callable[..., Deployment],
) -> None:
    dep = deploy(import_filtering_opts__allowed_hosts=[], import_filtering_opts__allowed_ports=[])
    image_id = dep.new_image()
    for url in ("http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/x"):
        response = dep.add(dep.member(), image_id, url)
        assert response.status_code == 400, url
        assert "does not pass filtering" in message(response)


def test_host_names_are_resolved_and_checked_by_the_worker(
    deploy: Callable[..., Deployment], web: WebServer
) -> None:
    # "localhost" passes the API's static filter; what it resolves to is loopback.
    dep = deploy(import_filtering_opts__allowed_hosts=[])
    image_id = dep.new_image()
    url = f"http://localhost:{web.server_address[1]}/image.raw"
    assert dep.add(dep.member(), image_id, url).status_code == 202
    dep.run_worker()
    [task] = dep.tasks(image_id)
    assert task["status"] == "failure"
    assert task["message"].startswith(f"URI for add location does not pass filtering: {url}")
    assert "not publicly routable" in task["message"]
    assert dep.image(image_id)["status"] == "queued"


def test_one_operation_at_a_time(dep: Deployment, web: WebServer) -> None:
    image_id = dep.new_image()
    assert dep.add(dep.member(), image_id, web.url("image.raw")).status_code == 202
    response = dep.add(dep.member(), image_id, web.url("other.raw"))
    assert response.status_code == 409
    assert "prior operation is still in progress" in message(response)
    # An import waits for the location too.
    response = dep.member().post(
        f"/v2/images/{image_id}/import",
        json={"method": {"name": "web-download", "uri": web.url("other.raw")}},
    )
    assert response.status_code == 409
    dep.run_worker()
    assert dep.image(image_id)["status"] == "active"


# --- listing locations -------------------------------------------------------------------


def test_only_services_list_locations(dep: Deployment, web: WebServer) -> None:
    image_id = dep.new_image()
    assert dep.add(dep.member(), image_id, web.url("image.raw")).status_code == 202
    dep.run_worker()
    path = f"/v2/images/{image_id}/locations"
    # fetch_image_location asks for the service role in the caller's own token.
    for who in (dep.member(), dep.api.as_("projA", roles="reader"), dep.service()):
        response = who.get(path, headers=JSON)
        assert response.status_code == 403
        assert "fetch_image_location" in message(response)
    expected = [{"url": web.url("image.raw"), "metadata": {}}]
    for who in (dep.api.as_("projA", roles="service"), dep.api.as_("ops", roles="admin"), dep.api):
        response = who.get(path)
        assert response.status_code == 200, response.text
        assert response.json() == expected
    assert dep.api.as_("services", roles="service").get(path).status_code == 404
    queued = dep.new_image()
    assert dep.api.get(f"/v2/images/{queued}/locations").json() == []


def test_credentials_never_leave(dep: Deployment, web: WebServer) -> None:
    secret_url = web.url("private/secret.raw").replace("http://", f"http://{USER}:{PASSWORD}@")
    public_url = web.url("private/secret.raw")
    image_id = dep.new_image()
    response = dep.add(dep.service(), image_id, secret_url, os_hash_algo="md5", os_hash_value=MD5)
    assert response.status_code == 202
    dep.run_worker()
    image = dep.image(image_id)
    assert image["status"] == "active" and image["os_hash_value"] == MD5
    shown = [
        dep.api.get(f"/v2/images/{image_id}").text,
        dep.api.get(f"/v2/images/{image_id}/tasks").text,
        dep.api.get("/v2/tasks").text,
        dep.api.get(f"/v2/tasks/{dep.tasks(image_id)[0]['id']}").text,
        dep.api.get(f"/v2/images/{image_id}/locations").text,
    ]
    for text in shown:
        assert PASSWORD not in text
    assert json.loads(shown[-1]) == [{"url": public_url, "metadata": {}}]
    assert dep.tasks(image_id)[0]["input"]["loc_url"] == public_url

    # A wrong password: the task says why, without the password.
    wrong = secret_url.replace(PASSWORD, "not-the-" + PASSWORD)
    image_id = dep.new_image()
    assert dep.add(dep.service(), image_id, wrong).status_code == 202
    dep.run_worker()
    [task] = dep.tasks(image_id)
    assert task["status"] == "failure"
    assert "401" in task["message"] and PASSWORD not in task["message"]


def test_multi_store_locations_name_their_store(
    make_multi: Callable[..., MultiStore], web: WebServer
) -> None:
    port = web.server_address[1]
    multi = make_multi(
        {"import_filtering_opts": {"allowed_hosts": "127.0.0.1", "allowed_ports": port}}
    )
    image_id = multi.new_image()
    service = multi.api.as_("services", roles="service")
    response = service.post(f"/v2/images/{image_id}/locations", json={"url": web.url("image.raw")})
    assert response.status_code == 202, response.text
    multi.run_worker()
    image = multi.image(image_id)
    assert image["status"] == "active" and image["stores"] == "web"
    listed = multi.api.get(f"/v2/images/{image_id}/locations").json()
    assert listed == [{"url": web.url("image.raw"), "metadata": {"store": "web"}}]


# --- retries and cancelling --------------------------------------------------------------


class _Flaky(ThreadingHTTPServer):
    """Answers HEAD with the size of ``data``; GET with 503 ``failures`` times, then
    ``data``, sent in 64 KiB pieces ``delay`` seconds apart."""

    daemon_threads = True

    def __init__(self, failures: int, delay: float = 0.0, data: bytes = DATA) -> None:
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        self.failures = failures
        self.delay = delay
        self.data = data
        self.gets = 0
        self.heads = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/image.raw"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _FlakyHandler(BaseHTTPRequestHandler):
    server: _Flaky

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.server.heads += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.data)))
        self.end_headers()

    def do_GET(self) -> None:
        self.server.gets += 1
        if self.server.gets <= self.server.failures:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = self.server.data
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            for start in range(0, len(data), 65536):
                self.wfile.write(data[start : start + 65536])
                time.sleep(self.server.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def flaky() -> Iterator[Callable[..., _Flaky]]:
    servers: list[_Flaky] = []

    def factory(failures: int, delay: float = 0.0, data: bytes = DATA) -> _Flaky:
        servers.append(_Flaky(failures, delay, data))
        return servers[-1]

    yield factory
    for server in servers:
        server.stop()


def _filtered_for(server: _Flaky) -> dict[str, Any]:
    return {
        "import_filtering_opts__allowed_hosts": ["127.0.0.1"],
        "import_filtering_opts__allowed_ports": [server.server_address[1]],
    }


def test_reads_are_retried_http_retries_times(
    deploy: Callable[..., Deployment], flaky: Callable[..., _Flaky]
) -> None:
    server = flaky(failures=1)
    dep = deploy(http_retries=2, **_filtered_for(server))
    image_id = dep.new_image()
    response = dep.add(dep.member(), image_id, server.url(), os_hash_algo="md5", os_hash_value=MD5)
    assert response.status_code == 202
    dep.run_worker()
    assert server.gets == 2
    assert dep.image(image_id)["status"] == "active"


def test_unreadable_data_with_validation_data_fails_and_reverts(
    deploy: Callable[..., Deployment], flaky: Callable[..., _Flaky]
) -> None:
    server = flaky(failures=10)
    dep = deploy(http_retries=2, **_filtered_for(server))
    image_id = dep.new_image()
    response = dep.add(dep.member(), image_id, server.url(), os_hash_algo="md5", os_hash_value=MD5)
    assert response.status_code == 202
    dep.run_worker()
    assert server.gets == 2
    [task] = dep.tasks(image_id)
    assert task["status"] == "failure"
    assert task["message"].startswith(f"Hash calculation failed for image {image_id} data")
    assert "503" in task["message"]
    image = dep.image(image_id)
    assert (image["status"], image["locations"], image["os_hash_algo"]) == ("queued", [], None)


def test_unreadable_data_without_validation_data_leaves_the_image_active(
    deploy: Callable[..., Deployment], flaky: Callable[..., _Flaky]
) -> None:
    # As in Glance: the image is active as soon as the location is attached.
    server = flaky(failures=10)
    dep = deploy(http_retries=1, **_filtered_for(server))
    image_id = dep.new_image()
    assert dep.add(dep.member(), image_id, server.url()).status_code == 202
    dep.run_worker()
    [task] = dep.tasks(image_id)
    assert task["status"] == "success"
    assert "has no checksum or hash" in task["message"]
    image = dep.image(image_id)
    assert image["status"] == "active" and image["size"] == len(DATA)
    assert (image["checksum"], image["os_hash_algo"], image["os_hash_value"]) == (None,) * 3
    assert "os_glance_import_task" not in image


def test_deleting_the_image_cancels_the_hashing(
    deploy: Callable[..., Deployment], flaky: Callable[..., _Flaky]
) -> None:
    # 40 pieces a quarter of a second apart: reading all of it would take 10 s.
    server = flaky(failures=0, delay=0.25, data=b"x" * (40 * 65536))
    dep = deploy(**_filtered_for(server))
    image_id = dep.new_image()
    assert dep.add(dep.member(), image_id, server.url()).status_code == 202
    worker = threading.Thread(target=dep.run_worker)
    worker.start()
    deadline = time.monotonic() + 10
    while dep.image(image_id)["status"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert dep.image(image_id)["os_hash_algo"] == "sha512"  # hashing under way
    deleted = time.monotonic()
    assert dep.member().delete(f"/v2/images/{image_id}").status_code == 204
    [task] = dep.api.get("/v2/tasks").json()["tasks"]
    while (shown := dep.api.get(f"/v2/tasks/{task['id']}").json())["status"] == "processing":
        assert time.monotonic() - deleted < 3, "the worker read on after the delete"
        time.sleep(0.05)
    assert shown["status"] == "failure"
    assert shown["message"] == (
        f"Hash calculation for image {image_id} has been canceled: the image was deleted."
    )
    # The read in flight returns at the latest when the source ends.
    worker.join(timeout=15)
    assert not worker.is_alive()
    assert dep.api.get(f"/v2/images/{image_id}").status_code == 404


def test_a_task_for_a_deleted_image_ends_without_reading(
    flaky: Callable[..., _Flaky], deploy: Callable[..., Deployment]
) -> None:
    server = flaky(failures=0)
    dep = deploy(**_filtered_for(server))
    image_id = dep.new_image()
    assert dep.add(dep.member(), image_id, server.url()).status_code == 202
    assert dep.member().delete(f"/v2/images/{image_id}").status_code == 204
    dep.run_worker()
    assert server.gets == server.heads == 0
    [task] = dep.api.get("/v2/tasks").json()["tasks"]
    assert dep.api.get(f"/v2/tasks/{task['id']}").json()["status"] == "failure"


# --- usage (Images API 2.13) -------------------------------------------------------------


def test_usage_is_empty_without_keystone_limits(dep: Deployment, web: WebServer) -> None:
    # Glance reports Keystone's unified limits only (use_keystone_limits); without them
    # its answer is empty, whatever the static quotas.
    for who in (dep.member(), dep.api.as_("projA", roles="reader"), dep.api):
        response = who.get("/v2/info/usage")
        assert response.status_code == 200
        assert response.json() == {"usage": {}}


def test_schema_of_tasks_lists_location_import(dep: Deployment) -> None:
    schema = dep.api.get("/v2/schemas/task").json()
    assert schema["properties"]["type"]["enum"] == ["import", "api_image_import", "location_import"]
