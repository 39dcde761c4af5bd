"""Migrations apply from empty on every backend, and the schema they build matches the table definitions."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from meshgate.connections.models import ConnectionSecrets
from meshgate.connections.service import ConnectionService
from meshgate.db.database import Database
from meshgate.db.migrate import alembic_config, apply_migrations, newest_revision, pending_migrations
from meshgate.db.tables import (
    api_keys,
    automation_triggers,
    automations,
    connections,
    event_subscriptions,
    events,
    members,
    metadata,
    object_storage_settings,
    organization_domains,
    organization_sso,
    virtual_mcp_connections,
    virtual_mcps,
)
from meshgate.events.automations import AutomationService
from meshgate.identity.service import ApiKeyService, OrganizationService, UserService, member_principal
from meshgate.sso.service import SsoChange, SsoSettings
from meshgate.storage.config import StorageSettingsService
from meshgate.storage.s3 import S3Config
from meshgate.vault import Vault
from meshgate.virtual.models import Member
from meshgate.virtual.service import VirtualMcpService

pytestmark = pytest.mark.anyio


def test_the_newest_revision_read_from_the_file_names_is_alembics_head() -> None:
    """`serve` skips loading Alembic when the database is at `newest_revision()`: it must be the real head."""
    assert newest_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_migrations_apply_from_empty_and_match_the_tables(tmp_db: str) -> None:
    db = Database(tmp_db)
    try:
        assert await pending_migrations(db.engine) == [
            "0001",
            "0002",
            "0003",
            "0004",
            "0005",
            "0006",
            "0007",
            "0008",
            "0009",
            "0010",
            "0011",
            "0012",
            "0013",
            "0014",
            "0015",
            "0018",
            "0019",
            "0020",
            "0021",
        ]
        assert await apply_migrations(db.engine) == [
            "0001",
            "0002",
            "0003",
            "0004",
            "0005",
            "0006",
            "0007",
            "0008",
            "0009",
            "0010",
            "0011",
            "0012",
            "0013",
            "0014",
            "0015",
            "0018",
            "0019",
            "0020",
            "0021",
        ]
        assert await pending_migrations(db.engine) == []
        assert await apply_migrations(db.engine) == []
        async with db.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": False}), metadata)
            )
        assert {
            "users",
            "organizations",
            "members",
            "roles",
            "api_keys",
            "meshgate_meta",
            "connections",
            "monitoring_logs",
            "virtual_mcps",
            "virtual_mcp_connections",
            "mesh_signing_keys",
            "events",
            "event_subscriptions",
            "event_deliveries",
            "connection_keys",
            "automations",
            "automation_triggers",
            "automation_runs",
            "account_tokens",
            "ai_provider_keys",
            "object_storage_settings",
            "organization_sso",
            "organization_domains",
            "sso_identities",
            "sso_flows",
        } <= tables
        assert diff == []
    finally:
        await db.close()


async def test_foreign_keys_cascade_when_an_organization_is_deleted(tmp_db: str) -> None:

    db = Database(tmp_db)
    try:
        await apply_migrations(db.engine)
        async with db.transaction() as session:
            user = await UserService(session).create("cascade@example.com")
            org = await OrganizationService(session).create("Cascade", user.id)
            await ApiKeyService(session, org.id).create(user.id, "k")
            values = {"title": "c", "connection_type": "HTTP", "connection_url": "http://127.0.0.1:9/mcp"}
            values |= {"status": "active", "connect_timeout_ms": 1000, "call_timeout_ms": 1000}
            connection = await ConnectionService(session, org.id, Vault(os.urandom(32))).create(
                values, ConnectionSecrets(), user.id
            )
            await VirtualMcpService(session, org.id).create({"title": "v"}, [Member(connection.id, "c")], user.id)
            owner = await member_principal(session, user.id, org.slug)
            automations_ = AutomationService(session, org.id)
            automation = await automations_.create(owner, "a", connection.id, "t", {"x": {"$event": "/data"}})
            await automations_.add_trigger(owner, automation.id, cron="* * * * *")
            await automations_.add_trigger(owner, automation.id, event_type="a.b")
            bucket = S3Config("http://127.0.0.1:9", "bucket-1", "us-east-1", "AKIA", "secret-key")
            await StorageSettingsService(session, org.id, Vault(os.urandom(32))).save(owner, bucket)
            sso = SsoSettings(session, org.id, Vault(os.urandom(32)), loopback_allowed=True)
            await sso.set(owner, SsoChange(provider="google", client_id="c", client_secret="s"))
            await sso.set_domains(owner, ["cascade.example"])
        async with db.transaction() as session:
            await OrganizationService(session).delete(org.id)
        async with db.transaction() as session:
            for table in (
                members,
                api_keys,
                connections,
                virtual_mcps,
                virtual_mcp_connections,
                automations,
                automation_triggers,
                event_subscriptions,
                events,
                object_storage_settings,
                organization_sso,
                organization_domains,
            ):
                assert await session.scalar(select(func.count()).select_from(table)) == 0, table.name
    finally:
        await db.close()
