"""Fixtures of the identity tests that use the services directly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from meshgate.db.database import Database
from meshgate.db.migrate import apply_migrations


@pytest.fixture
async def db(tmp_db: str) -> AsyncIterator[Database]:
    """A migrated, empty database on the current backend."""
    database = Database(tmp_db)
    await apply_migrations(database.engine)
    yield database
    await database.close()
