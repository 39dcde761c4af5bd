"""No secret is stored in plaintext, and `meshgate rotate-key` re-seals everything under a new key."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from conftest import add_connection, new_owner
from meshgate.connections.upstream_tokens import UpstreamTokens, UpstreamTokenStore
from meshgate.db.database import Database
from meshgate.vault import Vault
from support.gateway import Gateway, Upstream, free_port, run_cli, start_gateway
from support.mcp_client import call, connect
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio

TOKEN_MARK = remember_secret("tok-PLAINTEXT-7f3a9c")
HEADER_MARK = remember_secret("hdr-PLAINTEXT-51be02")
STATE_MARK = remember_secret("cfg-PLAINTEXT-c0ffee")


async def _all_rows_text(database_url: str) -> str:
    db = Database(database_url)
    try:
        async with db.engine.connect() as connection:
            meta = MetaData()
            await connection.run_sync(meta.reflect)
            dumped = [repr((await connection.execute(select(table))).all()) for table in meta.sorted_tables]
        return "\n".join(dumped)
    finally:
        await db.close()


async def test_secrets_are_not_in_the_database_file_or_rows(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(
        gateway, owner.api_key, upstream, connection_headers={"X-Secret": HEADER_MARK}, connection_token=TOKEN_MARK
    )
    async with connect(gateway.mcp_url, owner.api_key) as client:
        await call(client, "CONNECTION_CONFIGURE", {"id": conn["id"], "state": {"value": STATE_MARK}})
    rows = await _all_rows_text(gateway.env["DATABASE_URL"])
    assert "v1:" in rows  # sealed values are there
    for mark in (TOKEN_MARK, HEADER_MARK, STATE_MARK, owner.api_key):
        assert mark not in rows
    url = gateway.env["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for mark in (TOKEN_MARK, HEADER_MARK, STATE_MARK, owner.api_key):
            assert mark.encode() not in raw


async def test_rotate_key_reseals_secrets_and_the_old_key_is_no_longer_needed(
    tmp_db: str, tmp_path: Path, upstream: Upstream
) -> None:
    gw = start_gateway(tmp_db, tmp_path)
    try:
        owner = await new_owner(gw)
        conn = await add_connection(gw, owner.api_key, upstream)
    finally:
        assert gw.stop() == 0
    old_key = gw.env["ENCRYPTION_KEY"]
    tokens = UpstreamTokens(
        access_token=remember_secret("upstream-access-PLAINTEXT-1"),
        refresh_token=None,
        expires_at=None,
        issued_at=0.0,
        token_endpoint="https://as.example/token",
        client_id="c",
        client_secret=None,
        auth_method="none",
        resource="https://as.example/mcp",
        issuer="https://as.example",
    )
    db = Database(tmp_db)
    try:
        async with db.transaction() as session:  # an OAuth upstream's tokens, sealed under the old key
            await UpstreamTokenStore(session, Vault(base64.b64decode(old_key))).save(conn["id"], tokens)
    finally:
        await db.close()
    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    rotating = {**gw.env, "ENCRYPTION_KEY": new_key, "ENCRYPTION_KEYS_PREVIOUS": old_key}
    result = run_cli(rotating, "rotate-key")
    assert result.returncode == 0, result.stderr
    # the connection's secrets, the upstream OAuth tokens and the gateway's x-mesh-token signing key
    assert "checked 3/3 sealed values" in result.stdout
    assert "re-encrypted 3 secret(s)" in result.stdout
    db = Database(tmp_db)
    try:
        async with db.transaction() as session:
            reopened = await UpstreamTokenStore(session, Vault(base64.b64decode(new_key))).load(conn["id"])
    finally:
        await db.close()
    assert reopened is not None and reopened[0] == tokens
    assert "re-encrypted 0 secret(s)" in run_cli(rotating, "rotate-key").stdout

    only_new = {**gw.env, "ENCRYPTION_KEY": new_key}
    after = Gateway(env=only_new, port=free_port()).start(tmp_path / "after.log")
    try:
        async with connect(f"{after.url}/mcp/{conn['id']}", owner.api_key) as client:
            assert (await client.call_tool("echo", {"text": "rotated"})).content[0].text == "rotated"  # type: ignore[union-attr]
    finally:
        assert after.stop() == 0
    refused = run_cli(gw.env, "migrate")  # the old key alone no longer opens the database
    assert refused.returncode == 1
    assert "is not the key this database was created with" in refused.stderr
