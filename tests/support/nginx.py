"""A real nginx terminating TLS in front of a test server, with a certificate made here."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.server import free_port

#: nginx.conf around the ``location`` blocks a test passes: TLS on 127.0.0.1, bodies
#: streamed both ways, no temporary files outside the test's folder.
_CONF = """
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        client_max_body_size 0;
        proxy_http_version 1.1;
        proxy_request_buffering off;
        proxy_buffering off;
{locations}
    }}
}}
"""


def self_signed(folder: Path, *, with_address: bool = True) -> Path:
    """A certificate for localhost and 127.0.0.1 (only localhost without ``with_address``)
    and its key in ``folder``; returns the certificate (``cert.pem``; the key is ``key.pem``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost")]
                + ([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] if with_address else [])
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path = folder / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail("nginx is missing: install nginx (Debian: nginx-light); scripts/test does")
    return found


def _wait_for_tls(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                with context.wrap_socket(sock, server_hostname="localhost"):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx did not listen: {log.read_text(errors='replace')}")


@contextlib.contextmanager
def tls_proxy(folder: Path, locations: str) -> Iterator[int]:
    """Run nginx with ``locations`` (nginx ``location`` blocks) over TLS; yield its port.

    The certificate (:func:`self_signed`) must already be in ``folder``. A port taken
    between choosing and binding it is tried again.
    """
    binary = _binary()
    conf = folder / "nginx.conf"
    for attempt in range(3):
        port = free_port()
        conf.write_text(_CONF.format(dir=folder, port=port, locations=locations))
        with (folder / "nginx.out").open("wb") as out:
            process = subprocess.Popen(
                [binary, "-p", str(folder), "-c", str(conf)], stdout=out, stderr=out
            )
        try:
            _wait_for_tls(port, process, folder / "error.log")
            break
        except AssertionError:
            process.terminate()
            process.wait()
            if attempt == 2:
                raise
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
