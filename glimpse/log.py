"""Logging: who and what each line is about, as text or JSON, and the access log.

Every line logged while a request is handled carries its request id and, once known,
the caller's user and project; every line a worker logs for a task carries the task id
and the request id of the import that queued it. The fields live in a context
variable set by :func:`fields`, so they follow the code into the threads
(``run_in_threadpool``) and asyncio tasks it starts, and no service passes them along.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg

#: The context fields, in the order text lines show them.
FIELDS = ("request_id", "user_id", "project_id", "task_id")
ACCESS_LOGGER = "glimpse.access"

_current: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "glimpse_log_fields", default=None
)
# Libraries whose INFO lines are one per outgoing request or connection: noise beside
# our own lines (httpx logs every web-download and Keystone request).
_QUIET = ("httpx", "httpcore", "urllib3", "stevedore", "amqp", "kombu", "multipart")
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    *FIELDS,
}


@contextlib.contextmanager
def fields(**values: str | None) -> Iterator[None]:
    """Add ``values`` (those not None) to every line logged inside the block."""
    merged = {**(_current.get() or {}), **{k: v for k, v in values.items() if v is not None}}
    token = _current.set(merged)
    try:
        yield
    finally:
        _current.reset(token)


class ContextFilter(logging.Filter):
    """Copies the context fields onto each record (None where unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _current.get() or {}
        for name in FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, current.get(name))
        return True


class TextFormatter(logging.Formatter):
    """``time pid LEVEL logger [req-… user=… project=… task=…] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(process)d %(levelname)s %(name)s [%(context)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        parts = [request_id or "-"]
        for name in FIELDS[1:]:
            value = getattr(record, name, None)
            if value is not None:
                parts.append(f"{name.removesuffix('_id')}={value}")
        record.context = " ".join(parts)
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: the standard fields, the context fields, any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRIBUTES and name != "context":
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def log_path(conf: cfg.ConfigOpts) -> str | None:
    """``log_file``, taken in ``log_dir`` when relative; None logs to standard error."""
    if not conf.log_file:
        return None
    return os.path.join(conf.log_dir or "", conf.log_file)


def setup(conf: cfg.ConfigOpts) -> None:
    """Send this process's log lines where ``conf`` says, in its format (idempotent).

    Exits with a message when the log file cannot be opened: commands call this first.
    """
    path = log_path(conf)
    handler: logging.Handler
    if path:
        try:
            # Reopened when logrotate moves the file away.
            handler = logging.handlers.WatchedFileHandler(path)
        except OSError as exc:
            sys.exit(f"ERROR: cannot open log_file {path}: {exc.strerror}")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if conf.use_json else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    apply_level(conf)


def apply_level(conf: cfg.ConfigOpts) -> None:
    """DEBUG with ``debug``, else INFO; called again when SIGHUP reloads the options."""
    logging.getLogger().setLevel(logging.DEBUG if conf.debug else logging.INFO)


def access(
    *,
    client: str | None,
    method: str,
    path: str,
    http_version: str,
    status: int | None,
    length: int,
    duration: float,
    user_id: str | None = None,
    project_id: str | None = None,
    level: int = logging.INFO,
) -> None:
    """The one line logged per request, once its response is sent (or abandoned)."""
    logging.getLogger(ACCESS_LOGGER).log(
        level,
        '%s "%s %s HTTP/%s" status: %s len: %d time: %.7f',
        client or "-",
        method,
        path,
        http_version,
        status if status is not None else "-",
        length,
        duration,
        extra={
            "client": client,
            "method": method,
            "path": path,
            "status": status,
            "bytes": length,
            "duration": round(duration, 6),
            "user_id": user_id,
            "project_id": project_id,
        },
    )
