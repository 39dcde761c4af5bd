"""Short-lived access tokens: an expired one is refused with a reason, the SDK's client refreshes it
(rotating the refresh token) and carries on; metadata reports the public https URL behind a TLS proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from meshgate.app import create_app
from meshgate.settings import load_settings
from support.databases import fresh_database
from support.gateway import Gateway, rpc, start_gateway
from support.mcp_client import call
from support.oauth import Browser, HandClient, MemoryStorage, connect_oauth, new_person, sdk_provider

pytestmark = pytest.mark.anyio
LIFETIME_S = 2
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("short")
    with fresh_database("sqlite", tmp) as url:
        gateway = start_gateway(url, tmp, MESHGATE_OAUTH_ACCESS_TOKEN_SECONDS=str(LIFETIME_S))
        try:
            yield gateway
        finally:
            assert gateway.stop() == 0, gateway.logs()


async def test_an_expired_access_token_is_refused_and_refresh_gives_a_new_one(short_lived: Gateway) -> None:
    person = await new_person(short_lived)
    client = await HandClient.register(short_lived)
    tokens = await client.tokens(person, resource=short_lived.mcp_url)
    assert tokens["expires_in"] == LIFETIME_S
    assert rpc(short_lived.mcp_url, INITIALIZE, key=tokens["access_token"]).status_code == 200
    await anyio.sleep(LIFETIME_S + 1.1)
    expired = rpc(short_lived.mcp_url, INITIALIZE, key=tokens["access_token"])
    assert expired.status_code == 401 and "expired" in expired.text
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    fresh = (await client.refresh(tokens["refresh_token"])).json()
    assert rpc(short_lived.mcp_url, INITIALIZE, key=fresh["access_token"]).status_code == 200


async def test_the_sdk_client_refreshes_by_itself_when_its_token_expires(short_lived: Gateway) -> None:
    person = await new_person(short_lived)
    browser = Browser(person)
    storage = MemoryStorage()
    provider = sdk_provider(short_lived.mcp_url, browser, storage=storage)
    async with connect_oauth(short_lived.mcp_url, provider) as client:
        await call(client, "ORGANIZATION_LIST", {})
        assert storage.tokens is not None
        first_refresh = storage.tokens.refresh_token
        await anyio.sleep(LIFETIME_S + 1.1)
        await call(client, "ORGANIZATION_LIST", {})
    assert storage.tokens.refresh_token != first_refresh  # rotated on use
    assert len(browser.pages) == 1  # refreshed, not logged in again


async def test_metadata_reports_the_public_https_url(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
            "MESHGATE_DATA_DIR": str(tmp_path),
            "MESHGATE_PUBLIC_URL": "https://gateway.example.com",
        }
    )
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal:3000") as http:
        server = (await http.get("/.well-known/oauth-authorization-server")).json()
        resource = (await http.get("/.well-known/oauth-protected-resource/mcp/c1")).json()
        login = await http.get("/login")
    assert server["issuer"] == "https://gateway.example.com"
    assert server["token_endpoint"] == "https://gateway.example.com/oauth/token"
    assert resource["resource"] == "https://gateway.example.com/mcp/c1"
    assert "secure" in login.headers["set-cookie"].lower()
