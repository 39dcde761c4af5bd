"""Alembic environment: runs migrations over the async engine meshgate uses."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from meshgate.db.engine import create_engine
from meshgate.db.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(config.get_main_option("meshgate.database_url") or "")
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(url=config.get_main_option("meshgate.database_url"), target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


existing = config.attributes.get("connection")
if context.is_offline_mode():
    _run_offline()
elif existing is not None:
    _run(existing)
else:
    asyncio.run(_run_async())
