"""The SSRF guard runs again on every new upstream connection, not only when a connection is saved.

A name that resolved to an allowed address at save time may resolve to a refused one later (DNS rebinding).
Tests reach 127.0.0.1 only, so the address stays the same and the policy changes instead: a connection saved
while loopback was allowed must be refused once the gateway runs with `MESHGATE_BLOCK_PRIVATE_NETWORKS=1`.
Only the connect-time check in `connections/upstream/http11.py` stands between that call and the upstream.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from conftest import add_connection, new_owner
from support.databases import fresh_database
from support.gateway import Upstream, start_gateway
from support.mcp_client import call, connect

pytestmark = pytest.mark.anyio


async def _upstream_saw(upstream: Upstream, request_id: str) -> bool:
    async with connect(upstream.url, upstream.token) as client:
        seen = await call(client, "headers")
    return any(request.get("x-request-id") == request_id for request in seen["requests"])


async def test_a_saved_connection_is_refused_at_connect_time_when_its_address_became_blocked(
    tmp_path: Path, upstream: Upstream
) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        gw = start_gateway(url, tmp_path)
        try:
            owner = await new_owner(gw)
            conn = await add_connection(gw, owner.api_key, upstream, title="internal")
            call_url = f"{gw.url}/mcp/{conn['id']}/call-tool/echo"
            auth = {"authorization": f"Bearer {owner.api_key}"}
            before = f"allowed-{uuid.uuid4().hex[:8]}"
            allowed = httpx.post(call_url, json={"text": "hi"}, headers={**auth, "x-request-id": before}, timeout=30)
            assert allowed.status_code == 200, allowed.text
            assert await _upstream_saw(upstream, before)

            assert gw.stop() == 0
            gw.env["MESHGATE_BLOCK_PRIVATE_NETWORKS"] = "1"
            gw.start(tmp_path / "gateway-blocking.log")
            after = f"refused-{uuid.uuid4().hex[:8]}"
            refused = httpx.post(call_url, json={"text": "hi"}, headers={**auth, "x-request-id": after}, timeout=30)
            assert refused.status_code != 200, refused.text
            assert "refused to connect" in refused.text and "127.0.0.1 is a private address" in refused.text
            assert not await _upstream_saw(upstream, after)
        finally:
            assert gw.stop() == 0
