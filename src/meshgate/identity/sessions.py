"""Browser sessions: a random cookie value whose SHA-256 is stored with the user and an expiry.

Logging out deletes the row, so a stolen cookie stops working at once; deleting a user ends their sessions
(foreign key cascade).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.database import rows_changed
from meshgate.db.rows import utc_now
from meshgate.db.tables import browser_sessions, users
from meshgate.errors import NotFound
from meshgate.identity import _rows
from meshgate.identity.models import User
from meshgate.identity.service import hash_key

COOKIE = "meshgate_session"


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """One signed-in browser of a user. `id` is the SHA-256 of the cookie: it names the session, it cannot log in."""

    id: str
    created_at: datetime
    expires_at: datetime
    current: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "createdAt": self.created_at.isoformat().replace("+00:00", "Z"),
            "expiresAt": self.expires_at.isoformat().replace("+00:00", "Z"),
            "current": self.current,
        }


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

    async def list(self, user_id: str, current: str | None = None) -> list[BrowserSession]:
        """The user's sessions that have not expired, newest first; `current` marks the caller's own cookie."""
        mine = hash_key(current) if current else None
        rows = await self._session.execute(
            select(browser_sessions)
            .where(browser_sessions.c.user_id == user_id, browser_sessions.c.expires_at > self._clock())
            .order_by(browser_sessions.c.created_at.desc(), browser_sessions.c.id_hash)
        )
        return [BrowserSession(row.id_hash, row.created_at, row.expires_at, row.id_hash == mine) for row in rows]

    async def revoke(self, user_id: str, session_id: str) -> None:
        """End one of the user's own sessions (another person's answers as not found)."""
        result = await self._session.execute(
            delete(browser_sessions).where(
                browser_sessions.c.user_id == user_id, browser_sessions.c.id_hash == session_id[:64]
            )
        )
        if not rows_changed(result):
            raise NotFound(f"session {session_id[:64]} not found")

    async def end_all(self, user_id: str, *, keep: str | None = None) -> None:
        """End every session of the user but the one whose cookie is `keep` (after a password change or reset)."""
        query = delete(browser_sessions).where(browser_sessions.c.user_id == user_id)
        if keep:
            query = query.where(browser_sessions.c.id_hash != hash_key(keep))
        await self._session.execute(query)
