"""Apply Alembic migrations programmatically (used by `meshgate migrate`, `serve` and tests).

Alembic itself (and the twelve scripts it loads) costs a tenth of a second or more at every start, so a
database already at the newest revision is recognised with one query and Alembic is loaded only when
there is something to apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

_SCRIPTS = Path(__file__).with_name("migrations")
_VERSION_TABLE = "alembic_version"


def newest_revision() -> str:
    """The head revision: each script is `versions/NNNN_name.py` with revision "NNNN" (a test pins this)."""
    return max(path.name[:4] for path in (_SCRIPTS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def alembic_config(database_url: str = "") -> Config:
    """An Alembic config pointing at meshgate's migration scripts."""
    from alembic.config import Config  # noqa: PLC0415  (Alembic is loaded only when a migration runs)

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("meshgate.database_url", database_url)
    return config


async def apply_migrations(engine: AsyncEngine) -> list[str]:
    """Upgrade the database to the newest revision; returns the revisions applied."""
    async with engine.begin() as connection:
        before = await connection.run_sync(_current)
        if before == newest_revision():
            return []
        await connection.run_sync(_upgrade)
        after = await connection.run_sync(_current)
    return _between(before, after)


async def pending_migrations(engine: AsyncEngine) -> list[str]:
    """Revisions not yet applied, oldest first."""
    async with engine.connect() as connection:
        current = await connection.run_sync(_current)
    return _between(current, newest_revision())


def _upgrade(connection: Connection) -> None:
    from alembic import command  # noqa: PLC0415  (Alembic is loaded only when a migration runs)

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current(connection: Connection) -> str | None:
    if not inspect(connection).has_table(_VERSION_TABLE):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def _between(start: str | None, end: str | None) -> list[str]:
    if end is None or start == end:
        return []
    from alembic.script import ScriptDirectory  # noqa: PLC0415  (Alembic is loaded only when a migration runs)

    scripts = ScriptDirectory.from_config(alembic_config())
    revisions = [rev.revision for rev in scripts.iterate_revisions(end, start or "base")]
    return list(reversed(revisions))
