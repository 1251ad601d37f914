"""The notifier: Glance's notifications, sent in the background so no request waits for them.

A service function calls :meth:`Notifier.info` (or ``warn``/``error``) once its
transaction has committed. The call only puts the event on a bounded queue; one
background thread per process hands the events to the backend in order. When the
messaging server is slow or unreachable the queue fills up, and further events
are dropped and the drop logged: a request is never held up, nor failed, by
notifications.

Backends, by ``[oslo_messaging_notifications] driver``:

* none or ``noop`` (the default): nothing is sent, and no thread is started;
* ``log``: the envelope as JSON to the ``oslo.messaging.notification.<event_type>``
  logger, as oslo.messaging's log driver writes it (without loading oslo.messaging);
* anything else (``messagingv2``, ``messaging``, ``routing``, ...): oslo.messaging's
  notifier with those drivers, on the control exchange ``glance`` as Glance's.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import queue
import threading
import uuid
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

from oslo_config import cfg
from oslo_utils import strutils, timeutils

LOG = logging.getLogger(__name__)

_NATIVE_DRIVERS = frozenset({"noop", "log"})
_LOG_LEVELS = {"INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR}
#: Exchange Glance's notifications are published on (and ceilometer listens to).
CONTROL_EXCHANGE = "glance"


class NotificationConfigError(ValueError):
    """The notification driver or transport URL cannot be used; the service must not start."""


class Backend(Protocol):
    """Where events go: called from the notifier's thread only, one event at a time."""

    def send(self, priority: str, event_type: str, payload: Any) -> None: ...

    def close(self) -> None: ...


class LogBackend:
    """oslo.messaging's ``log`` driver: the whole envelope, as JSON, at the event's priority."""

    def __init__(self, publisher_id: str) -> None:
        self.publisher_id = publisher_id

    def send(self, priority: str, event_type: str, payload: Any) -> None:
        message = {
            "message_id": str(uuid.uuid4()),
            "publisher_id": self.publisher_id,
            "event_type": event_type,
            "priority": priority,
            "payload": payload,
            "timestamp": str(timeutils.utcnow()),
        }
        logger = logging.getLogger(f"oslo.messaging.notification.{event_type}")
        logger.log(_LOG_LEVELS[priority], json.dumps(strutils.mask_dict_password(message)))

    def close(self) -> None:
        pass


class MessagingBackend:
    """oslo.messaging's notifier, with its own view of the configuration files.

    oslo.messaging registers (and reads) its options on the ConfigOpts it is given.
    Glimpse declares the few it reads itself (:mod:`glimpse.config.notifications`),
    so the library gets a separate ConfigOpts over the same files, for its other
    options (``[oslo_messaging_rabbit]``, ``[DEFAULT] control_exchange``...).
    """

    def __init__(self, conf: cfg.ConfigOpts, drivers: Sequence[str]) -> None:
        with warnings.catch_warnings():
            # It imports eventlet (through oslo.service), which warns that it is
            # deprecated; nothing here uses eventlet.
            warnings.simplefilter("ignore")
            import oslo_messaging
            from oslo_messaging import opts as messaging_opts

        own = cfg.ConfigOpts()
        for group, opts in messaging_opts.list_opts():
            own.register_opts(opts, group=group)
        own.set_default("control_exchange", CONTROL_EXCHANGE)
        own(_file_arguments(conf), project="glimpse", default_config_files=[])
        # The Notifier's own driver argument takes one name; several go through its conf.
        own.set_override("driver", list(drivers), group="oslo_messaging_notifications")
        group = conf.oslo_messaging_notifications
        url = group.transport_url or conf.transport_url
        try:
            self._transport = oslo_messaging.get_notification_transport(own, url=url)
        except (
            oslo_messaging.InvalidTransportURL,
            oslo_messaging.DriverLoadFailure,
            ValueError,  # a malformed URL the parser did not catch (rabbit://h:port-text/)
        ) as exc:
            raise NotificationConfigError(f"Cannot use the notification transport: {exc}") from exc
        self._notifier = oslo_messaging.Notifier(
            self._transport,
            publisher_id=conf.default_publisher_id,
            topics=list(group.topics),
            retry=group.retry,
        )

    def send(self, priority: str, event_type: str, payload: Any) -> None:
        method = {
            "INFO": self._notifier.info,
            "WARN": self._notifier.warn,
            "ERROR": self._notifier.error,
        }[priority]
        method({}, event_type, payload)

    def close(self) -> None:
        self._transport.cleanup()


def _file_arguments(conf: cfg.ConfigOpts) -> list[str]:
    args: list[str] = []
    for path in conf.config_file or []:
        args += ["--config-file", path]
    dirs = conf.config_dir or []
    for path in [dirs] if isinstance(dirs, str) else dirs:
        args += ["--config-dir", path]
    return args


_STOP = object()


class Notifier:
    """Sends events to a backend from a bounded queue, never blocking the caller."""

    def __init__(
        self,
        backend: Backend | None,
        *,
        disabled: Sequence[str] = (),
        queue_size: int = 1000,
        flush_timeout: float = 5.0,
    ) -> None:
        self._backend = backend
        self._disabled = tuple(disabled)
        self._queue_size = queue_size
        self._flush_timeout = flush_timeout
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: queue.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._pending = 0
        self._dropped = 0
        self._closed = False

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> Notifier:
        """The notifier ``conf`` describes; raises :class:`NotificationConfigError`."""
        drivers = [d for d in conf.oslo_messaging_notifications.driver if d]
        backend: Backend | None = None
        if not set(drivers) <= _NATIVE_DRIVERS:
            backend = MessagingBackend(conf, drivers)
        elif "log" in drivers:
            backend = LogBackend(conf.default_publisher_id)
        return cls(
            backend,
            disabled=[d.strip() for d in conf.disabled_notifications if d.strip()],
            queue_size=int(conf.notification_queue_size),
            flush_timeout=float(conf.notification_flush_timeout),
        )

    def is_enabled(self, event_type: str) -> bool:
        """False for events ``disabled_notifications`` names, by type or by group prefix."""
        if self._backend is None:
            return False
        return not any(
            event_type == name or event_type.startswith(name + ".") for name in self._disabled
        )

    def info(self, event_type: str, payload: Any) -> None:
        self._emit("INFO", event_type, payload)

    def warn(self, event_type: str, payload: Any) -> None:
        self._emit("WARN", event_type, payload)

    def error(self, event_type: str, payload: Any) -> None:
        self._emit("ERROR", event_type, payload)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was handed to the backend; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Send what is queued (for up to ``notification_flush_timeout``), then stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
        if thread is not None and thread.is_alive():
            if not self.flush(self._flush_timeout):
                # The thread is stuck on an unreachable server; it dies with the process.
                LOG.warning("%d notifications were not sent before shutdown", self._pending)
                return
            assert self._queue is not None
            self._queue.put(_STOP)
            thread.join(self._flush_timeout)
        if self._backend is not None:
            try:
                self._backend.close()
            except Exception:
                LOG.warning("Closing the notification backend failed", exc_info=True)

    def _emit(self, priority: str, event_type: str, payload: Any) -> None:
        if self._closed or not self.is_enabled(event_type):
            return
        with self._lock:
            events = self._running_queue()
            try:
                # The sending thread logs in the request's context (its request id).
                context = contextvars.copy_context()
                events.put_nowait((priority, event_type, payload, context))
            except queue.Full:
                self._dropped += 1
                dropped = -self._dropped
            else:
                self._pending += 1
                dropped, self._dropped = self._dropped, 0
        if dropped == -1:
            LOG.warning(
                "The notification queue is full (%d events; is the messaging server "
                "reachable?): dropping %s and further notifications until it drains",
                self._queue_size,
                event_type,
            )
        elif dropped < 0:
            LOG.debug("Dropped notification %s", event_type)
        elif dropped > 0:
            LOG.warning("%d notifications were dropped while the queue was full", dropped)

    def _running_queue(self) -> queue.Queue[Any]:
        """The queue, with its thread started in this process (after a fork, anew)."""
        if self._queue is None or self._thread is None or self._pid != os.getpid():
            self._queue = queue.Queue(maxsize=self._queue_size)
            self._pending = 0
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, args=(self._queue,), name="glimpse-notifier", daemon=True
            )
            self._thread.start()
        return self._queue

    def _run(self, events: queue.Queue[Any]) -> None:
        assert self._backend is not None
        while True:
            item = events.get()
            if item is _STOP:
                return
            priority, event_type, payload, context = item
            try:
                context.run(self._send, priority, event_type, payload)
            finally:
                with self._idle:
                    self._pending -= 1
                    if self._pending <= 0:
                        self._idle.notify_all()

    def _send(self, priority: str, event_type: str, payload: Any) -> None:
        assert self._backend is not None
        try:
            self._backend.send(priority, event_type, payload)
        except Exception:
            LOG.exception("Could not send notification %s", event_type)
