"""Apply Alembic migrations programmatically (used by `meshgate migrate`, `serve` and tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

_SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str = "") -> Config:
    """An Alembic config pointing at meshgate's migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("meshgate.database_url", database_url)
    return config


async def apply_migrations(engine: AsyncEngine) -> list[str]:
    """Upgrade the database to the newest revision; returns the revisions applied."""
    async with engine.begin() as connection:
        before = await connection.run_sync(_current)
        await connection.run_sync(_upgrade)
        after = await connection.run_sync(_current)
    return _between(before, after)


async def pending_migrations(engine: AsyncEngine) -> list[str]:
    """Revisions not yet applied, oldest first."""
    async with engine.connect() as connection:
        current = await connection.run_sync(_current)
    return _between(current, ScriptDirectory.from_config(alembic_config()).get_current_head())


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _between(start: str | None, end: str | None) -> list[str]:
    if end is None or start == end:
        return []
    scripts = ScriptDirectory.from_config(alembic_config())
    revisions = [rev.revision for rev in scripts.iterate_revisions(end, start or "base")]
    return list(reversed(revisions))
