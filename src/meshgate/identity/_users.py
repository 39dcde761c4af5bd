"""Users: email, argon2id password hash, and whether the email address was proved to be theirs.

An address counts as verified only once its owner proved control of it (today: the operator who ran
`meshgate bootstrap`; email links and SSO call `mark_verified`). Only a verified address is ever
matched to an existing account by email (see docs/decisions.md, "Email addresses are matched only once
verified")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import users
from meshgate.email_address import clean_email
from meshgate.errors import Conflict
from meshgate.identity import _rows
from meshgate.identity.models import User
from meshgate.identity.validation import clean_name


class UserService:
    """Creates and finds users."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self, email: str, *, password_hash: str | None = None, name: str | None = None, verified: bool = False
    ) -> User:
        """A new user; one without a password cannot log in until one is set.

        `password_hash` comes from `Passwords.hash` (hashing is kept out of the transaction)."""
        address = clean_email(email)
        display = clean_name(name, field="user name", limit=200) if name else address.split("@", 1)[0]
        if await self.find_by_email(address) is not None:
            raise Conflict(f"a user with email {address} already exists")
        when = utc_now()
        user_id = new_id()
        row = users.insert().values(
            id=user_id,
            email=address,
            name=display,
            password_hash=password_hash,
            email_verified_at=when if verified else None,
            created_at=when,
            updated_at=when,
        )
        try:
            async with self._session.begin_nested():
                await self._session.execute(row)
        except IntegrityError as exc:
            raise Conflict(f"a user with email {address} already exists") from exc
        return User(id=user_id, email=address, name=display, created_at=when, email_verified=verified)

    async def find_by_email(self, email: str) -> User | None:
        """Any account with this address, verified or not (for uniqueness; never to grant anything)."""
        row = await self._row_by_email(email)
        return None if row is None else _rows.user(row)

    async def find_verified(self, email: str) -> User | None:
        """The account whose owner proved this address: the only one an email may be matched to."""
        user = await self.find_by_email(email)
        return user if user is not None and user.email_verified else None

    async def get(self, user_id: str) -> User | None:
        row = (await self._session.execute(select(users).where(users.c.id == user_id))).first()
        return None if row is None else _rows.user(row)

    async def find_login(self, email: str) -> tuple[User, str | None] | None:
        """The user and their password hash (None without a password), for `PasswordLogin`."""
        row = await self._row_by_email(email)
        return None if row is None else (_rows.user(row), row.password_hash)

    async def mark_verified(self, user_id: str) -> None:
        """Record that the user proved control of their email address (an emailed link, an SSO identity)."""
        when = utc_now()
        await self._session.execute(
            update(users)
            .where(users.c.id == user_id, users.c.email_verified_at.is_(None))
            .values(email_verified_at=when, updated_at=when)
        )

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace the user's password (the hash comes from `Passwords.hash`, outside the transaction)."""
        await self._session.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash, updated_at=utc_now())
        )

    async def _row_by_email(self, email: str) -> Row[Any] | None:
        return (await self._session.execute(select(users).where(users.c.email == email.strip().lower()))).first()
