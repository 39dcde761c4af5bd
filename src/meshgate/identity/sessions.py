"""Browser sessions: a random cookie value whose SHA-256 is stored with the user and an expiry.

Logging out deletes the row, so a stolen cookie stops working at once; deleting a user ends their sessions
(foreign key cascade).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.rows import utc_now
from meshgate.db.tables import browser_sessions, users
from meshgate.identity import _rows
from meshgate.identity.models import User
from meshgate.identity.service import hash_key

COOKIE = "meshgate_session"


class BrowserSessionService:
    def __init__(self, session: AsyncSession, clock: Callable[[], datetime] = utc_now) -> None:
        self._session = session
        self._clock = clock

    async def start(self, user_id: str, lifetime_s: int) -> str:
        """A new session for `user_id`; the returned value goes into the cookie and nowhere else."""
        value = "mgs_" + secrets.token_urlsafe(32)
        now = self._clock()
        await self._session.execute(
            browser_sessions.insert().values(
                id_hash=hash_key(value), user_id=user_id, created_at=now, expires_at=now + timedelta(seconds=lifetime_s)
            )
        )
        # Expired sessions of anyone are removed while we are here (cheap: the table is small).
        await self._session.execute(delete(browser_sessions).where(browser_sessions.c.expires_at < now))
        return value

    async def user(self, value: str | None) -> User | None:
        """The user a cookie value belongs to, while the session lasts."""
        if not value or len(value) > 100:
            return None
        row = (
            await self._session.execute(
                select(users, browser_sessions.c.expires_at)
                .join(browser_sessions, browser_sessions.c.user_id == users.c.id)
                .where(browser_sessions.c.id_hash == hash_key(value))
            )
        ).first()
        if row is None or row.expires_at <= self._clock():
            return None
        return _rows.user(row)

    async def end(self, value: str | None) -> None:
        if value:
            await self._session.execute(delete(browser_sessions).where(browser_sessions.c.id_hash == hash_key(value)))
