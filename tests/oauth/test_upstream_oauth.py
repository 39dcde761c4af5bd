"""meshgate as an OAuth client: a connection to an OAuth-protected upstream (built on the SDK's
`mcp.server.auth`) is authorized through a URL a person opens, then used, refreshed before expiry, and
reported clearly when the upstream ends the grant.

The gateway and the upstream are served in the test's event loop and share one clock, which the tests
move to reach a refresh point or an expiry (nothing sleeps)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from sqlalchemy import select

from conftest import new_owner
from meshgate.db.database import Database
from meshgate.db.tables import connection_oauth, connections
from meshgate.identity.sessions import COOKIE as SESSION_COOKIE
from meshgate.identity.sessions import BrowserSessionService
from support.gateway import Gateway, Owner, free_port
from support.hostile_oauth import hostile_authorization_server
from support.mcp_client import call, call_error, connect
from support.oauth_upstream import Provider, build
from support.secrets import remember_secret
from support.served import TestClock, serve_asgi, served_gateway

pytestmark = pytest.mark.anyio
TOKEN_SECONDS = 3600
REFRESH_MARGIN_S = 60  # meshgate refreshes this long before expiry (a quarter of the lifetime, at most a minute)


@dataclass
class OAuthUpstream:
    port: int
    provider: Provider

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def stats(self) -> dict[str, Any]:
        return copy.deepcopy(self.provider.stats)


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
async def oauth_upstream(clock: TestClock) -> AsyncIterator[OAuthUpstream]:
    port = free_port()
    provider = Provider(TOKEN_SECONDS, clock)
    async with serve_asgi(build(port, provider), port):
        yield OAuthUpstream(port, provider)


@pytest.fixture
async def gateway(tmp_db: str, tmp_path: Path, clock: TestClock) -> AsyncIterator[Gateway]:
    """This module's gateway: served in the test's loop on the shared clock (not the session's process)."""
    async with served_gateway(tmp_db, tmp_path, clock) as served:
        yield served


async def _post(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(url, **kwargs)


async def _whoami(gateway: Gateway, key: str, conn_id: str) -> tuple[bool, str]:
    """(refused, text): a refusal comes as an error of the handshake or as an isError result of the call."""
    refusal: list[str] = []
    result = None
    try:
        async with connect(f"{gateway.url}/mcp/{conn_id}", key) as client:
            result = await client.call_tool("whoami", {})
    except* MCPError as group:
        refusal.append(str(_first(group)))
    if refusal:
        return True, refusal[0]
    assert result is not None
    return bool(result.is_error), str(result.content[0])


def _first(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def _browser_session(gateway: Gateway, user_id: str) -> str:
    """A meshgate browser session cookie for `user_id` (what logging in on /login gives)."""
    db = Database(gateway.env["DATABASE_URL"])
    try:
        async with db.transaction() as session:
            return remember_secret(await BrowserSessionService(session).start(user_id, 3600))
    finally:
        await db.close()


async def _approve(gateway: Gateway, key: str, conn_id: str) -> tuple[dict[str, Any], str]:
    """Start the flow and let the upstream approve; returns the start answer and the callback URL."""
    async with connect(gateway.mcp_url, key) as client:
        started = await call(client, "CONNECTION_OAUTH_START", {"id": conn_id})
    async with httpx.AsyncClient(timeout=30) as browser:
        approval = await browser.get(started["authorizationUrl"])  # the upstream approves at once
    assert approval.status_code in (302, 307), approval.text
    back = approval.headers["location"]
    assert back.startswith(f"{gateway.url}/oauth/callback?")
    return started, back


async def _authorize(gateway: Gateway, owner: Owner, conn_id: str) -> dict[str, Any]:
    started, back = await _approve(gateway, owner.api_key, conn_id)
    cookie = await _browser_session(gateway, owner.user_id)
    async with httpx.AsyncClient(timeout=30) as browser:
        landed = await browser.get(back, headers={"cookie": f"{SESSION_COOKIE}={cookie}"})
    assert landed.status_code == 200 and "now authorized" in landed.text, landed.text
    return started


@pytest.mark.finding(9)
async def test_the_callback_is_finished_only_by_the_person_who_started_the_flow(
    gateway: Gateway, oauth_upstream: OAuthUpstream
) -> None:
    owner, other = await new_owner(gateway), await new_owner(gateway, "Other")
    async with connect(gateway.mcp_url, owner.api_key) as client:
        conn = await call(
            client,
            "COLLECTION_CONNECTIONS_CREATE",
            {"data": {"title": "Bound", "connection_type": "HTTP", "connection_url": oauth_upstream.url, "oauth": {}}},
        )
    _started, back = await _approve(gateway, owner.api_key, conn["id"])
    async with httpx.AsyncClient(timeout=30) as browser:
        anonymous = await browser.get(back)
        assert anonymous.status_code == 303 and "/login?next=" in anonymous.headers["location"]
        cookie = await _browser_session(gateway, other.user_id)
        foreign = await browser.get(back, headers={"cookie": f"{SESSION_COOKIE}={cookie}"})
    assert foreign.status_code == 400 and "unknown or expired" in foreign.text
    refused, _message = await _whoami(gateway, owner.api_key, conn["id"])
    assert refused  # nothing was linked into the connection
    cookie = await _browser_session(gateway, owner.user_id)
    async with httpx.AsyncClient(timeout=30) as browser:
        landed = await browser.get(back, headers={"cookie": f"{SESSION_COOKIE}={cookie}"})
    assert landed.status_code == 200 and "now authorized" in landed.text  # the owner's flow is still there


async def test_a_connection_authorizes_through_a_url_then_refreshes_before_expiry(
    gateway: Gateway, oauth_upstream: OAuthUpstream, clock: TestClock
) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        conn = await call(
            client,
            "COLLECTION_CONNECTIONS_CREATE",
            {
                "data": {
                    "title": "Protected",
                    "connection_type": "HTTP",
                    "connection_url": oauth_upstream.url,
                    "oauth": {},
                }
            },
        )
    assert conn["oauth"] == {"enabled": True, "client_id": None, "scope": None, "client_secret": {"set": False}}
    assert "CONNECTION_OAUTH_START" in conn["status_reason"]
    refused, message = await _whoami(gateway, owner.api_key, conn["id"])
    assert refused and "CONNECTION_OAUTH_START" in message
    call_tool = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    answer = await _post(
        f"{gateway.url}/mcp/{conn['id']}",
        json=call_tool,
        headers={"authorization": f"Bearer {owner.api_key}", "accept": "application/json, text/event-stream"},
    )
    assert answer.json().get("result", {}).get("isError") is True, answer.text  # a result the model can read
    assert "CONNECTION_OAUTH_START" in answer.text

    before = oauth_upstream.stats()
    started = await _authorize(gateway, owner, conn["id"])
    assert started["redirectUri"] == f"{gateway.url}/oauth/callback"
    after = oauth_upstream.stats()
    assert after["registrations"] == before["registrations"] + 1  # meshgate registered itself (DCR)
    assert after["exchanges"] == before["exchanges"] + 1
    assert after["resources"][-1] == oauth_upstream.url  # RFC 8707 resource sent

    refused, message = await _whoami(gateway, owner.api_key, conn["id"])
    assert not refused and "authorized by the upstream" in message
    async with connect(gateway.mcp_url, owner.api_key) as client:
        shown = await call(client, "COLLECTION_CONNECTIONS_GET", {"id": conn["id"]})
    assert shown["status_reason"] is None and "token" not in str(shown["oauth"])
    assert "whoami" in {tool["name"] for tool in shown["tools"]}  # discovered once authorized

    clock.advance(TOKEN_SECONDS - REFRESH_MARGIN_S / 2)  # past the refresh point, before expiry
    refused, message = await _whoami(gateway, owner.api_key, conn["id"])
    assert not refused, message
    refreshed = oauth_upstream.stats()
    assert refreshed["refreshes"] >= after["refreshes"] + 1
    clock.advance(2 * TOKEN_SECONDS)  # long past expiry: the next call refreshes first, then works
    refused, message = await _whoami(gateway, owner.api_key, conn["id"])
    assert not refused, message
    assert oauth_upstream.stats()["refreshes"] >= refreshed["refreshes"] + 1


async def test_a_pre_registered_client_is_used_and_tokens_are_sealed(
    gateway: Gateway, oauth_upstream: OAuthUpstream
) -> None:
    registered = (
        await _post(
            f"http://127.0.0.1:{oauth_upstream.port}/register",
            json={
                "client_name": "meshgate by hand",
                "redirect_uris": [f"{gateway.url}/oauth/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "client_secret_post",
                "scope": "mcp read",
            },
        )
    ).json()
    secret = remember_secret(registered["client_secret"])
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        conn = await call(
            client,
            "COLLECTION_CONNECTIONS_CREATE",
            {
                "data": {
                    "title": "Pre-registered",
                    "connection_type": "HTTP",
                    "connection_url": oauth_upstream.url,
                    "oauth": {"client_id": registered["client_id"], "client_secret": secret},
                }
            },
        )
    before = oauth_upstream.stats()
    started = await _authorize(gateway, owner, conn["id"])
    assert f"client_id={registered['client_id']}" in started["authorizationUrl"]
    after = oauth_upstream.stats()
    assert after["registrations"] == before["registrations"]  # no dynamic registration this time
    token = remember_secret(after["last_access_token"])
    assert not (await _whoami(gateway, owner.api_key, conn["id"]))[0]
    db = Database(gateway.env["DATABASE_URL"])
    try:
        async with db.transaction() as session:
            rows = (
                await session.execute(
                    select(connection_oauth.c.sealed, connections.c.secrets)
                    .join(connections, connections.c.id == connection_oauth.c.connection_id)
                    .where(connections.c.id == conn["id"])
                )
            ).all()
    finally:
        await db.close()
    stored = " ".join(f"{sealed} {sealed_secrets}" for sealed, sealed_secrets in rows)
    assert len(rows) == 1 and token not in stored and secret not in stored and stored.count("v1:") == 2

    # A new scope with the client secret given as null: the stored secret is kept (the exchange needs it).
    async with connect(gateway.mcp_url, owner.api_key) as client:
        oauth = {"client_id": registered["client_id"], "scope": "read", "client_secret": None}
        rescoped = await call(client, "COLLECTION_CONNECTIONS_UPDATE", {"id": conn["id"], "data": {"oauth": oauth}})
    assert rescoped["oauth"] == {**oauth, "enabled": True, "client_secret": {"set": True}}
    started = await _authorize(gateway, owner, conn["id"])
    assert "scope=read" in started["authorizationUrl"]
    assert not (await _whoami(gateway, owner.api_key, conn["id"]))[0]


async def test_an_ended_grant_tells_the_caller_how_to_authorize_again(
    gateway: Gateway, oauth_upstream: OAuthUpstream, clock: TestClock
) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        conn = await call(
            client,
            "COLLECTION_CONNECTIONS_CREATE",
            {"data": {"title": "Ending", "connection_type": "HTTP", "connection_url": oauth_upstream.url, "oauth": {}}},
        )
    await _authorize(gateway, owner, conn["id"])
    assert not (await _whoami(gateway, owner.api_key, conn["id"]))[0]
    await _post(f"http://127.0.0.1:{oauth_upstream.port}/forget-grants")
    refused, message = await _whoami(gateway, owner.api_key, conn["id"])  # the upstream answers 401 now
    assert refused and "CONNECTION_OAUTH_START" in message
    clock.advance(TOKEN_SECONDS)  # refresh is due: the upstream answers invalid_grant, tokens are dropped
    refused, message = await _whoami(gateway, owner.api_key, conn["id"])
    assert refused and "CONNECTION_OAUTH_START" in message
    async with connect(gateway.mcp_url, owner.api_key) as client:
        shown = await call(client, "COLLECTION_CONNECTIONS_GET", {"id": conn["id"]})
    assert "grant ended" in shown["status_reason"]
    await _authorize(gateway, owner, conn["id"])  # and authorizing again works
    assert not (await _whoami(gateway, owner.api_key, conn["id"]))[0]


@pytest.mark.finding(10)
@pytest.mark.parametrize(
    ("error", "shown"),
    [("invalid_client_metadata", "invalid_client_metadata"), ("<b>internal detail</b>", "unrecognized error")],
)
async def test_an_upstream_refusal_is_repeated_only_as_its_error_code(gateway: Gateway, error: str, shown: str) -> None:
    """What another server wrote (`error_description`, or an `error` that is no error code) stays out of answers."""
    owner = await new_owner(gateway)
    marker = "INTERNAL-DETAIL-" + "x" * 150
    with hostile_authorization_server() as upstream:
        upstream.refusal.update(error=error, error_description=marker)
        async with connect(gateway.mcp_url, owner.api_key) as client:
            conn = await call(
                client,
                "COLLECTION_CONNECTIONS_CREATE",
                {"data": {"title": "Hostile", "connection_type": "HTTP", "connection_url": upstream.url, "oauth": {}}},
            )
            reason = await call_error(client, "CONNECTION_OAUTH_START", {"id": conn["id"]})
    assert "dynamic registration" in reason and f"HTTP 400: {shown}" in reason
    assert "INTERNAL-DETAIL" not in reason and "internal detail" not in reason
