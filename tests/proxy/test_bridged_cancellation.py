"""A `notifications/cancelled` cancels only its own caller's call on the bridged path: the session id and
request id a client names are not enough, the credential must be the caller's (security review, finding 27)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import httpx
import pytest

from conftest import add_connection, key_for_user, new_owner
from support.gateway import Gateway, Upstream, free_port, spawn_server
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio
TOKEN = remember_secret("bridged-cancel-token-77")
MCP = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture(scope="module")
def sse_upstream() -> Iterator[Upstream]:
    """The test upstream over the legacy HTTP+SSE transport: meshgate reaches it over its own session."""
    port = free_port()
    process = spawn_server("support.upstream", port, ["--port", str(port), "--token", TOKEN, "--sse"])
    yield Upstream(port, TOKEN, process)
    process.kill()
    process.wait(timeout=10)


def _message(message_id: int | None, method: str, params: dict[str, object]) -> dict[str, object]:
    message: dict[str, object] = {"jsonrpc": "2.0", "method": method, "params": params}
    if message_id is not None:
        message["id"] = message_id
    return message


@pytest.mark.finding(27)
async def test_another_credential_cannot_cancel_a_call_by_naming_its_session(
    gateway: Gateway, sse_upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(
        gateway,
        owner.api_key,
        sse_upstream,
        connection_type="SSE",
        connection_url=f"http://127.0.0.1:{sse_upstream.port}/sse",
    )
    url = f"{gateway.url}/mcp/{conn['id']}"
    other_key = await key_for_user(gateway, owner.organization_id, owner.user_id)
    mine = {**MCP, "authorization": f"Bearer {owner.api_key}"}
    async with httpx.AsyncClient(timeout=30) as http:
        init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        answer = await http.post(url, json=_message(0, "initialize", init), headers=mine)
        session = answer.headers["mcp-session-id"]
        mine |= {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        slow = _message(7, "tools/call", {"name": "slow", "arguments": {}, "_meta": {"progressToken": "p"}})
        with anyio.fail_after(20):
            async with http.stream("POST", url, json=slow, headers=mine) as stream:
                lines = stream.aiter_lines()
                async for line in lines:
                    if line.startswith("data:") and "notifications/progress" in line:
                        break  # the upstream is working on the call
                theirs = {**mine, "authorization": f"Bearer {other_key}"}
                cancel = _message(None, "notifications/cancelled", {"requestId": 7, "reason": "not yours"})
                assert (await http.post(url, json=cancel, headers=theirs)).status_code == 202
                release = _message(8, "tools/call", {"name": "release", "arguments": {}})
                assert (await http.post(url, json=release, headers=mine)).status_code == 200
                results = [json.loads(line[5:]) for line in [line async for line in lines] if line.startswith("data:")]
    assert [message["result"]["content"][0]["text"] for message in results if message.get("id") == 7] == ["done"]
