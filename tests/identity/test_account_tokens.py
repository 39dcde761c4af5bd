"""Reset and verification links expire on the service's clock, work once, and a newer link voids the older."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from meshgate.access.ratelimit import Rate
from meshgate.auth_config import AuthConfig
from meshgate.db.database import Database
from meshgate.db.rows import utc_now
from meshgate.errors import NotFound
from meshgate.identity.accounts import RESET, VERIFY, AccountService, AccountTokens
from meshgate.identity.login import LinkThrottle
from meshgate.identity.models import User
from meshgate.identity.passwords import Passwords, verify_password
from meshgate.identity.service import UserService
from meshgate.mail.outbox import Outbox

pytestmark = pytest.mark.anyio

_THROTTLE = LinkThrottle(Rate(100, 100), Rate(100, 100))

OLD = "the old password"
NEW = "the new password"


class Clock:
    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def passwords() -> AsyncIterator[Passwords]:
    hasher = Passwords(workers=1)
    yield hasher
    hasher.close()


async def _user(db: Database, passwords: Passwords, email: str) -> User:
    password_hash = await passwords.hash(OLD)
    async with db.transaction() as session:
        return await UserService(session).create(email, password_hash=password_hash)


async def _password_is(db: Database, email: str, password: str) -> bool:
    async with db.transaction() as session:
        found = await UserService(session).find_login(email)
    assert found is not None and found[1] is not None
    return verify_password(found[1], password)


async def test_a_reset_link_expires_after_30_minutes_and_changes_nothing(db: Database, passwords: Passwords) -> None:
    clock = Clock()
    user = await _user(db, passwords, "late@example.com")
    accounts = AccountService(
        db, passwords, Outbox.from_config(AuthConfig()), "http://127.0.0.1", _THROTTLE, clock=clock
    )
    async with db.transaction() as session:
        token = await AccountTokens(session, clock).issue(user, RESET)
    clock.now += timedelta(minutes=29, seconds=59)
    assert (await accounts.check_reset(token)).id == user.id
    clock.now += timedelta(seconds=1)
    with pytest.raises(NotFound, match="has expired"):
        await accounts.reset_password(token, NEW)
    assert await _password_is(db, user.email, OLD)


async def test_a_reset_link_works_once_and_proves_the_address(db: Database, passwords: Passwords) -> None:
    clock = Clock()
    user = await _user(db, passwords, "once@example.com")
    accounts = AccountService(
        db, passwords, Outbox.from_config(AuthConfig()), "http://127.0.0.1", _THROTTLE, clock=clock
    )
    async with db.transaction() as session:
        token = await AccountTokens(session, clock).issue(user, RESET)
    await accounts.reset_password(token, NEW)
    assert await _password_is(db, user.email, NEW)
    with pytest.raises(NotFound):
        await accounts.reset_password(token, "a third password")
    assert await _password_is(db, user.email, NEW)
    async with db.transaction() as session:
        assert (await UserService(session).find_verified(user.email)) is not None


async def test_a_newer_link_voids_the_older_and_purposes_do_not_mix(db: Database, passwords: Passwords) -> None:
    clock = Clock()
    user = await _user(db, passwords, "twice@example.com")
    async with db.transaction() as session:
        tokens = AccountTokens(session, clock)
        first = await tokens.issue(user, RESET)
        second = await tokens.issue(user, RESET)
        verify = await tokens.issue(user, VERIFY)
    async with db.transaction() as session:
        tokens = AccountTokens(session, clock)
        with pytest.raises(NotFound):
            await tokens.user_of(first, RESET)
        with pytest.raises(NotFound):
            await tokens.user_of(verify, RESET)
        assert (await tokens.user_of(second, RESET)).id == user.id


async def test_a_verification_link_expires_on_the_clock(db: Database, passwords: Passwords) -> None:
    clock = Clock()
    user = await _user(db, passwords, "slow@example.com")
    accounts = AccountService(
        db, passwords, Outbox.from_config(AuthConfig()), "http://127.0.0.1", _THROTTLE, clock=clock
    )
    async with db.transaction() as session:
        token = await AccountTokens(session, clock).issue(user, VERIFY)
    clock.now += timedelta(hours=24)
    with pytest.raises(NotFound):
        await accounts.verify_email(token)
    async with db.transaction() as session:
        assert (await UserService(session).find_verified(user.email)) is None
