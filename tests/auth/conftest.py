"""Fixtures of the auth tests: a real Keystone per test session, and Glimpse configured for it.

Only the tests that use the ``keystone`` fixture need it; they are skipped (with the
reason in the summary) when Keystone cannot be installed because PyPI is unreachable,
and fail for any other installation or start-up problem.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.auth import keystone_server
from tests.auth.keystone_server import Keystone, KeystoneProcess
from tests.support import databases
from tests.support.client import Api

_TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite only: who the caller is does not depend on the database backend."""
    url = databases.create_database("sqlite", str(tmp_path_factory.mktemp("auth-db")))
    yield url
    databases.drop_database(url)


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """Keystone with the identities described in tests/auth/keystone_server.py."""
    began = time.monotonic()
    try:
        venv = keystone_server.ensure_venv()
        _TIMINGS["venv (pip; first run only)"] = time.monotonic() - began
        mark = time.monotonic()
        keystone_server.ensure_template(venv)
        _TIMINGS["template (db_sync, bootstrap, identities; first run only)"] = (
            time.monotonic() - mark
        )
        mark = time.monotonic()
        process = keystone_server.start(tmp_path_factory.mktemp("keystone"))
    except keystone_server.KeystoneUnavailable as exc:
        if exc.skip:
            pytest.skip(f"no Keystone to test against: {exc}")
        raise
    _TIMINGS["start"] = time.monotonic() - mark
    _TIMINGS["total"] = time.monotonic() - began
    # The short-lived companion (see short_lived_keystone) starts while tests run.
    companion = KeystoneProcess(
        process.venv, process.folder, expiration=keystone_server.SHORT_LIFETIME
    )
    companion.launch()
    server = Keystone(process)
    server.companion = companion
    try:
        yield server
    finally:
        server.close()
        companion.stop()
        process.stop()


@pytest.fixture(scope="session")
def short_lived_keystone(keystone: Keystone) -> Iterator[Keystone]:
    """A second Keystone on the same database and keys whose tokens expire in SHORT_LIFETIME s.

    Its tokens are valid for the main Keystone (fernet tokens carry their expiry), so
    Glimpse, validating against the main one, sees them expire.
    """
    companion = keystone.companion
    assert companion is not None
    if not companion.ready():
        companion.stop()
        companion.start()
    server = Keystone(companion)
    try:
        yield server
    finally:
        server.close()


def keystone_options(keystone: Keystone, **extra: Any) -> dict[str, Any]:
    """``make_api`` overrides for the keystone flavor with the ``glance`` service user."""
    options: dict[str, Any] = {
        "paste_deploy__flavor": "keystone",
        "keystone_authtoken__auth_type": "password",
        "keystone_authtoken__auth_url": keystone.url + "/v3",
        "keystone_authtoken__username": "glance",
        "keystone_authtoken__password": keystone_server.PASSWORD,
        "keystone_authtoken__project_name": "service",
        "keystone_authtoken__user_domain_name": "Default",
        "keystone_authtoken__project_domain_name": "Default",
        "keystone_authtoken__www_authenticate_uri": keystone.url,
    }
    options.update(extra)
    return options


@pytest.fixture
def keystone_api(keystone: Keystone, make_api: Callable[..., Api]) -> Callable[..., Api]:
    """Glimpse in-process with the keystone flavor; keyword arguments add overrides."""

    def factory(**extra: Any) -> Api:
        return make_api(**keystone_options(keystone, **extra))

    return factory


def as_token(api: Api, token: str | None) -> Api:
    """The same client sending ``token`` as X-Auth-Token (or no token)."""
    return Api(api.client, {"X-Auth-Token": token} if token else {})


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _TIMINGS:
        parts = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in _TIMINGS.items())
        terminalreporter.write_line(f"keystone fixture: {parts}")
