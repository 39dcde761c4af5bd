"""Fresh databases for tests: a SQLite file, or a new database on the PostgreSQL / MariaDB servers
named by MESHGATE_TEST_POSTGRES_URL / MESHGATE_TEST_MYSQL_URL (skipped, with the reason, when unset)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from meshgate.db.engine import async_url

BACKENDS = ("sqlite", "postgresql", "mysql")
_ENV = {"postgresql": "MESHGATE_TEST_POSTGRES_URL", "mysql": "MESHGATE_TEST_MYSQL_URL"}


def server_url(backend: str) -> str:
    """The admin URL of a database server, or skip the test saying which variable is missing."""
    variable = _ENV[backend]
    url = os.environ.get(variable)
    if not url:
        reason = f"{variable} is not set: {backend} tests need a running {backend} server"
        if os.environ.get("MESHGATE_REQUIRE_ALL_BACKENDS"):
            pytest.fail(reason + " (MESHGATE_REQUIRE_ALL_BACKENDS is set)")
        pytest.skip(reason)
    return url


async def _admin(backend: str, admin_url: str, statement: str) -> None:
    engine = create_async_engine(async_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A plain (`sqlite:///`, `postgresql://`, `mysql://`) URL of a new, empty database, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / f'meshgate-{uuid.uuid4().hex[:8]}.db'}"
        return
    admin_url = server_url(backend)
    name = f"meshgate_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(backend, admin_url, f"CREATE DATABASE {name}"))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        drop = f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if backend == "postgresql" else "")
        asyncio.run(_admin(backend, admin_url, drop))


async def drop_database_now(backend: str, url: str) -> None:
    """Drop a database while a gateway still uses it (to show readiness failing)."""
    name = make_url(url).database
    admin_url = server_url(backend)
    await _admin(backend, admin_url, f"DROP DATABASE {name}" + (" WITH (FORCE)" if backend == "postgresql" else ""))
