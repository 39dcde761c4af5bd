"""`Mcp-Method` and `Mcp-Name` sent upstream are plain printable ASCII whatever method the client wrote."""

from __future__ import annotations

import uuid

import httpx
import pytest

from conftest import add_connection, new_owner
from support.gateway import Gateway, Upstream

pytestmark = pytest.mark.anyio

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


@pytest.mark.finding(13)
@pytest.mark.parametrize("method", ["tools/list\r\nx-injected: yes", "\u0100", "\x80"])
async def test_a_method_that_is_no_header_value_reaches_the_upstream_encoded(
    gateway: Gateway, upstream: Upstream, method: str
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    request_id = f"method-{uuid.uuid4().hex[:8]}"
    headers = {
        "authorization": f"Bearer {owner.api_key}",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "x-request-id": request_id,
    }
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"_meta": META}}
    url = f"{gateway.url}/mcp/{conn['id']}"
    answer = httpx.post(url, json=message, headers=headers, timeout=30)
    assert answer.status_code != 500, answer.text
    looked = httpx.post(f"{url}/call-tool/headers", json={}, headers={"authorization": headers["authorization"]})
    seen = [h for h in looked.json()["structuredContent"]["requests"] if h.get("x-request-id") == request_id]
    assert seen, "the upstream never received the request"
    assert "x-injected" not in seen[-1]
    assert seen[-1]["mcp-method"].startswith("=?base64?"), seen[-1]["mcp-method"]
