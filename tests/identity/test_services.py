"""Identity services against a real database: hashing, limits, what is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from meshgate.access.ratelimit import Rate
from meshgate.db.database import Database
from meshgate.db.tables import api_keys, users
from meshgate.errors import Conflict, InvalidInput
from meshgate.identity.login import LoginThrottle, PasswordLogin
from meshgate.identity.models import MAX_CUSTOM_ROLES
from meshgate.identity.passwords import Passwords
from meshgate.identity.service import ApiKeyService, OrganizationService, RoleService, UserService

pytestmark = pytest.mark.anyio


async def test_passwords_are_stored_as_argon2id_and_checked(db: Database) -> None:
    passwords = Passwords(workers=1)
    login = PasswordLogin(db, passwords, LoginThrottle(Rate(1, 100), Rate(1, 100)))
    password_hash = await passwords.hash("correct horse battery")
    async with db.transaction() as session:
        await UserService(session).create("Pat@Example.com", password_hash=password_hash)
    async with db.transaction() as session:
        stored = await session.scalar(select(users.c.password_hash).where(users.c.email == "pat@example.com"))
    assert await login.log_in("pat@example.com", "correct horse battery", "127.0.0.1") is not None
    assert await login.log_in("pat@example.com", "wrong password!", "127.0.0.1") is None
    assert await login.log_in("nobody@example.com", "correct horse battery", "127.0.0.1") is None
    assert stored is not None and stored.startswith("$argon2id$")
    with pytest.raises(InvalidInput, match="5 characters long; use at least 10"):
        await passwords.hash("short")
    passwords.close()


async def test_api_keys_have_256_bits_and_only_their_hash_is_stored(db: Database) -> None:
    async with db.transaction() as session:
        user = await UserService(session).create("keys@example.com")
        org = await OrganizationService(session).create("Keys", user.id)
        key, value = await ApiKeyService(session, org.id).create(user.id, "k")
    assert value.startswith("mg_") and len(value) - 3 >= 43  # 32 random bytes, base64url
    assert key.prefix == value[: len(key.prefix)] and len(key.prefix) < len(value) // 3
    async with db.transaction() as session:
        rows = (await session.execute(select(api_keys))).all()
    assert value not in repr(rows)
    assert value[len(key.prefix) :] not in repr(rows)


async def test_an_organization_holds_at_most_500_custom_roles(db: Database) -> None:
    async with db.transaction() as session:
        user = await UserService(session).create("roles@example.com")
        org = await OrganizationService(session).create("Roles", user.id)
        roles = RoleService(session, org.id)
        for number in range(MAX_CUSTOM_ROLES):
            await roles.create(f"role-{number}", {"self": ["ROLE_LIST"]})
    with pytest.raises(Conflict, match="at most 500 custom roles"):
        async with db.transaction() as session:
            await RoleService(session, org.id).create("one-too-many", {})


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("SQLite pragmas only apply to SQLite")
    async with db.engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_slugs_stay_unique_for_equal_names(db: Database) -> None:
    async with db.transaction() as session:
        user = await UserService(session).create("slugs@example.com")
        first = await OrganizationService(session).create("Same Name", user.id)
        second = await OrganizationService(session).create("Same Name", user.id)
    assert first.slug == "same-name"
    assert second.slug.startswith("same-name-") and second.slug != first.slug
