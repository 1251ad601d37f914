"""A real Keystone for the auth tests: PyPI's ``keystone`` in its own venv, SQLite, fernet tokens.

The recipe is shared/tools/tempest-image.sh's, made self-contained and quick to repeat:

* the venv lives in a stable folder (``$GLIMPSE_KEYSTONE_VENV``, default
  /tmp/glimpse-keystone-venv) and is built once, under a file lock, by pip from PyPI;
* next to it a *template* is built once per recipe version: ``keystone-manage
  db_sync`` and ``bootstrap``, fernet and credential keys, and the identities the
  tests use, created through Keystone's API (their ids kept in ``ids.json``);
* each test session copies the template into its own folder and runs gunicorn on a
  free loopback port (gunicorn reads its options from ``./gunicorn.conf.py``: Keystone
  parses ``sys.argv`` itself and would reject gunicorn's arguments). One worker with
  threads, so Keystone's in-memory cache stays coherent.

Identities (password ``secret`` for every user, domain Default unless said):
``admin`` (admin of project ``admin`` and of the system), ``glance`` (role ``service``
in project ``service``), project ``alpha`` with ``alice`` (member) and ``ann``
(reader), project ``beta`` with ``bob`` (member), and in domain ``glimpse-dom`` project
``gamma`` with ``carol`` (member). Keystone's implied roles put ``member`` and ``reader``
in an admin's token and ``reader`` in a member's.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port

REQUIREMENTS = ("keystone==30.0.0", "gunicorn==27.0.1")
PASSWORD = "secret"
#: Seconds the tokens of the short-lived companion Keystone last.
SHORT_LIFETIME = 5
#: Bumped whenever the template recipe changes, so stale templates are not reused.
_TEMPLATE_VERSION = "2"
_START_TIMEOUT = 60.0


class KeystoneUnavailable(Exception):
    """Keystone could not be installed or started; ``skip``: skip the tests rather than fail."""

    def __init__(self, message: str, skip: bool = False) -> None:
        super().__init__(message)
        self.skip = skip


def venv_dir() -> Path:
    return Path(os.environ.get("GLIMPSE_KEYSTONE_VENV", "/tmp/glimpse-keystone-venv"))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every process (pytest-xdist workers, parallel runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def _index_reachable() -> bool:
    """Whether the package index pip would use answers at all."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")
    try:
        httpx.get(index.rstrip("/") + "/keystone/", timeout=15.0, follow_redirects=True)
    except httpx.HTTPError:
        return False
    return True


def ensure_venv() -> Path:
    """The venv with Keystone and gunicorn, built once; raises KeystoneUnavailable."""
    venv = venv_dir()
    marker = venv / ".glimpse-ready"
    wanted = "\n".join(REQUIREMENTS)
    with _locked(venv.with_name(venv.name + ".lock")):
        if marker.exists() and marker.read_text() == wanted:
            return venv
        if not (venv / "bin" / "python").exists():
            result = _run([sys.executable, "-m", "venv", str(venv)])
            if result.returncode != 0:
                raise KeystoneUnavailable(f"python -m venv failed:\n{result.stderr[-2000:]}")
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *REQUIREMENTS]
        result = _run(pip, timeout=1200)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-3000:]
            if not _index_reachable():
                lines = [line for line in tail.splitlines() if line.strip()]
                errors = [line for line in lines if line.startswith("ERROR")] or lines or [""]
                last = errors[-1]
                raise KeystoneUnavailable(
                    f"PyPI is unreachable, so Keystone cannot be installed (pip: {last})",
                    skip=True,
                )
            raise KeystoneUnavailable(f"pip install {' '.join(REQUIREMENTS)} failed:\n{tail}")
        marker.write_text(wanted)
    return venv


def _keystone_conf(folder: Path, expiration: int) -> str:
    return f"""[DEFAULT]
debug = false
log_file = {folder}/keystone.log

[database]
connection = sqlite:///{folder}/keystone.db?timeout=60

[token]
provider = fernet
expiration = {expiration}

[fernet_tokens]
key_repository = {folder}/fernet-keys/

[fernet_receipts]
key_repository = {folder}/fernet-keys/

[credential]
key_repository = {folder}/credential-keys/

[cache]
# Without a cache Keystone runs hundreds of queries per token validation. The
# in-memory cache is coherent because each Keystone here is a single process.
enabled = true
backend = oslo_cache.dict

[identity]
# Cheap hashes: these passwords protect nothing, and every token costs one check.
password_hash_algorithm = bcrypt
password_hash_rounds = 4
"""


# SQLite under concurrent requests: start every transaction with BEGIN IMMEDIATE so
# that writers queue on the busy timeout instead of failing with "database is locked"
# (see shared/tools/tempest-image.sh).
_SQLITE_HOOK = """

def on_starting(server):
    import sqlite3
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _sqlite_connect(dbapi_conn, rec):
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA busy_timeout = 60000")

    @event.listens_for(Engine, "begin")
    def _sqlite_begin(conn):
        if conn.dialect.name == "sqlite" and "in_transaction" not in conn.info:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.info["in_transaction"] = True
"""


def _manage(venv: Path, conf: Path, *args: str) -> None:
    result = _run([str(venv / "bin" / "keystone-manage"), "--config-file", str(conf), *args])
    if result.returncode != 0:
        raise KeystoneUnavailable(f"keystone-manage {args[0]} failed:\n{result.stderr[-3000:]}")


def ensure_template(venv: Path) -> Path:
    """Keystone's database, keys and test identities, built once per venv and recipe.

    ``keystone-manage`` migrates and bootstraps it; a Keystone started on it creates
    the identities, whose ids are kept in ``ids.json``.
    """
    template = venv / f"template-{_TEMPLATE_VERSION}"
    with _locked(venv / "template.lock"):
        if (template / ".ready").exists():
            return template
        shutil.rmtree(template, ignore_errors=True)
        for sub in ("fernet-keys", "credential-keys"):
            (template / sub).mkdir(parents=True, mode=0o700)
        conf = template / "keystone.conf"
        conf.write_text(_keystone_conf(template, 3600))
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        owner = ("--keystone-user", user, "--keystone-group", group)
        _manage(venv, conf, "fernet_setup", *owner)
        _manage(venv, conf, "credential_setup", *owner)
        _manage(venv, conf, "db_sync")
        _manage(venv, conf, "bootstrap", "--bootstrap-password", PASSWORD)
        with contextlib.closing(sqlite3.connect(template / "keystone.db")) as db:
            db.execute("PRAGMA journal_mode=WAL")
        process = KeystoneProcess(venv, template)
        process.start()
        try:
            server = Keystone(process)
            server.create_identities()
            server.close()
        finally:
            process.stop()
        with contextlib.closing(sqlite3.connect(template / "keystone.db")) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (template / "ids.json").write_text(json.dumps(server.ids))
        (template / ".ready").write_text("")
    return template


class KeystoneProcess:
    """One gunicorn serving Keystone from ``folder`` on a loopback port."""

    def __init__(self, venv: Path, folder: Path, expiration: int = 3600) -> None:
        self.venv = venv
        self.folder = folder
        self.expiration = expiration
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def launch(self) -> None:
        """Start gunicorn on a free port without waiting for it (see :meth:`ready`)."""
        port = free_port()
        etc = self.folder / f"etc-{port}"
        etc.mkdir(parents=True)
        (etc / "keystone.conf").write_text(_keystone_conf(self.folder, self.expiration))
        (etc / "gunicorn.conf.py").write_text(
            'wsgi_app = "keystone.wsgi.api:application"\n'
            f'bind = "127.0.0.1:{port}"\n'
            "workers = 1\nthreads = 8\ntimeout = 120\n"
            f'errorlog = "{self.folder}/gunicorn-{port}.log"\n'
            "control_socket_disable = True\n" + _SQLITE_HOOK
        )
        with (self.folder / f"gunicorn-{port}.out").open("wb") as log:
            self.process = subprocess.Popen(
                [str(self.venv / "bin" / "gunicorn")],  # no argv: see the module docstring
                cwd=etc,
                env={**os.environ, "OS_KEYSTONE_CONFIG_DIR": str(etc)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{port}"

    def ready(self) -> bool:
        """Wait until the launched Keystone answers; False if it died or never did."""
        deadline = time.monotonic() + _START_TIMEOUT
        while self.process is not None and time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(self.url + "/v3", timeout=2.0, trust_env=False).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    def start(self) -> None:
        """Launch and wait, trying other ports if one was taken meanwhile."""
        for _ in range(3):
            self.launch()
            if self.ready():
                return
            self.stop()
        raise KeystoneUnavailable(f"Keystone did not start; see {self.folder}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Keystone:
    """A running Keystone with the test identities; issues and revokes tokens."""

    def __init__(self, process: KeystoneProcess) -> None:
        self.process = process
        self.url = process.url
        self.http = httpx.Client(base_url=self.url, timeout=30.0, trust_env=False)
        ids = process.folder / "ids.json"
        self.ids: dict[str, str] = json.loads(ids.read_text()) if ids.exists() else {}
        #: A second Keystone issuing short-lived tokens, when the fixture launched one.
        self.companion: KeystoneProcess | None = None

    # -- tokens ---------------------------------------------------------------------

    def token(
        self,
        user: str,
        project: str | None = None,
        *,
        domain: str = "Default",
        project_domain: str = "Default",
        scope: dict[str, Any] | None = None,
    ) -> str:
        """A new token of ``user``, scoped to ``project`` (or ``scope``, or unscoped)."""
        return self.token_body(
            user, project, domain=domain, project_domain=project_domain, scope=scope
        )[0]

    def token_body(
        self,
        user: str,
        project: str | None = None,
        *,
        domain: str = "Default",
        project_domain: str = "Default",
        scope: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        auth: dict[str, Any] = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"name": domain}, "password": PASSWORD}
                },
            }
        }
        if scope is not None:
            auth["scope"] = scope
        elif project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"name": project_domain}}}
        response = self.http.post("/v3/auth/tokens?nocatalog", json={"auth": auth})
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"], response.json()

    def admin_token(self) -> str:
        return self.token("admin", "admin")

    def revoke(self, token: str) -> None:
        response = self.http.delete(
            "/v3/auth/tokens",
            headers={"X-Auth-Token": self.admin_token(), "X-Subject-Token": token},
        )
        assert response.status_code == 204, response.text

    # -- set-up ---------------------------------------------------------------------

    def _call(self, admin: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.request(method, path, headers={"X-Auth-Token": admin}, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.text}"
        return response.json() if response.content else {}

    def create_identities(self) -> None:
        admin = self.admin_token()
        roles = {r["name"]: r["id"] for r in self._call(admin, "GET", "/v3/roles")["roles"]}
        for name in ("admin", "member", "reader", "service"):
            if name not in roles:
                roles[name] = self._call(admin, "POST", "/v3/roles", json={"role": {"name": name}})[
                    "role"
                ]["id"]
        domain = self._call(admin, "POST", "/v3/domains", json={"domain": {"name": "glimpse-dom"}})[
            "domain"
        ]["id"]
        self.ids["domain:glimpse-dom"] = domain
        self.ids["domain:Default"] = "default"
        projects = {
            "admin": None,
            "service": "default",
            "alpha": "default",
            "beta": "default",
            "gamma": domain,
        }
        for name, domain_id in projects.items():
            if domain_id is None:
                found = self._call(admin, "GET", "/v3/projects", params={"name": name})
                self.ids[f"project:{name}"] = found["projects"][0]["id"]
                continue
            body = {"project": {"name": name, "domain_id": domain_id}}
            self.ids[f"project:{name}"] = self._call(admin, "POST", "/v3/projects", json=body)[
                "project"
            ]["id"]
        found = self._call(admin, "GET", "/v3/users", params={"name": "admin"})
        self.ids["user:admin"] = found["users"][0]["id"]
        grants = [
            ("glance", "default", "service", "service"),
            ("alice", "default", "alpha", "member"),
            ("ann", "default", "alpha", "reader"),
            ("bob", "default", "beta", "member"),
            ("carol", domain, "gamma", "member"),
        ]
        for user, domain_id, project, role in grants:
            body = {"user": {"name": user, "domain_id": domain_id, "password": PASSWORD}}
            user_id = self._call(admin, "POST", "/v3/users", json=body)["user"]["id"]
            self.ids[f"user:{user}"] = user_id
            project_id = self.ids[f"project:{project}"]
            self._call(
                admin, "PUT", f"/v3/projects/{project_id}/users/{user_id}/roles/{roles[role]}"
            )

    def close(self) -> None:
        self.http.close()


def start(folder: Path) -> KeystoneProcess:
    """Keystone serving its own copy of the template from ``folder``."""
    venv = ensure_venv()
    source = ensure_template(venv)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("keystone.db", "ids.json"):
        shutil.copy2(source / name, folder / name)
    for sub in ("fernet-keys", "credential-keys"):
        shutil.copytree(source / sub, folder / sub)
    process = KeystoneProcess(venv, folder)
    process.start()
    return process
