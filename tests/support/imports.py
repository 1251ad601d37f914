"""Driving imports through a real ``glimpse-api``: a web-download source, worker options,
and waiting for an image or its import task to settle."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class Source(ThreadingHTTPServer):
    """Serves ``files`` on 127.0.0.1; ``delay`` seconds between 64 KiB pieces when slow."""

    daemon_threads = True

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.delay = 0.0
        self.redirects: dict[str, str] = {}
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def allowed(self) -> dict[str, object]:
        """``[import_filtering_opts]`` that let web-download fetch from this source."""
        return {"allowed_hosts": "127.0.0.1", "allowed_ports": str(self.port)}


class _Handler(BaseHTTPRequestHandler):
    server: Source

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path in self.server.redirects:
            self.send_response(302)
            self.send_header("Location", self.server.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.server.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        piece = 64 * 1024
        try:
            for start in range(0, len(body), piece):
                self.wfile.write(body[start : start + piece])
                if self.server.delay:
                    time.sleep(self.server.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass


def worker(count: int) -> dict[str, object]:
    """``[worker]`` with ``count`` embedded workers that claim jobs quickly and lose a
    dead worker's lease in seconds."""
    return {
        "embedded_workers": count,
        "poll_seconds": 0.1,
        "heartbeat_seconds": 1,
        "lease_seconds": 5,
    }


def wait_for_status(
    api: httpx.Client, image_id: str, statuses: tuple[str, ...], timeout: float = 60
) -> dict[str, Any]:
    """The image once its status is one of ``statuses``; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    image: dict[str, Any] = {}
    while time.monotonic() < deadline:
        image = api.get(f"/v2/images/{image_id}").json()
        if image["status"] in statuses:
            return image
        time.sleep(0.1)
    raise AssertionError(f"image stayed {image.get('status')}, expected {statuses}")


def finished_task(api: httpx.Client, image_id: str, timeout: float = 60) -> dict[str, Any]:
    """The image's latest task once it succeeded or failed; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        if tasks and tasks[0]["status"] in ("success", "failure"):
            return dict(tasks[0])
        time.sleep(0.1)
    raise AssertionError(f"the task of {image_id} did not finish")
