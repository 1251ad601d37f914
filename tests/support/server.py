"""A real ``glimpse-api`` process for the tests that drive actual clients over HTTP.

The server runs the installed entry point (``python -m glimpse.cmd.api``) with a
configuration file written for the test: a free loopback port, its own data folder
and the test's database. The fixtures in ``tests/clients/conftest.py`` start one per
database backend and session; tests empty the database between them instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

#: Seconds to wait for /healthcheck before giving up on a starting server (CI can be slow).
START_TIMEOUT = 60.0


class ServerError(RuntimeError):
    """The server did not come up; the message carries the end of its log."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config_text(options: Mapping[str, Mapping[str, object]]) -> str:
    lines: list[str] = []
    for group, values in options.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value}" for name, value in values.items()]
        lines.append("")
    return "\n".join(lines)


class Server:
    """One running ``glimpse-api`` process; ``url`` is its base URL (no trailing slash)."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def log(self) -> str:
        """What the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-4000:]
            raise ServerError(f"glimpse-api exited with {process.returncode}:\n{tail}")
        try:
            response = httpx.get(url + "/healthcheck", timeout=1.0, trust_env=False)
            if response.status_code == 200 and response.text == "OK":
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    tail = log_path.read_text(errors="replace")[-4000:]
    raise ServerError(f"glimpse-api did not answer /healthcheck in {START_TIMEOUT}s:\n{tail}")


@contextmanager
def running(
    database_url: str,
    workdir: Path,
    options: Mapping[str, Mapping[str, object]] | None = None,
) -> Iterator[Server]:
    """Start ``glimpse-api`` on ``database_url`` and stop it on exit.

    ``options`` adds configuration, as ``{group: {name: value}}`` (``DEFAULT`` for the
    main group); the port, data folder and database connection are set here, and one
    API process unless ``workers`` says otherwise. No
    embedded import worker runs unless ``{"worker": {"embedded_workers": 1}}`` asks for
    one: the client tests need none, and an idle worker polls the database.
    """
    attempts = 3
    for attempt in range(attempts):
        port = free_port()
        merged: dict[str, dict[str, object]] = {
            group: dict(values) for group, values in (options or {}).items()
        }
        merged.setdefault("worker", {}).setdefault("embedded_workers", 0)
        defaults = merged.setdefault("DEFAULT", {})
        defaults.update(bind_host="127.0.0.1", bind_port=port, data_dir=workdir / "data")
        defaults.setdefault("workers", 1)
        merged.setdefault("database", {})["connection"] = database_url.replace("$", "$$")
        conf_path = workdir / "glimpse-api.conf"
        conf_path.write_text(_config_text(merged))
        log_path = workdir / f"glimpse-api-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "glimpse.cmd.api", "--config-file", str(conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        server = Server(process, f"http://127.0.0.1:{port}", log_path)
        try:
            _wait_until_healthy(process, server.url, log_path)
        except ServerError:
            server.stop()
            # Another process may have taken the port between our probe and the bind.
            if attempt + 1 < attempts and "address already in use" in server.log().lower():
                continue
            raise
        break
    try:
        yield server
    finally:
        server.stop()
