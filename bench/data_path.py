"""Benchmark of the image data path: upload and download of a large image on loopback.

Not a test: it prints figures, each next to the physical limit measured in the
same run on the same machine, so a number means something on any hardware:

* upload   vs the slower of hashlib sha512 (the default ``hashing_algorithm``) and
  the disk's durable write speed (the same size written with fsync, in the folder
  that holds the servers' data folders);
* download vs a plain loopback socket transfer of the same size, between two
  processes;
* the server's CPU seconds per GiB, beside what MD5 plus SHA-512 alone cost (a
  yardstick a busy machine does not move as much as it moves speeds);
* the server's peak resident memory growth (VmHWM) over the transfers.

Each server (uvicorn, the ``glimpse-api`` default; granian, when installed) runs
one worker on an SQLite database in a fresh data folder. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx

MiB = 1 << 20
BLOCK = os.urandom(MiB)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Physical limits


def hash_run(size: int, algorithm: str) -> tuple[float, float]:
    """Wall and CPU seconds hashlib takes for ``size`` bytes in 1 MiB blocks, as the pipeline."""
    hasher = hashlib.new(algorithm)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(size // MiB):
        hasher.update(BLOCK)
    return time.perf_counter() - start, time.process_time() - cpu_start


def durable_write(folder: Path, size: int) -> float:
    """Seconds to write ``size`` bytes to a new file in ``folder`` and fsync it."""
    path = folder / ".bench-durable-write"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(size // MiB):
            os.write(fd, BLOCK)
        os.fsync(fd)
        return time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink()


def _socket_sender(port: int, size: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(size // MiB):
            sock.sendall(BLOCK)


def loopback_transfer(size: int) -> float:
    """Seconds to move ``size`` bytes from another process over a loopback TCP socket."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        sender = multiprocessing.get_context("spawn").Process(
            target=_socket_sender, args=(port, size)
        )
        sender.start()
        conn, _ = listener.accept()
        buffer = bytearray(MiB)
        received = 0
        start = time.perf_counter()
        with conn:
            while received < size:
                count = conn.recv_into(buffer)
                if not count:
                    break
                received += count
        elapsed = time.perf_counter() - start
        sender.join()
    assert received == size, received
    return elapsed


# Servers


def peak_rss(pids: list[int]) -> int:
    """The largest VmHWM among ``pids``, in bytes."""
    peak = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
    return peak


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time used so far by ``pids``."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (granian serves from a child process)."""
    found = [pid]
    for parent in found:
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            found += [int(child) for child in children]
    return found


@contextlib.contextmanager
def server(kind: str, workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    conf = workdir / "glimpse-api.conf"
    conf.write_text(
        f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\nworkers = 1\n"
        f"data_dir = {workdir / 'data'}\n"
    )
    args = ["--config-file", str(conf)]
    env = dict(os.environ)
    if kind == "uvicorn":
        command = [sys.executable, "-m", "glimpse.cmd.api", *args]
    else:
        # app_factory builds the app in granian's worker from the same arguments.
        env["GLIMPSE_API_ARGS"] = json.dumps(args)
        command = [
            str(Path(sys.executable).with_name("granian")),
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "glimpse.cmd.api:app_factory",
        ]
    log = (workdir / f"{kind}.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{kind} exited:\n{(workdir / f'{kind}.log').read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthcheck", timeout=1, trust_env=False).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{kind} did not start")
            time.sleep(0.1)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def create_image(url: str) -> str:
    response = httpx.post(
        url + "/v2/images",
        json={"disk_format": "raw", "container_format": "bare"},
        trust_env=False,
    )
    response.raise_for_status()
    image_id: str = response.json()["id"]
    return image_id


def upload(url: str, image_id: str, size: int) -> float:
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=600) as sock:
        start = time.perf_counter()
        sock.sendall(
            f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        for _ in range(size // MiB):
            sock.sendall(BLOCK)
        response = http.client.HTTPResponse(sock, method="PUT")
        response.begin()
        elapsed = time.perf_counter() - start
        if response.status != 204:
            raise SystemExit(f"upload failed: {response.status} {response.read()!r}")
    return elapsed


def download(url: str, image_id: str, size: int) -> float:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    start = time.perf_counter()
    connection.request("GET", f"/v2/images/{image_id}/file")
    response = connection.getresponse()
    buffer = bytearray(MiB)
    received = 0
    while True:
        count = response.readinto(buffer)
        if not count:
            break
        received += count
    elapsed = time.perf_counter() - start
    connection.close()
    if response.status != 200 or received != size:
        raise SystemExit(f"download failed: {response.status}, {received} bytes")
    return elapsed


def speed(size: int, seconds: float) -> float:
    return size / MiB / seconds


def measure_server(kind: str, root: Path, size: int) -> dict[str, float]:
    workdir = root / kind
    workdir.mkdir()
    with server(kind, workdir) as (url, process):
        warm = create_image(url)
        upload(url, warm, 4 * MiB)
        download(url, warm, 4 * MiB)
        pids = process_tree(process.pid)
        before = peak_rss(pids)
        image_id = create_image(url)
        cpu_start = cpu_seconds(pids)
        up = upload(url, image_id, size)
        cpu_upload = cpu_seconds(pids)
        down = download(url, image_id, size)
        cpu_download = cpu_seconds(pids)
        growth = peak_rss(process_tree(process.pid)) - before
    shutil.rmtree(workdir / "data", ignore_errors=True)
    gib = size / (1 << 30)
    return {
        "upload": speed(size, up),
        "download": speed(size, down),
        "rss": growth / MiB,
        "upload_cpu": (cpu_upload - cpu_start) / gib,
        "download_cpu": (cpu_download - cpu_upload) / gib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="Image size (default 1024).")
    parser.add_argument(
        "--dir",
        help="Folder for the servers' data (default: a new one under $TMPDIR); the "
        "durable-write limit is measured there too.",
    )
    parser.add_argument(
        "--servers",
        default="uvicorn,granian",
        help="Comma-separated: uvicorn, granian (skipped when not installed).",
    )
    options = parser.parse_args()
    size = options.size_mib * MiB
    root = Path(tempfile.mkdtemp(prefix="glimpse-bench-", dir=options.dir))
    kinds = [kind.strip() for kind in options.servers.split(",") if kind.strip()]
    if "granian" in kinds and not Path(sys.executable).with_name("granian").exists():
        print("granian is not installed; skipping it")
        kinds.remove("granian")
    try:
        print(
            f"size {options.size_mib} MiB, data in {root}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f} at start"
        )
        # A limit is the best the machine manages: take the fastest of a few runs.
        sha512_runs = [hash_run(size, "sha512") for _ in range(3)]
        md5_runs = [hash_run(size, "md5") for _ in range(3)]
        sha512 = speed(size, min(wall for wall, _ in sha512_runs))
        md5 = speed(size, min(wall for wall, _ in md5_runs))
        disk = speed(size, min(durable_write(root, size) for _ in range(2)))
        loopback = speed(size, min(loopback_transfer(size) for _ in range(3)))
        upload_limit = min(sha512, disk)
        # CPU seconds per GiB the digests cost at the least: a yardstick the machine's
        # load does not move, unlike the speeds.
        gib = size / (1 << 30)
        hash_cpu = (min(c for _, c in sha512_runs) + min(c for _, c in md5_runs)) / gib
        print(
            f"limits: sha512 {sha512:.0f} MiB/s, md5 {md5:.0f} MiB/s, durable write "
            f"{disk:.0f} MiB/s, loopback socket {loopback:.0f} MiB/s"
        )
        for kind in kinds:
            figures = measure_server(kind, root, size)
            up, down = figures["upload"], figures["download"]
            print(
                f"{kind:8} upload   {up:6.0f} MiB/s   limit {upload_limit:6.0f} MiB/s "
                f"(min of sha512, durable write)   ratio {up / upload_limit:.2f}"
            )
            print(
                f"{kind:8} download {down:6.0f} MiB/s   limit {loopback:6.0f} MiB/s "
                f"(loopback socket)                ratio {down / loopback:.2f}"
            )
            print(
                f"{kind:8} server CPU per GiB: upload {figures['upload_cpu']:.2f} s (md5 + "
                f"sha512 alone: {hash_cpu:.2f} s), download {figures['download_cpu']:.2f} s"
            )
            print(f"{kind:8} peak RSS growth {figures['rss']:.1f} MiB")
        print(f"load average {os.getloadavg()[0]:.2f} at end")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
