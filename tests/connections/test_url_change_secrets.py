"""A connection's sealed secrets were given for one server: moving its URL to another origin drops them."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

import pytest

from conftest import add_connection, new_owner
from meshgate.connections.models import ConnectionSecrets
from meshgate.connections.service import ConnectionService
from meshgate.connections.upstream_tokens import UpstreamTokens, UpstreamTokenStore
from meshgate.db.database import Database
from meshgate.db.migrate import apply_migrations
from meshgate.identity.service import OrganizationService, UserService
from meshgate.vault import Vault
from support.gateway import Gateway, Upstream, start_upstream
from support.mcp_client import call, connect

pytestmark = pytest.mark.anyio

OLD = "http://127.0.0.1:9100/mcp"
SECRETS = ConnectionSecrets(
    token="sk_live_PAYMENTS_SECRET_123",
    headers={"X-Tenant-Secret": "TENANT-SECRET-XYZ"},
    configuration_state={"apiKey": "STATE-SECRET"},
)


async def _connection(db: Database, vault: Vault, secrets: ConnectionSecrets) -> tuple[str, str]:
    async with db.transaction() as session:
        user = await UserService(session).create(f"u-{os.urandom(4).hex()}@example.com")
        org = await OrganizationService(session).create("Payments", user.id)
        values = {"title": "Payments API", "connection_type": "HTTP", "connection_url": OLD, "status": "active"}
        values |= {"connect_timeout_ms": 1000, "call_timeout_ms": 1000}
        connection = await ConnectionService(session, org.id, vault).create(values, secrets, user.id)
    return org.id, connection.id


@pytest.fixture
async def db(tmp_db: str) -> AsyncIterator[Database]:
    database = Database(tmp_db)
    await apply_migrations(database.engine)
    try:
        yield database
    finally:
        await database.close()


@pytest.mark.finding(2)
async def test_secrets_for_another_origin_drop_token_headers_and_state(db: Database) -> None:
    vault = Vault(os.urandom(32))
    org, connection = await _connection(db, vault, SECRETS)
    async with db.transaction() as session:
        kept, dropped = await ConnectionService(session, org, vault).secrets_for_url(connection, OLD + "/other")
    assert kept == SECRETS and dropped == ()
    async with db.transaction() as session:
        moved, dropped = await ConnectionService(session, org, vault).secrets_for_url(
            connection, "http://127.0.0.1:9103/mcp"
        )
    assert moved.token is None and dict(moved.headers) == {} and moved.configuration_state is None
    assert dropped == ("connection_token", "connection_headers", "configuration_state")
    assert "SECRET" not in repr(dropped)


@pytest.mark.finding(2)
async def test_updating_only_the_url_to_another_origin_stores_no_old_secret(db: Database) -> None:
    vault = Vault(os.urandom(32))
    org, connection = await _connection(db, vault, SECRETS)
    async with db.transaction() as session:
        service = ConnectionService(session, org, vault)
        updated = await service.update(connection, {"connection_url": "http://127.0.0.1:9103/mcp"})
        assert updated.dropped_secrets == ("connection_token", "connection_headers", "configuration_state")
        assert not updated.token_set and updated.header_names == []
        assert await service.secrets(connection) == ConnectionSecrets()
        # the same origin keeps them
        again = await service.update(connection, {"connection_url": "http://127.0.0.1:9103/other"})
        assert again.dropped_secrets == ()


@pytest.mark.finding(2)
async def test_moving_an_oauth_connection_forgets_its_tokens_and_client_secret(db: Database) -> None:
    vault = Vault(os.urandom(32))
    oauth = ConnectionSecrets(oauth={"client_id": "c", "client_secret": "CLIENT-SECRET", "scope": "read"})
    org, connection = await _connection(db, vault, oauth)
    tokens = UpstreamTokens("AT", "RT", None, time.time(), OLD + "/token", "c", None, "none", OLD, OLD)
    async with db.transaction() as session:
        await UpstreamTokenStore(session, vault).save(connection, tokens)
    async with db.transaction() as session:
        moved, dropped = await ConnectionService(session, org, vault).secrets_for_url(
            connection, "https://127.0.0.1:9100/mcp"
        )
        assert moved.oauth == {"client_id": "c", "scope": "read"}
        assert dropped == ("oauth.client_secret", "oauth tokens")
        assert await UpstreamTokenStore(session, vault).load(connection) is None


@pytest.mark.finding(2)
async def test_moving_the_url_through_the_tool_does_not_send_the_token_to_the_new_server(
    gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream, connection_headers={"X-Tenant": "TENANT-SECRET"})
    # The new server accepts the old one's token: it can only authorize meshgate if that token reached it.
    other = start_upstream(token=upstream.token)
    try:
        async with connect(gateway.mcp_url, owner.api_key) as client:
            moved = await call(
                client, "COLLECTION_CONNECTIONS_UPDATE", {"id": conn["id"], "data": {"connection_url": other.url}}
            )
            assert moved["dropped_secrets"] == ["connection_token", "connection_headers"]
            assert moved["connection_token"] == {"set": False} and moved["status"] == "error"
            back = await call(
                client,
                "COLLECTION_CONNECTIONS_UPDATE",
                {"id": conn["id"], "data": {"connection_url": upstream.url, "connection_token": upstream.token}},
            )
        assert "dropped_secrets" not in back and back["status"] == "active"
    finally:
        other.kill()
