"""Notifications: Glance's events and payloads, in process (log driver) and through a real
RabbitMQ (messagingv2), and requests that stay fast when the broker is unreachable."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import amqp.exceptions
import pytest

from glimpse import config
from glimpse.cmd.api import prepare
from glimpse.imports import queue, runner
from glimpse.notifications.notifier import NotificationConfigError, Notifier
from glimpse.runtime import Runtime
from tests.support.client import Api

OCTETS = {"Content-Type": "application/octet-stream"}
DATA = bytes(range(256)) * 8  # 2048 bytes
IMAGE_KEYS = set(
    "id name status created_at updated_at min_disk min_ram protected checksum owner disk_format "
    "container_format size virtual_size is_public visibility properties tags deleted "
    "deleted_at".split()
)
MEMBER_KEYS = set("image_id member_id status created_at updated_at deleted deleted_at".split())
TASK_KEYS = set(
    "id type status result owner message expires_at created_at updated_at deleted "
    "deleted_at".split()
)
ENVELOPE_KEYS = {"message_id", "publisher_id", "event_type", "priority", "payload", "timestamp"}
RABBIT = ("127.0.0.1", 5672)
RABBIT_URL = "rabbit://guest:guest@127.0.0.1:5672/"


def runtime_of(api: Api) -> Runtime:
    rt: Runtime = api.client.app.rt  # type: ignore[attr-defined]
    return rt


class LogEvents:
    """The notifications the ``log`` driver wrote, read back from the captured log."""

    def __init__(self, caplog: pytest.LogCaptureFixture, rt: Runtime) -> None:
        self.caplog = caplog
        self.rt = rt

    def all(self) -> list[dict[str, Any]]:
        assert self.rt.notifier.flush(10), "notifications were not sent in time"
        return [
            json.loads(record.getMessage())
            for record in self.caplog.records
            if record.name.startswith("oslo.messaging.notification.")
        ]

    def types(self) -> list[str]:
        return [event["event_type"] for event in self.all()]

    def take(self) -> list[dict[str, Any]]:
        """The events so far, forgetting them."""
        events = self.all()
        self.caplog.clear()
        return events


@pytest.fixture
def logged(
    make_api: Callable[..., Api], caplog: pytest.LogCaptureFixture
) -> Callable[..., tuple[Api, LogEvents]]:
    caplog.set_level(logging.INFO, logger="oslo.messaging.notification")

    def factory(**overrides: Any) -> tuple[Api, LogEvents]:
        api = make_api(
            oslo_messaging_notifications__driver=["log"],
            default_publisher_id="image.testhost",
            **overrides,
        )
        return api, LogEvents(caplog, runtime_of(api))

    return factory


def new_image(api: Api, **body: Any) -> str:
    body = {"name": "cirros", "disk_format": "raw", "container_format": "bare", **body}
    image_id: str = api.create_image(**body)["id"]
    return image_id


def upload(api: Api, image_id: str, headers: dict[str, str] | None = None) -> Any:
    return api.put(
        f"/v2/images/{image_id}/file", content=DATA, headers={**OCTETS, **(headers or {})}
    )


# -- log driver: events, order and payloads -------------------------------------------------


def test_image_lifecycle_events_and_payloads(logged: Callable[..., tuple[Api, LogEvents]]) -> None:
    api, events = logged()
    owner = api.as_("proj", user="alice")
    image_id = new_image(owner, os_distro="cirros", tags=["b", "a"])
    created = events.take()
    assert [e["event_type"] for e in created] == ["image.create"]
    envelope = created[0]
    assert set(envelope) == ENVELOPE_KEYS
    assert envelope["publisher_id"] == "image.testhost" and envelope["priority"] == "INFO"
    payload = envelope["payload"]
    assert set(payload) == IMAGE_KEYS
    assert payload["id"] == image_id and payload["status"] == "queued"
    assert payload["owner"] == "proj" and payload["visibility"] == "shared"
    assert payload["is_public"] is False
    assert payload["properties"] == {"os_distro": "cirros"}
    assert payload["tags"] == ["a", "b"]
    assert payload["deleted"] is False and payload["deleted_at"] is None
    assert payload["created_at"].endswith("Z") and "T" in payload["created_at"]

    assert upload(owner, image_id).status_code == 204
    uploaded = events.take()
    assert [(e["event_type"], e["payload"]["status"]) for e in uploaded] == [
        ("image.update", "saving"),
        ("image.prepare", "saving"),
        ("image.upload", "active"),
        ("image.activate", "active"),
        ("image.update", "active"),
    ]
    active = uploaded[-1]["payload"]
    assert active["size"] == len(DATA) and active["checksum"]
    assert "locations" not in active

    assert owner.get(f"/v2/images/{image_id}/file").content == DATA
    partial = owner.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=0-9"})
    assert partial.status_code == 206
    sends = events.take()
    assert [e["event_type"] for e in sends] == ["image.send", "image.send"]
    assert sends[0]["payload"] == {
        "bytes_sent": len(DATA),
        "image_id": image_id,
        "owner_id": "proj",
        "receiver_tenant_id": "proj",
        "receiver_user_id": "alice",
    }
    assert sends[1]["payload"]["bytes_sent"] == 10 and sends[1]["priority"] == "INFO"

    ops = [{"op": "replace", "path": "/name", "value": "renamed"}]
    assert owner.patch(f"/v2/images/{image_id}", ops).status_code == 200
    assert owner.patch(f"/v2/images/{image_id}", []).status_code == 200  # saves nothing
    assert owner.put(f"/v2/images/{image_id}/tags/c").status_code == 204
    assert owner.delete(f"/v2/images/{image_id}/tags/c").status_code == 204
    assert owner.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    assert owner.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    assert owner.post(f"/v2/images/{image_id}/actions/reactivate").status_code == 204
    updates = events.take()
    assert [(e["event_type"], e["payload"]["status"]) for e in updates] == [
        ("image.update", "active"),
        ("image.update", "active"),
        ("image.update", "active"),
        ("image.update", "deactivated"),
        ("image.update", "active"),
    ]
    assert updates[0]["payload"]["name"] == "renamed"
    assert updates[1]["payload"]["tags"] == ["a", "b", "c"]
    assert updates[2]["payload"]["tags"] == ["a", "b"]

    assert owner.delete(f"/v2/images/{image_id}").status_code == 204
    deleted = events.take()
    assert [e["event_type"] for e in deleted] == ["image.delete"]
    gone = deleted[0]["payload"]
    assert gone["deleted"] is True and gone["deleted_at"].endswith("Z")
    assert gone["status"] == "deleted"
    # Announced as it was: with its properties and tags.
    assert gone["properties"] == {"os_distro": "cirros"} and gone["tags"] == ["a", "b"]


def test_member_events_and_payloads(logged: Callable[..., tuple[Api, LogEvents]]) -> None:
    api, events = logged()
    owner, friend = api.as_("proj"), api.as_("friend")
    image_id = new_image(owner)
    events.take()
    members = f"/v2/images/{image_id}/members"
    assert owner.post(members, json={"member": "friend"}).status_code == 200
    assert friend.put(f"{members}/friend", json={"status": "accepted"}).status_code == 200
    assert owner.delete(f"{members}/friend").status_code == 204
    found = events.take()
    assert [e["event_type"] for e in found] == [
        "image.member.create",
        "image.member.update",
        "image.member.delete",
    ]
    for event in found:
        assert set(event["payload"]) == MEMBER_KEYS
        assert event["payload"]["image_id"] == image_id
        assert event["payload"]["member_id"] == "friend"
    assert [e["payload"]["status"] for e in found] == ["pending", "accepted", "accepted"]
    assert found[0]["payload"]["deleted"] is False and found[0]["payload"]["deleted_at"] is None
    assert found[2]["payload"]["deleted"] is True and found[2]["payload"]["deleted_at"]


def test_failed_upload_is_an_error_event_then_the_image_is_queued_again(
    logged: Callable[..., tuple[Api, LogEvents]],
) -> None:
    api, events = logged()
    image_id = new_image(api)
    events.take()
    response = upload(api, image_id, {"x-image-meta-expected-hash": "md5:" + "0" * 32})
    assert response.status_code == 400
    found = events.take()
    assert [(e["event_type"], e["priority"]) for e in found] == [
        ("image.update", "INFO"),
        ("image.prepare", "INFO"),
        ("image.upload", "ERROR"),
        ("image.update", "INFO"),
    ]
    message = found[2]["payload"]
    assert isinstance(message, str)
    assert message.startswith(f"Failed to upload image data for image {image_id}")
    assert found[3]["payload"]["status"] == "queued"


def test_import_task_events(logged: Callable[..., tuple[Api, LogEvents]]) -> None:
    api, events = logged()
    rt = runtime_of(api)
    owner = api.as_("proj")
    image_id = new_image(owner)
    staged = owner.put(f"/v2/images/{image_id}/stage", content=DATA, headers=OCTETS)
    assert staged.status_code == 204
    assert [e["event_type"] for e in events.take()] == ["image.create", "image.update"]
    body = {"method": {"name": "glance-direct"}}
    assert owner.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    started = events.take()
    assert [e["event_type"] for e in started] == ["image.update", "task.create"]
    assert started[0]["payload"]["status"] == "importing"
    task = started[1]["payload"]
    assert set(task) == TASK_KEYS
    assert task["type"] == "api_image_import" and task["status"] == "pending"
    assert task["owner"] == "proj" and task["result"] is None and task["message"] is None

    claim = queue.claim(rt, "test-worker")
    assert claim is not None
    asyncio.run(runner.run(rt, claim))
    assert owner.get(f"/v2/images/{image_id}").json()["status"] == "active"
    ran = events.take()
    assert [(e["event_type"], e["payload"]["status"]) for e in ran] == [
        ("task.run", "processing"),
        ("task.processing", "processing"),
        ("image.prepare", "importing"),
        ("image.upload", "active"),
        ("image.activate", "active"),
        ("image.update", "active"),
        ("task.success", "success"),
    ]
    assert {e["payload"]["id"] for e in ran if e["event_type"].startswith("task.")} == {task["id"]}


def test_failed_import_task_events(logged: Callable[..., tuple[Api, LogEvents]]) -> None:
    api, events = logged()
    rt = runtime_of(api)
    image_id = new_image(api)
    assert api.put(f"/v2/images/{image_id}/stage", content=DATA, headers=OCTETS).status_code == 204
    assert (
        api.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        ).status_code
        == 202
    )
    rt.stores.staging.delete(rt.stores.staging.uri_for(image_id))
    events.take()
    claim = queue.claim(rt, "test-worker")
    assert claim is not None
    asyncio.run(runner.run(rt, claim))
    found = events.take()
    assert [(e["event_type"], e["payload"]["status"]) for e in found] == [
        ("task.run", "processing"),
        ("task.processing", "processing"),
        ("image.update", "queued"),
        ("task.failure", "failure"),
    ]


def test_disabled_notifications_by_type_and_group(
    logged: Callable[..., tuple[Api, LogEvents]],
) -> None:
    api, events = logged(disabled_notifications=["image.update", "image.member"])
    image_id = new_image(api)
    ops = [{"op": "replace", "path": "/name", "value": "x"}]
    assert api.patch(f"/v2/images/{image_id}", ops).status_code == 200
    assert api.post(f"/v2/images/{image_id}/members", json={"member": "m"}).status_code == 200
    assert api.delete(f"/v2/images/{image_id}").status_code == 204
    assert events.types() == ["image.create", "image.delete"]


def test_disabling_the_image_group_disables_member_events_too(
    logged: Callable[..., tuple[Api, LogEvents]],
) -> None:
    api, events = logged(disabled_notifications=["image"])
    image_id = new_image(api)
    assert api.post(f"/v2/images/{image_id}/members", json={"member": "m"}).status_code == 200
    assert events.types() == []


def test_metadef_events_go_through_the_notifier(
    logged: Callable[..., tuple[Api, LogEvents]],
) -> None:
    api, events = logged()
    body = {"namespace": "OS::Test", "display_name": "Test"}
    assert api.post("/v2/metadefs/namespaces", json=body).status_code == 201
    found = events.take()
    assert [e["event_type"] for e in found] == ["metadef_namespace.create"]
    assert found[0]["payload"]["namespace"] == "OS::Test"


def test_noop_is_the_default_and_sends_nothing(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="oslo.messaging.notification")
    new_image(api)
    rt = runtime_of(api)
    assert not rt.notifier.is_enabled("image.create")
    assert rt.notifier.flush(1)
    assert not [r for r in caplog.records if r.name.startswith("oslo.messaging")]


# -- the notifier itself ----------------------------------------------------------------------


class StuckBackend:
    """A backend whose sends block until released, like a broker that does not answer."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.sent: list[str] = []

    def send(self, priority: str, event_type: str, payload: Any) -> None:
        self.entered.set()
        self.release.wait(10)
        self.sent.append(event_type)

    def close(self) -> None:
        pass


def test_a_full_queue_drops_and_logs_without_blocking(caplog: pytest.LogCaptureFixture) -> None:
    backend = StuckBackend()
    notifier = Notifier(backend, queue_size=2, flush_timeout=0.1)
    started = time.monotonic()
    notifier.info("image.e0", {})
    assert backend.entered.wait(5)
    for n in range(1, 50):
        notifier.info(f"image.e{n}", {})
    assert time.monotonic() - started < 0.5
    assert any("queue is full" in r.getMessage() for r in caplog.records)
    backend.release.set()
    assert notifier.flush(5)
    # The one in flight and the two queued ones; the rest were dropped.
    assert backend.sent == ["image.e0", "image.e1", "image.e2"]
    notifier.info("image.after", {})
    assert notifier.flush(5)
    assert backend.sent[-1] == "image.after"
    assert any("were dropped" in r.getMessage() for r in caplog.records)
    notifier.close()


def test_close_gives_up_on_a_stuck_backend(caplog: pytest.LogCaptureFixture) -> None:
    backend = StuckBackend()
    notifier = Notifier(backend, flush_timeout=0.2)
    notifier.info("image.create", {})
    started = time.monotonic()
    notifier.close()
    assert time.monotonic() - started < 2
    assert any("not sent before shutdown" in r.getMessage() for r in caplog.records)
    backend.release.set()
    notifier.info("image.late", {})  # ignored once closed
    time.sleep(0.1)
    assert "image.late" not in backend.sent


# -- messagingv2 through a real RabbitMQ ------------------------------------------------------


@pytest.mark.parametrize("url", ["bogus://host/", "rabbit://guest:guest@host:port/", "no url"])
def test_an_unusable_transport_url_refuses_to_start(url: str, tmp_path: Any) -> None:
    conf = config.new_conf([])
    conf.set_override("data_dir", str(tmp_path / "data"))
    conf.set_override("transport_url", url)
    conf.set_override("driver", ["messagingv2"], group="oslo_messaging_notifications")
    with pytest.raises(NotificationConfigError):
        Runtime.build(conf)
    with pytest.raises(SystemExit) as exited:
        prepare(conf)
    assert str(exited.value.code).startswith("ERROR: Cannot use the notification transport")


def _reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    """RabbitMQ on 127.0.0.1:5672 (guest/guest), started if it is installed but down."""
    if not _reachable(RABBIT):
        server = shutil.which("rabbitmq-server")
        if server is None:
            pytest.skip("RabbitMQ is not running on 127.0.0.1:5672 and is not installed")
        subprocess.run([server, "-detached"], check=False, capture_output=True)
        deadline = time.monotonic() + 90
        while not _reachable(RABBIT):
            if time.monotonic() > deadline:
                pytest.fail("rabbitmq-server -detached did not start listening on 5672")
            time.sleep(1)
    return RABBIT_URL


class Broker:
    """Reads what was published to a topic's queues, then removes them."""

    def __init__(self, topic: str) -> None:
        import kombu

        self.topic = topic
        self.connection = kombu.Connection("amqp://guest:guest@127.0.0.1:5672//")
        self.channel = self.connection.channel()

    def drain(self, priority: str = "info") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        name = f"{self.topic}.{priority}"
        while True:
            try:
                message = self.channel.basic_get(queue=name, no_ack=True)
            except amqp.exceptions.NotFound:
                # Nothing was ever published with this priority.
                self.channel = self.connection.channel()
                return found
            if message is None:
                return found
            envelope = json.loads(message.body)
            assert envelope["oslo.version"] == "2.0"
            found.append(json.loads(envelope["oslo.message"]))

    def close(self) -> None:
        for priority in ("info", "error", "warn"):
            try:
                self.channel.queue_delete(f"{self.topic}.{priority}")
            except Exception:
                self.channel = self.connection.channel()
        self.connection.close()


@pytest.fixture
def broker(rabbitmq: str) -> Iterator[Broker]:
    broker = Broker(f"glimpse_test_{uuid.uuid4().hex[:12]}")
    yield broker
    broker.close()


def test_messagingv2_delivers_glance_events_to_rabbitmq(
    make_api: Callable[..., Api], rabbitmq: str, broker: Broker
) -> None:
    api = make_api(
        transport_url=rabbitmq,
        oslo_messaging_notifications__driver=["messagingv2"],
        oslo_messaging_notifications__topics=[broker.topic],
        default_publisher_id="image.rabbit-test",
    )
    owner, friend = api.as_("proj", user="alice"), api.as_("friend")
    image_id = new_image(owner, os_distro="cirros")
    assert upload(owner, image_id).status_code == 204
    ops = [{"op": "add", "path": "/x_extra", "value": "1"}]
    assert owner.patch(f"/v2/images/{image_id}", ops).status_code == 200
    members = f"/v2/images/{image_id}/members"
    assert owner.post(members, json={"member": "friend"}).status_code == 200
    assert friend.put(f"{members}/friend", json={"status": "accepted"}).status_code == 200
    assert owner.delete(f"{members}/friend").status_code == 204
    assert owner.delete(f"/v2/images/{image_id}").status_code == 204
    assert runtime_of(api).notifier.flush(30), "events did not reach RabbitMQ in time"

    received = broker.drain("info")
    assert [m["event_type"] for m in received] == [
        "image.create",
        "image.update",
        "image.prepare",
        "image.upload",
        "image.activate",
        "image.update",
        "image.update",
        "image.member.create",
        "image.member.update",
        "image.member.delete",
        "image.delete",
    ]
    for message in received:
        assert ENVELOPE_KEYS <= set(message)  # the AMQP driver adds a _unique_id
        assert message["publisher_id"] == "image.rabbit-test"
        assert message["priority"] == "INFO"
    payloads = [m["payload"] for m in received]
    assert set(payloads[0]) == IMAGE_KEYS and payloads[0]["status"] == "queued"
    assert payloads[0]["properties"] == {"os_distro": "cirros"}
    assert payloads[4]["status"] == "active" and payloads[4]["size"] == len(DATA)
    assert payloads[6]["properties"] == {"os_distro": "cirros", "x_extra": "1"}
    assert set(payloads[7]) == MEMBER_KEYS and payloads[7]["member_id"] == "friend"
    assert payloads[8]["status"] == "accepted"
    assert payloads[9]["deleted"] is True
    assert payloads[10]["id"] == image_id and payloads[10]["deleted"] is True
    assert broker.drain("error") == []


@pytest.fixture(params=["refused", "silent"])
def unreachable_broker(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A transport URL nothing answers on: a closed port (each send fails at once), or one
    that accepts connections and stays mute (each send hangs until its timeout)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"rabbit://guest:guest@127.0.0.1:{sock.getsockname()[1]}/"
        if request.param == "silent":
            sock.listen(100)
            yield request.param, url
            return
    yield request.param, url


def test_an_unreachable_broker_never_slows_or_fails_requests(
    make_api: Callable[..., Api],
    unreachable_broker: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    kind, url = unreachable_broker
    api = make_api(
        transport_url=url,
        oslo_messaging_notifications__driver=["messagingv2"],
        notification_queue_size=3,
        notification_flush_timeout=0.2,
    )
    owner = api.as_("proj")
    durations = []

    def timed(method: str, path: str, status: int, **kwargs: Any) -> Any:
        started = time.monotonic()
        response = owner.request(method, path, **kwargs)
        durations.append(time.monotonic() - started)
        assert response.status_code == status, response.text
        return response

    body = {"name": "x", "disk_format": "raw", "container_format": "bare"}
    patch = json.dumps([{"op": "replace", "path": "/name", "value": "y"}])
    patch_type = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
    for _ in range(3):
        image = f"/v2/images/{timed('POST', '/v2/images', 201, json=body).json()['id']}"
        timed("PUT", f"{image}/file", 204, content=DATA, headers=OCTETS)
        timed("PATCH", image, 200, content=patch, headers=patch_type)
        timed("POST", f"{image}/members", 200, json={"member": "m"})
        timed("GET", f"{image}/file", 200)
        timed("DELETE", image, 204)
    assert max(durations) < 2, durations
    if kind == "silent":
        # The sender hangs on the first event; the queue filled up and the rest were dropped.
        assert any("queue is full" in r.getMessage() for r in caplog.records)
