"""Users: email and argon2id password."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import users
from meshgate.errors import Conflict
from meshgate.identity import _rows
from meshgate.identity.models import User
from meshgate.identity.passwords import hash_password, verify_password
from meshgate.identity.validation import clean_email, clean_name


class UserService:
    """Creates and finds users."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, email: str, *, password: str | None = None, name: str | None = None) -> User:
        """A new user; a user without a password cannot log in until one is set."""
        address = clean_email(email)
        display = clean_name(name, field="user name", limit=200) if name else address.split("@", 1)[0]
        password_hash = hash_password(password) if password is not None else None
        if await self.find_by_email(address) is not None:
            raise Conflict(f"a user with email {address} already exists")
        when = utc_now()
        user_id = new_id()
        row = users.insert().values(
            id=user_id, email=address, name=display, password_hash=password_hash, created_at=when, updated_at=when
        )
        try:
            async with self._session.begin_nested():
                await self._session.execute(row)
        except IntegrityError as exc:
            raise Conflict(f"a user with email {address} already exists") from exc
        return User(id=user_id, email=address, name=display, created_at=when)

    async def find_by_email(self, email: str) -> User | None:
        row = (await self._session.execute(select(users).where(users.c.email == email.strip().lower()))).first()
        return None if row is None else _rows.user(row)

    async def get(self, user_id: str) -> User | None:
        row = (await self._session.execute(select(users).where(users.c.id == user_id))).first()
        return None if row is None else _rows.user(row)

    async def check_password(self, email: str, password: str) -> User | None:
        """The user when the password matches, else None (same answer for unknown emails)."""
        row = (await self._session.execute(select(users).where(users.c.email == email.strip().lower()))).first()
        if row is None or row.password_hash is None:
            return None
        return _rows.user(row) if verify_password(row.password_hash, password) else None
