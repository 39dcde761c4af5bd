"""Migration 0008 (verified emails, invitations for one user) keeps what was there before it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, insert, select

from meshgate.db.database import Database
from meshgate.db.migrate import alembic_config, apply_migrations
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import invitations, users
from meshgate.identity.service import OrganizationService, UserService

pytestmark = pytest.mark.anyio


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    return run


async def test_existing_users_and_invitations_survive_and_stay_unverified(tmp_db: str) -> None:
    db = Database(tmp_db)
    now = utc_now()
    user_id = new_id()
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(_upgrade_to("0007"))
        async with db.transaction() as session:
            await session.execute(
                insert(users).values(id=user_id, email="old@example.com", name="old", created_at=now, updated_at=now)
            )
            org = await OrganizationService(session).create("Before", user_id)
            await session.execute(insert(invitations).values(_invitation(org.id, "open")))
        assert (await apply_migrations(db.engine))[0] == "0008"  # and those after it
        async with db.transaction() as session:
            assert (await session.execute(select(invitations.c.token_hash))).scalars().all() == ["open" * 16]
            user = await UserService(session).get(user_id)
            assert user is not None and user.email == "old@example.com" and not user.email_verified
            assert await UserService(session).find_verified("old@example.com") is None
            await session.execute(insert(invitations).values({**_invitation(org.id, "mine"), "user_id": user_id}))
        async with db.transaction() as session:
            await session.execute(users.delete().where(users.c.id == user_id))
        async with db.transaction() as session:  # an invitation for one user goes with them
            assert (await session.execute(select(invitations.c.token_hash))).scalars().all() == ["open" * 16]
    finally:
        await db.close()


def _invitation(organization_id: str, token: str) -> dict[str, Any]:
    now = utc_now()
    return {
        "id": new_id(),
        "organization_id": organization_id,
        "role": "member",
        "token_hash": token * 16,
        "created_at": now,
        "expires_at": now + timedelta(days=1),
    }
