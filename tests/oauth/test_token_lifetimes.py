"""Short-lived access tokens: an expired one is refused with a reason, the SDK's client refreshes it
(rotating the refresh token) and carries on; metadata reports the public https URL behind a TLS proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshgate.app import create_app
from meshgate.settings import load_settings
from support.gateway import Gateway
from support.mcp_client import call
from support.oauth import Browser, HandClient, MemoryStorage, connect_oauth, new_person, sdk_provider
from support.served import TestClock, served_gateway

pytestmark = pytest.mark.anyio
LIFETIME_S = 60
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
async def short_lived(tmp_db: str, tmp_path: Path, clock: TestClock) -> AsyncIterator[Gateway]:
    async with served_gateway(tmp_db, tmp_path, clock, MESHGATE_OAUTH_ACCESS_TOKEN_SECONDS=str(LIFETIME_S)) as gateway:
        yield gateway


async def _initialize(gateway: Gateway, token: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(gateway.mcp_url, json=INITIALIZE, headers=headers)


async def test_an_expired_access_token_is_refused_and_refresh_gives_a_new_one(
    short_lived: Gateway, clock: TestClock
) -> None:
    person = await new_person(short_lived)
    client = await HandClient.register(short_lived)
    tokens = await client.tokens(person, resource=short_lived.mcp_url)
    assert tokens["expires_in"] == LIFETIME_S
    assert (await _initialize(short_lived, tokens["access_token"])).status_code == 200
    clock.advance(LIFETIME_S - 10)  # the real clock moves on a little meanwhile
    assert (await _initialize(short_lived, tokens["access_token"])).status_code == 200  # still valid
    clock.advance(10)
    expired = await _initialize(short_lived, tokens["access_token"])
    assert expired.status_code == 401 and "expired" in expired.text
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    fresh = (await client.refresh(tokens["refresh_token"])).json()
    assert (await _initialize(short_lived, fresh["access_token"])).status_code == 200


async def test_the_sdk_client_refreshes_by_itself_when_its_token_expires(
    short_lived: Gateway, clock: TestClock
) -> None:
    person = await new_person(short_lived)
    browser = Browser(person)
    storage = MemoryStorage()
    provider = sdk_provider(short_lived.mcp_url, browser, storage=storage)
    async with connect_oauth(short_lived.mcp_url, provider) as client:
        await call(client, "ORGANIZATION_LIST", {})
        assert storage.tokens is not None
        first_refresh = storage.tokens.refresh_token
        clock.advance(LIFETIME_S + 1)
        _sdk_sees_expiry(provider)
        await call(client, "ORGANIZATION_LIST", {})
    assert storage.tokens.refresh_token != first_refresh  # rotated on use
    assert len(browser.pages) == 1  # refreshed, not logged in again


def _sdk_sees_expiry(provider: Any) -> None:
    """The SDK's client keeps its own expiry time on the real clock; tell it what the gateway's clock says."""
    provider.context.token_expiry_time = 1.0  # long past (0 would mean "never expires")


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
