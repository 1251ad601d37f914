"""Engines and sessions for SQLite, PostgreSQL and MariaDB/MySQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(
    url: str, pool_size: int = 5, max_overflow: int = 50, recycle: int = 3600
) -> Engine:
    """Create an engine tuned for the database behind ``url``."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs.update(
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_recycle=recycle,
            pool_pre_ping=True,
        )
        if parsed.get_backend_name() == "mysql":
            kwargs["connect_args"] = {"charset": "utf8mb4"}
            if "charset" not in parsed.query:
                url = str(parsed.update_query_dict({"charset": "utf8mb4"}).render_as_string(False))
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    # WAL lets readers run beside the single writer; BEGIN IMMEDIATE makes a
    # writer wait for the lock up front instead of failing on upgrade.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, **engine_args: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_args)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        session = self._sessions()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
