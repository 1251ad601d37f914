"""Schema migrations with Alembic, driven from code (no alembic.ini needed)."""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

_HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", _HERE)
    config.attributes["engine"] = engine
    return config


def heads() -> list[str]:
    """The newest revision(s) the code knows."""
    script = ScriptDirectory.from_config(_config_without_engine())
    return list(script.get_heads())


def _config_without_engine() -> Config:
    config = Config()
    config.set_main_option("script_location", _HERE)
    return config


def current(engine: Engine) -> list[str]:
    """The revision(s) the database is at; empty when it is not under control yet."""
    with engine.connect() as conn:
        return list(MigrationContext.configure(conn).get_current_heads())


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the database to ``revision``."""
    config = _config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def is_current(engine: Engine) -> bool:
    return sorted(current(engine)) == sorted(heads())
