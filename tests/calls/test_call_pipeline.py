"""Every way a tool gets called goes through the one call service: whichever adapter brings the call, the
caller gets the same permission decision, the upstream the same `x-mesh-token`, the audit log the same record."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from conftest import add_connection, key_for_user, new_owner, wait_for_logs
from support.gateway import Gateway, Upstream, start_upstream
from support.mcp_client import call
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio

ADAPTERS = ("mcp", "mcp-2026", "rest", "bridged", "virtual")


@pytest.fixture(scope="module")
def legacy_upstream() -> Iterator[Upstream]:
    """An upstream of the handshake era only: meshgate bridges 2026-07-28 clients onto its own session."""
    server = start_upstream(token=remember_secret("legacy-upstream-token-1"), legacy_only=True)
    yield server
    server.kill()


@dataclass
class Setup:
    owner_key: str
    key: str  # a key of the owner, narrowed to `echo` and `headers` on both connections
    direct: str
    legacy: str
    virtual: str


async def _setup(gateway: Gateway, upstream: Upstream, legacy: Upstream) -> Setup:
    owner = await new_owner(gateway)
    direct = (await add_connection(gateway, owner.api_key, upstream, title="Direct"))["id"]
    bridged = (await add_connection(gateway, owner.api_key, legacy, title="Legacy"))["id"]
    async with _client(f"{gateway.mcp_url}", owner.api_key, "legacy", "setup") as client:
        data = {"title": "One", "connections": [{"connection_id": direct}]}
        virtual = (await call(client, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data}))["id"]
    narrow = {direct: ["echo", "headers"], bridged: ["echo", "headers"]}
    key = await key_for_user(gateway, owner.organization_id, owner.user_id, narrow)
    return Setup(owner.api_key, key, direct, bridged, virtual)


@asynccontextmanager
async def _client(url: str, key: str, mode: str, request_id: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}", "x-request-id": request_id}
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,  # type: ignore[arg-type]
    ):
        yield client


async def _call(
    adapter: str, gateway: Gateway, setup: Setup, tool: str, request_id: str
) -> tuple[bool, dict[str, Any], str]:
    """(is_error, structured content, text) of one call of `tool` through `adapter`."""
    if adapter == "rest":
        response = httpx.post(
            f"{gateway.url}/mcp/{setup.direct}/call-tool/{tool}",
            json={},
            headers={"authorization": f"Bearer {setup.key}", "x-request-id": request_id},
            timeout=30,
        )
        if response.status_code != 200:
            return True, {}, str(response.json()["error"]["message"])
        result = response.json()
        return bool(result.get("isError")), result.get("structuredContent") or {}, result["content"][0]["text"]
    url, mode = {
        "mcp": (f"{gateway.url}/mcp/{setup.direct}", "legacy"),
        "mcp-2026": (f"{gateway.url}/mcp/{setup.direct}", "2026-07-28"),
        "bridged": (f"{gateway.url}/mcp/{setup.legacy}", "2026-07-28"),
        "virtual": (f"{gateway.url}/mcp/virtual/{setup.virtual}", "legacy"),
    }[adapter]
    name = f"direct_{tool}" if adapter == "virtual" else tool  # a virtual MCP prefixes the connection's slug
    async with _client(url, setup.key, mode, request_id) as client:
        result = await client.call_tool(name, {})
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    return bool(result.is_error), dict(result.structured_content or {}), text


def _connection_of(adapter: str, setup: Setup) -> str:
    return setup.legacy if adapter == "bridged" else setup.direct


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_every_adapter_sends_the_callers_grant_upstream(
    gateway: Gateway, upstream: Upstream, legacy_upstream: Upstream, adapter: str
) -> None:
    setup = await _setup(gateway, upstream, legacy_upstream)
    request_id = f"pipeline-{uuid.uuid4().hex[:8]}"
    is_error, structured, _text = await _call(adapter, gateway, setup, "headers", request_id)
    assert not is_error
    seen = [h for h in structured["requests"] if h.get("x-request-id") == request_id]
    assert seen, "the upstream saw no request with the caller's request id"
    claims = jwt.decode(seen[-1]["x-mesh-token"], options={"verify_signature": False})
    assert claims["aud"] == _connection_of(adapter, setup)
    assert claims["caller"]["type"] == "api_key"
    assert claims["permissions"] == ["echo", "headers"]
    assert "authorization" not in {k.lower() for k in seen[-1]} or setup.key not in seen[-1].get("authorization", "")


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_every_adapter_refuses_and_audits_the_same_way(
    gateway: Gateway, upstream: Upstream, legacy_upstream: Upstream, adapter: str
) -> None:
    setup = await _setup(gateway, upstream, legacy_upstream)
    allowed_id, refused_id = f"ok-{uuid.uuid4().hex[:8]}", f"no-{uuid.uuid4().hex[:8]}"
    assert not (await _call(adapter, gateway, setup, "echo", allowed_id))[0]
    is_error, _structured, text = await _call(adapter, gateway, setup, "add", refused_id)
    assert is_error
    assert "needs the permission" in text and "add" in text
    connection = _connection_of(adapter, setup)
    logs = await wait_for_logs(gateway, setup.owner_key, 2, connectionId=connection)
    by_request = {item["requestId"]: item for item in logs}
    allowed, refused = by_request[allowed_id], by_request[refused_id]
    assert (allowed["toolName"], allowed["isError"]) == ("echo", False)
    assert (refused["toolName"], refused["isError"]) == ("add", True)
    assert "permission_denied" in refused["errorMessage"]
    assert allowed["caller"]["apiKeyId"] is not None
    assert allowed["caller"] == refused["caller"]
    assert allowed["virtualMcpId"] == (setup.virtual if adapter == "virtual" else None)


@pytest.mark.finding(13)
async def test_routing_headers_upstream_are_rebuilt_from_the_authorized_message(
    gateway: Gateway, upstream: Upstream, legacy_upstream: Upstream
) -> None:
    """A client that names another tool in `Mcp-Name` than in its body cannot steer a header-routing upstream."""
    setup = await _setup(gateway, upstream, legacy_upstream)
    request_id = f"steer-{uuid.uuid4().hex[:8]}"
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    message = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "headers", "arguments": {}, "_meta": meta},
    }
    headers = {
        "authorization": f"Bearer {setup.key}",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "add",  # not what the body calls, and not allowed to this key
        "x-request-id": request_id,
    }
    response = httpx.post(f"{gateway.url}/mcp/{setup.direct}", json=message, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    _, structured, _ = await _call("rest", gateway, setup, "headers", f"{request_id}-look")
    seen = [h for h in structured["requests"] if h.get("x-request-id") == request_id]
    assert seen and seen[-1]["mcp-name"] == "headers" and seen[-1]["mcp-method"] == "tools/call"
