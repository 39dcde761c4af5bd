"""Reads show a connection's configuration (issue 22): a STDIO command, arguments, working directory and
environment variable names, an OAuth client id and scope; never a secret's value. Rows summarised before
that are shown from the sealed value."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from meshgate.connections.models import ConnectionSecrets
from meshgate.connections.service import ConnectionService
from meshgate.db.database import Database
from meshgate.db.migrate import apply_migrations
from meshgate.db.tables import connections
from meshgate.identity.service import OrganizationService, UserService
from meshgate.vault import Vault

pytestmark = pytest.mark.anyio

STDIO = {"command": "uvx", "args": ["mcp-server-time", "--local"], "cwd": "/srv", "envVars": {"TOKEN": "ENV-SECRET"}}
SHOWN = {"set": True, "names": ["TOKEN"], "command": "uvx", "args": ["mcp-server-time", "--local"], "cwd": "/srv"}


@pytest.fixture
async def db(tmp_db: str) -> AsyncIterator[Database]:
    database = Database(tmp_db)
    await apply_migrations(database.engine)
    try:
        yield database
    finally:
        await database.close()


async def _stdio_connection(db: Database, vault: Vault) -> tuple[str, str]:
    async with db.transaction() as session:
        user = await UserService(session).create(f"u-{os.urandom(4).hex()}@example.com")
        org = await OrganizationService(session).create("Local", user.id)
        values = {"title": "Time", "connection_type": "STDIO", "status": "active"}
        values |= {"connect_timeout_ms": 1000, "call_timeout_ms": 1000}
        created = await ConnectionService(session, org.id, vault).create(values, ConnectionSecrets(stdio=STDIO), None)
    return org.id, created.id


async def test_reads_show_the_command_and_environment_names_only(db: Database) -> None:
    vault = Vault(os.urandom(32))
    org, connection_id = await _stdio_connection(db, vault)
    async with db.transaction() as session:
        service = ConnectionService(session, org, vault)
        shown = (await service.get(connection_id)).to_dict()
        listed = [item.to_dict() for item in (await service.list())[0]]
    assert shown["connection_headers"] == SHOWN
    assert listed[0]["connection_headers"] == SHOWN
    assert "ENV-SECRET" not in repr(shown) + repr(listed)


async def test_a_row_summarised_before_issue_22_still_shows_its_command(db: Database) -> None:
    vault = Vault(os.urandom(32))
    org, connection_id = await _stdio_connection(db, vault)
    async with db.transaction() as session:
        # What older versions wrote: the sealed command, and a summary that only said "set".
        old_summary = {"token": False, "headers": [], "stdio": True, "configuration_state": False, "oauth": False}
        await session.execute(
            update(connections).where(connections.c.id == connection_id).values(secret_summary=old_summary)
        )
    async with db.transaction() as session:
        shown = (await ConnectionService(session, org, vault).get(connection_id)).to_dict()
    assert shown["connection_headers"] == SHOWN
    assert "ENV-SECRET" not in repr(shown)


async def test_an_oauth_row_summarised_before_issue_22_shows_its_client_id_and_scope(db: Database) -> None:
    vault = Vault(os.urandom(32))
    oauth = {"client_id": "by-hand", "client_secret": "CLIENT-SECRET", "scope": "read"}
    async with db.transaction() as session:
        user = await UserService(session).create(f"u-{os.urandom(4).hex()}@example.com")
        org = await OrganizationService(session).create("Remote", user.id)
        values = {"title": "Remote", "connection_type": "HTTP", "connection_url": "http://127.0.0.1:9/mcp"}
        values |= {"status": "active", "connect_timeout_ms": 1000, "call_timeout_ms": 1000}
        service = ConnectionService(session, org.id, vault)
        created = await service.create(values, ConnectionSecrets(oauth=oauth), None)
        fresh = (await service.get(created.id)).to_dict()
        old_summary = {"token": False, "headers": [], "stdio": False, "configuration_state": False, "oauth": True}
        await session.execute(
            update(connections).where(connections.c.id == created.id).values(secret_summary=old_summary)
        )
        legacy = (await service.get(created.id)).to_dict()
    expected = {"enabled": True, "client_id": "by-hand", "scope": "read", "client_secret": {"set": True}}
    assert fresh["oauth"] == expected and legacy["oauth"] == expected
    assert "CLIENT-SECRET" not in repr(fresh) + repr(legacy)
