"""Database engines for SQLite (default), PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from meshgate.errors import ConfigurationError

log = logging.getLogger(__name__)

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mysql+aiomysql",
}


def async_url(url: str) -> str:
    """Turn the plain `sqlite:///`, `postgresql://`, `mysql://` forms into their async-driver URLs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(f"DATABASE_URL {url!r} is not a URL; use sqlite:///, postgresql:// or mysql://")
    base = scheme.split("+", 1)[0]
    driver = _ASYNC_DRIVERS.get(base)
    if driver is None:
        raise ConfigurationError(
            f"DATABASE_URL scheme {scheme!r} is not supported; use sqlite:///, postgresql:// or mysql://"
        )
    try:
        return str(make_url(f"{driver}://{rest}").render_as_string(hide_password=False))
    except ArgumentError as exc:
        raise ConfigurationError(f"DATABASE_URL is malformed: {exc}") from exc


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine with the per-dialect settings meshgate relies on."""
    full = async_url(url)
    dialect = full.split("+", 1)[0]
    kwargs: dict[str, Any] = {}
    if dialect == "sqlite":
        # One file, one writer: a small pool avoids "database is locked" storms; WAL lets readers go on.
        kwargs["connect_args"] = {"timeout": 30}
        if ":memory:" in full or full.endswith("://"):
            kwargs["poolclass"] = NullPool
        _private_sqlite_file(make_url(full).database)
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800)
    engine = create_async_engine(full, **kwargs)
    if dialect == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _private_sqlite_file(database: str | None) -> None:
    """Create the database file 0600 before SQLite opens it (its WAL and SHM files take the same mode).

    The file holds password hashes and audit payloads. An existing file readable by others is tightened."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for path in (Path(database), Path(f"{database}-wal"), Path(f"{database}-shm")):
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
                if mode & 0o077:
                    path.chmod(mode & 0o700)
                    log.warning("%s was readable by other users (mode %o): now %o", path, mode, mode & 0o700)
            except FileNotFoundError:
                continue
    except FileNotFoundError:  # its directory does not exist: SQLite will say so when it connects
        return


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (services return plain values)."""
    return async_sessionmaker(engine, expire_on_commit=False)
