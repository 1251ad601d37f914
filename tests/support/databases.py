"""Real databases for tests: SQLite always, PostgreSQL and MariaDB when their URLs are given.

``GLIMPSE_TEST_POSTGRESQL_URL`` and ``GLIMPSE_TEST_MYSQL_URL`` name a server URL with a
user allowed to create databases (e.g. ``postgresql+psycopg://postgres@127.0.0.1/postgres``).
Each test session creates its own uniquely named database there and drops it at the end.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from glimpse.db import migrate
from glimpse.db.engine import Database
from glimpse.db.models import Base

ENV = {"postgresql": "GLIMPSE_TEST_POSTGRESQL_URL", "mysql": "GLIMPSE_TEST_MYSQL_URL"}


def backends() -> list[str]:
    found = ["sqlite"]
    found += [name for name, var in ENV.items() if os.environ.get(var)]
    return found


def create_database(backend: str, tmpdir: str) -> str:
    """A fresh, migrated database; returns its URL."""
    if backend == "sqlite":
        url = f"sqlite:///{tmpdir}/glimpse-test-{uuid.uuid4().hex[:8]}.sqlite"
    else:
        server = make_url(os.environ[ENV[backend]])
        name = f"glimpse_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            extra = " CHARACTER SET utf8mb4" if backend == "mysql" else ""
            conn.execute(text(f"CREATE DATABASE {name}{extra}"))
        admin.dispose()
        url = server.set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    migrate.upgrade(db.engine)
    db.dispose()
    return url


def drop_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return
    backend = parsed.get_backend_name()
    server = make_url(os.environ[ENV[backend]])
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if backend == "postgresql":
            conn.execute(text(f"DROP DATABASE IF EXISTS {parsed.database} WITH (FORCE)"))
        else:
            conn.execute(text(f"DROP DATABASE IF EXISTS {parsed.database}"))
    admin.dispose()


_ENGINES: dict[str, Engine] = {}


def empty_tables(url: str) -> None:
    """Remove every row, children first, so each test starts from an empty database."""
    engine = _ENGINES.get(url)
    if engine is None:
        engine = _ENGINES[url] = create_engine(url, poolclass=NullPool)
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(table.name for table in tables)
            conn.execute(text(f"TRUNCATE {names}"))
        else:
            for table in tables:
                conn.execute(table.delete())
