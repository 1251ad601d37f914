"""Benchmark of the image data path: upload and download of a large image on loopback.

Not a test: it prints figures, each next to the physical limit measured in the
same run on the same machine, so a number means something on any hardware:

* upload   vs the slower of hashlib sha512 (the default ``hashing_algorithm``) and
  the disk's durable write speed (the same size written with fsync, in the folder
  that holds the servers' data folders);
* download vs a plain loopback socket transfer of the same size, between two
  processes. The first download of a new image reads it from the disk (the
  filesystem store writes with O_DIRECT), so it is also shown beside the slower of
  that and a cold read of a file of the same size; the second comes from the page
  cache;
* the server's CPU seconds per GiB, beside what MD5 plus SHA-512 alone cost (a
  yardstick a busy machine does not move as much as it moves speeds), and the CPU
  the upload target leaves for everything else on this machine;
* the server's peak resident memory growth (VmHWM) over the transfers.

Each server (uvicorn, the ``glimpse-api`` default; granian, when installed) runs
one worker on an SQLite database in a fresh data folder. With a Swift/S3 endpoint in
the environment (``SWIFT_AUTH_URL``... as ``../shared/tools/swift-saio.sh env``
prints), one more row per object store: glimpse-api writing to and reading from
it, beside the store's own client library moving the same bytes. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import http.client
import json
import mmap
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def cold_read(folder: Path, size: int) -> float:
    """Seconds to read ``size`` bytes of a file that was never in the page cache.

    The file is written with O_DIRECT, as the filesystem store writes images, so the
    read fills pages the kernel never held for it: the cost a first download pays.
    """
    path = folder / ".bench-cold-read"
    block = mmap.mmap(-1, MiB)  # page-aligned, as O_DIRECT wants
    block.write(BLOCK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with contextlib.suppress(OSError):  # a filesystem without O_DIRECT: drop the cache
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_DIRECT)
        for _ in range(size // MiB):
            os.write(fd, block)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        buffer = bytearray(MiB)
        start = time.perf_counter()
        while os.readv(fd, [buffer]):
            pass
        return time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink()


def _socket_sender(port: int, size: int, path: str | None, how: str) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        if path is None:
            for _ in range(size // MiB):
                sock.sendall(BLOCK)
            return
        with open(path, "rb") as file:
            if how == "mmap":
                # User space sending the file's cached pages: one copy, into the socket.
                with mmap.mmap(file.fileno(), 0, prot=mmap.PROT_READ) as mapped:
                    view = memoryview(mapped)
                    for offset in range(0, size, 4 * MiB):
                        sock.sendall(view[offset : offset + 4 * MiB])
                    view.release()
                return
            sent = 0
            while sent < size:
                sent += os.sendfile(sock.fileno(), file.fileno(), sent, size - sent)


def loopback_transfer(size: int, path: Path | None = None, how: str = "sendfile") -> float:
    """Seconds to move ``size`` bytes from another process over a loopback TCP socket.

    The sender writes a 1 MiB buffer over and over, or with ``path``, sends that
    file (in the page cache) with sendfile(2), as glimpse-api sends a cached image,
    or (``how="mmap"``) with send(2) from a memory map of it.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        sender = multiprocessing.get_context("spawn").Process(
            target=_socket_sender,
            args=(port, size, None if path is None else str(path), how),
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


def file_transfer(folder: Path, size: int, how: str = "sendfile") -> float:
    """Seconds :func:`loopback_transfer` takes to send a cached file of ``size`` bytes."""
    path = folder / ".bench-sendfile"
    with path.open("wb") as file:
        for _ in range(size // MiB):
            file.write(BLOCK)
    try:
        with path.open("rb") as file:  # make sure every page is cached
            while file.read(8 * MiB):
                pass
        return loopback_transfer(size, path, how)
    finally:
        path.unlink()


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
def server(
    kind: str, workdir: Path, extra_conf: str = ""
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    conf = workdir / "glimpse-api.conf"
    conf.write_text(
        f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\nworkers = 1\n"
        f"data_dir = {workdir / 'data'}\n{extra_conf}"
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


def upload(url: str, image_id: str, size: int, store: str | None = None) -> float:
    parts = urllib.parse.urlsplit(url)
    store_header = f"X-Image-Meta-Store: {store}\r\n" if store else ""
    with socket.create_connection((parts.hostname, parts.port), timeout=600) as sock:
        start = time.perf_counter()
        sock.sendall(
            f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: {parts.netloc}\r\n{store_header}"
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
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=600)
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


def measure_server(
    kind: str,
    root: Path,
    size: int,
    store: str | None = None,
    extra_conf: str = "",
    runs: int = 2,
) -> dict[str, float]:
    """The server's best figures over ``runs`` images, as the limits are the best of theirs.

    Each image is uploaded, then downloaded once (its first download) and again (cached);
    each figure is the fastest of its runs, with the CPU time that run took.
    """
    workdir = root / (kind if store is None else f"{kind}-{store}")
    workdir.mkdir()
    timed: dict[str, list[tuple[float, float]]] = {"upload": [], "first": [], "again": []}
    with server(kind, workdir, extra_conf) as (url, process):
        warm = create_image(url)
        upload(url, warm, 4 * MiB, store)
        download(url, warm, 4 * MiB)
        pids = process_tree(process.pid)
        before = peak_rss(pids)

        def run(name: str, transfer: Callable[..., float], *args: Any) -> None:
            cpu = cpu_seconds(pids)
            seconds = transfer(*args)
            timed[name].append((seconds, cpu_seconds(pids) - cpu))

        for _ in range(runs):
            image_id = create_image(url)
            run("upload", upload, url, image_id, size, store)
            run("first", download, url, image_id, size)
            run("again", download, url, image_id, size)
        growth = peak_rss(process_tree(process.pid)) - before
    shutil.rmtree(workdir / "data", ignore_errors=True)
    gib = size / (1 << 30)
    best = {name: min(values) for name, values in timed.items()}
    return {
        "upload": speed(size, best["upload"][0]),
        "download": speed(size, best["first"][0]),
        "download_again": speed(size, best["again"][0]),
        "rss": growth / MiB,
        "upload_cpu": best["upload"][1] / gib,
        "download_cpu": best["first"][1] / gib,
        "download_again_cpu": best["again"][1] / gib,
    }


# Object stores


def object_store_env() -> dict[str, str]:
    """The Swift/S3 endpoint of the environment (as swift-saio.sh prints it), if any."""
    keys = ("SWIFT_AUTH_URL", "SWIFT_USER", "SWIFT_KEY", "S3_ENDPOINT", "S3_ACCESS_KEY")
    found = {
        key: os.environ[key] for key in (*keys, "S3_SECRET_KEY", "S3_REGION") if key in os.environ
    }
    return found


def store_conf(env: dict[str, str], place: str) -> str:
    """glimpse-api.conf lines for a multi-store deployment writing to Swift or S3."""
    lines = ["enabled_backends = local:file"]
    if "SWIFT_AUTH_URL" in env:
        lines[0] += ", swift:swift"
    if "S3_ENDPOINT" in env:
        lines[0] += ", s3:s3"
    lines += ["[glance_store]", "default_backend = local"]
    if "SWIFT_AUTH_URL" in env:
        lines += [
            "[swift]",
            f"swift_store_auth_address = {env['SWIFT_AUTH_URL']}",
            f"swift_store_user = {env['SWIFT_USER']}",
            f"swift_store_key = {env['SWIFT_KEY']}",
            "swift_store_auth_version = 1",
            f"swift_store_container = {place}",
            "swift_store_create_container_on_put = true",
        ]
    if "S3_ENDPOINT" in env:
        lines += [
            "[s3]",
            f"s3_store_host = {env['S3_ENDPOINT']}",
            f"s3_store_access_key = {env['S3_ACCESS_KEY']}",
            f"s3_store_secret_key = {env['S3_SECRET_KEY']}",
            f"s3_store_bucket = {place}",
            "s3_store_create_bucket_on_put = true",
        ]
    return "\n".join(lines) + "\n"


class _Body:
    """A seekable file-like body of ``size`` bytes for the stores' own clients."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0

    def read(self, amount: int = -1) -> bytes:
        # The same bytes at the same offset however it is read (S3 signs the body,
        # then sends it in other pieces).
        start = self.position % MiB
        count = min(self.size - self.position, MiB - start)
        if amount >= 0:
            count = min(count, amount)
        if count <= 0:
            return b""
        self.position += count
        return BLOCK[start : start + count]

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position


#: The S3 store's defaults (Glance's): a multipart upload of 10 MiB parts above 100 MiB.
S3_LARGE_OBJECT_SIZE = 100 * MiB
S3_PART_SIZE = 10 * MiB


def _s3_client(env: dict[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT"],
        aws_access_key_id=env["S3_ACCESS_KEY"],
        aws_secret_access_key=env["S3_SECRET_KEY"],
        region_name=env.get("S3_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}),
    )


def store_limits(store: str, env: dict[str, str], place: str, size: int) -> tuple[float, float]:
    """MiB/s of the store's own client library putting and getting ``size`` bytes."""
    name = f"bench-limit-{os.getpid()}"
    if store == "swift":
        import swiftclient

        conn = swiftclient.Connection(
            authurl=env["SWIFT_AUTH_URL"],
            user=env["SWIFT_USER"],
            key=env["SWIFT_KEY"],
            auth_version="1",
        )
        conn.put_container(place)
        start = time.perf_counter()
        conn.put_object(place, name, _Body(size), content_length=size)
        put = time.perf_counter() - start
        start = time.perf_counter()
        _, body = conn.get_object(place, name, resp_chunk_size=MiB)
        got = sum(len(chunk) for chunk in body)
        get = time.perf_counter() - start
        conn.delete_object(place, name)
    else:
        client = _s3_client(env)
        with contextlib.suppress(Exception):
            client.create_bucket(Bucket=place)
        start = time.perf_counter()
        if size > S3_LARGE_OBJECT_SIZE:
            # As Glimpse (and Glance) store it: a multipart upload of 10 MiB parts.
            upload = client.create_multipart_upload(Bucket=place, Key=name)["UploadId"]
            parts = []
            for number, offset in enumerate(range(0, size, S3_PART_SIZE), start=1):
                length = min(S3_PART_SIZE, size - offset)
                answer = client.upload_part(
                    Bucket=place,
                    Key=name,
                    UploadId=upload,
                    PartNumber=number,
                    Body=_Body(length),
                    ContentLength=length,
                )
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            client.complete_multipart_upload(
                Bucket=place, Key=name, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        else:
            client.put_object(Bucket=place, Key=name, Body=_Body(size), ContentLength=size)
        put = time.perf_counter() - start
        start = time.perf_counter()
        response = client.get_object(Bucket=place, Key=name)
        got = sum(len(chunk) for chunk in response["Body"].iter_chunks(MiB))
        get = time.perf_counter() - start
        client.delete_object(Bucket=place, Key=name)
    assert got == size, got
    return speed(size, put), speed(size, get)


def remove_place(env: dict[str, str], place: str) -> None:
    """Delete the bucket and container the store rows wrote their images to, with them."""
    if "S3_ENDPOINT" in env:
        client = _s3_client(env)
        with contextlib.suppress(Exception):
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=place):
                for item in page.get("Contents", []):
                    client.delete_object(Bucket=place, Key=item["Key"])
            client.delete_bucket(Bucket=place)
    if "SWIFT_AUTH_URL" in env:
        import swiftclient

        conn = swiftclient.Connection(
            authurl=env["SWIFT_AUTH_URL"],
            user=env["SWIFT_USER"],
            key=env["SWIFT_KEY"],
            auth_version="1",
        )
        # Swift's own segments, and those an S3 API on the same cluster keeps aside.
        for container in (place, f"{place}+segments"):
            with contextlib.suppress(Exception):
                for item in conn.get_container(container, full_listing=True)[1]:
                    conn.delete_object(container, item["name"])
                conn.delete_container(container)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="Image size (default 1024).")
    parser.add_argument(
        "--dir",
        help="Folder for the servers' data (default: a new one under $TMPDIR); the "
        "durable-write and cold-read limits are measured there too.",
    )
    parser.add_argument(
        "--servers",
        default="uvicorn,granian",
        help="Comma-separated: uvicorn, granian (skipped when not installed).",
    )
    parser.add_argument(
        "--store-size-mib",
        type=int,
        default=256,
        help="Image size for the Swift/S3 rows (default 256).",
    )
    options = parser.parse_args()
    size = options.size_mib * MiB
    root = Path(tempfile.mkdtemp(prefix="glimpse-bench-", dir=options.dir))
    kinds = [kind.strip() for kind in options.servers.split(",") if kind.strip()]
    if "granian" in kinds and not Path(sys.executable).with_name("granian").exists():
        print("granian is not installed; skipping it")
        kinds.remove("granian")
    try:
        cpus = os.cpu_count() or 1
        print(
            f"size {options.size_mib} MiB, data in {root}, {cpus} CPUs, "
            f"load average {os.getloadavg()[0]:.2f} at start"
        )
        # A limit is the best the machine manages: take the fastest of a few runs.
        sha512_runs = [hash_run(size, "sha512") for _ in range(3)]
        md5_runs = [hash_run(size, "md5") for _ in range(3)]
        sha512 = speed(size, min(wall for wall, _ in sha512_runs))
        md5 = speed(size, min(wall for wall, _ in md5_runs))
        disk = speed(size, min(durable_write(root, size) for _ in range(2)))
        cold = speed(size, min(cold_read(root, size) for _ in range(2)))
        loopback = speed(size, min(loopback_transfer(size) for _ in range(3)))
        zero_copy = speed(size, min(file_transfer(root, size) for _ in range(3)))
        mapped = speed(size, min(file_transfer(root, size, "mmap") for _ in range(3)))
        upload_limit = min(sha512, disk)
        # Let the disk finish writing what the limits wrote before a server competes with it.
        os.sync()
        time.sleep(5)
        first_read_limit = min(loopback, cold)
        # CPU seconds per GiB the digests cost at the least: a yardstick the machine's
        # load does not move, unlike the speeds.
        gib = size / (1 << 30)
        hash_cpu = (min(c for _, c in sha512_runs) + min(c for _, c in md5_runs)) / gib
        print(
            f"limits: sha512 {sha512:.0f} MiB/s, md5 {md5:.0f} MiB/s, durable write "
            f"{disk:.0f} MiB/s, cold read {cold:.0f} MiB/s, loopback socket {loopback:.0f} MiB/s, "
            f"sendfile of a cached file over loopback {zero_copy:.0f} MiB/s, send(2) of it from "
            f"a memory map {mapped:.0f} MiB/s ({mapped / loopback:.2f} of the loopback socket: the "
            "most a server reading the file from memory can reach)"
        )
        # What 85 % of the upload limit leaves: a GiB then lasts `at_target` seconds, the
        # machine has that many seconds on each CPU, and both digests must fit in them.
        at_target = 1024 / (0.85 * upload_limit)
        print(
            f"an upload at 85 % of its limit lasts {at_target:.2f} s per GiB: {cpus} CPUs give "
            f"{cpus * at_target:.2f} CPU s, md5 + sha512 alone take {hash_cpu:.2f}, leaving "
            f"{cpus * at_target - hash_cpu:.2f} s for the client, the kernel and the server"
        )
        for kind in kinds:
            figures = measure_server(kind, root, size)
            print_row(
                kind, figures, upload_limit, loopback, zero_copy, mapped, first_read_limit, hash_cpu
            )
        env = object_store_env()
        stores = [
            name for name, key in (("swift", "SWIFT_AUTH_URL"), ("s3", "S3_ENDPOINT")) if key in env
        ]
        if stores and "uvicorn" in kinds:
            store_size = options.store_size_mib * MiB
            place = f"glimpse-bench-{os.getpid()}"
            extra = store_conf(env, place)
            try:
                for store in stores:
                    tries = [store_limits(store, env, place, store_size) for _ in range(2)]
                    put_limit = max(put for put, _ in tries)
                    get_limit = max(get for _, get in tries)
                    figures = measure_server("uvicorn", root, store_size, store, extra)
                    print(
                        f"{store:8} upload   {figures['upload']:6.0f} MiB/s   limit "
                        f"{put_limit:6.0f} MiB/s (the store's own client)   ratio "
                        f"{figures['upload'] / put_limit:.2f}"
                    )
                    print(
                        f"{store:8} download {figures['download']:6.0f} MiB/s   limit "
                        f"{get_limit:6.0f} MiB/s (the store's own client)   ratio "
                        f"{figures['download'] / get_limit:.2f}"
                    )
                    print(
                        f"{store:8} server CPU per GiB: upload {figures['upload_cpu']:.2f} s, "
                        f"download {figures['download_cpu']:.2f} s; peak RSS growth "
                        f"{figures['rss']:.1f} MiB ({options.store_size_mib} MiB image)"
                    )
            finally:
                remove_place(env, place)
        elif not stores:
            print("no SWIFT_AUTH_URL / S3_ENDPOINT in the environment: no object store rows")
        print(f"load average {os.getloadavg()[0]:.2f} at end")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def print_row(
    kind: str,
    figures: dict[str, float],
    upload_limit: float,
    loopback: float,
    zero_copy: float,
    mapped: float,
    first_read_limit: float,
    hash_cpu: float,
) -> None:
    up, first, again = figures["upload"], figures["download"], figures["download_again"]
    print(
        f"{kind:8} upload   {up:6.0f} MiB/s   limit {upload_limit:6.0f} MiB/s "
        f"(min of sha512, durable write)   ratio {up / upload_limit:.2f}"
    )
    print(
        f"{kind:8} download {again:6.0f} MiB/s   limit {loopback:6.0f} MiB/s "
        f"(loopback socket)                ratio {again / loopback:.2f}   (cached; "
        f"{again / zero_copy:.2f} of a raw sendfile, {again / mapped:.2f} of an mmap send)"
    )
    print(
        f"{kind:8} download {first:6.0f} MiB/s   limit {first_read_limit:6.0f} MiB/s "
        f"(min of loopback, cold read)     ratio {first / first_read_limit:.2f}   (first)"
    )
    print(
        f"{kind:8} server CPU per GiB: upload {figures['upload_cpu']:.2f} s (md5 + "
        f"sha512 alone: {hash_cpu:.2f} s), download {figures['download_cpu']:.2f} s first, "
        f"{figures['download_again_cpu']:.2f} s cached"
    )
    print(f"{kind:8} peak RSS growth {figures['rss']:.1f} MiB")


if __name__ == "__main__":
    main()
