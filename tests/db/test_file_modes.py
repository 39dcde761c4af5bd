"""What meshgate writes to disk on SQLite is readable by its own user only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from meshgate.db.database import Database
from meshgate.db.migrate import apply_migrations
from meshgate.settings import load_settings

pytestmark = pytest.mark.anyio


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.finding(22)
async def test_data_dir_is_0700_and_database_files_are_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    settings = load_settings({"MESHGATE_DATA_DIR": str(data_dir)})
    assert _mode(data_dir) == 0o700
    db = Database(settings.database_url)
    try:
        await apply_migrations(db.engine)
        async with db.engine.connect() as connection:  # a live connection keeps the WAL and SHM files
            database = data_dir / "meshgate.db"
            files = [database, database.with_name("meshgate.db-wal"), database.with_name("meshgate.db-shm")]
            assert {path.name: _mode(path) for path in files if path.exists()} == {path.name: 0o600 for path in files}
            await connection.close()
    finally:
        await db.close()
    for name in ("secret.key", "encryption.key"):
        assert _mode(data_dir / name) == 0o600


@pytest.mark.finding(22)
async def test_a_database_file_elsewhere_is_created_0600(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = Database(f"sqlite:///{path}")
    try:
        await apply_migrations(db.engine)
    finally:
        await db.close()
    assert _mode(path) == 0o600
