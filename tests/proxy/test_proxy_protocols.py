"""Everything an MCP client says passes through /mcp/{connection_id}, in both protocol generations."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import httpx
import jwt
import mcp_types as types
import pytest

from conftest import add_connection, new_owner
from support.gateway import Gateway, Upstream
from support.mcp_client import MODES, connect

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", MODES)
async def test_tools_resources_prompts_and_completion_pass_through(
    gateway: Gateway, upstream: Upstream, mode: str
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    assert conn["status"] == "active", conn["status_reason"]
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key, mode) as client:
        if mode == "legacy":
            assert client.server_info is not None and client.server_info.name == "upstream"
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"echo", "add", "headers", "slow", "fail"} <= tools
        result = await client.call_tool("add", {"a": 2, "b": 3})
        assert result.structured_content == {"sum": 5.0}
        failed = await client.call_tool("fail", {})
        assert failed.is_error and failed.content[0].text == "it failed on purpose"  # type: ignore[union-attr]
        resources = await client.list_resources()
        assert [str(r.uri) for r in resources.resources] == ["memo://one"]
        templates = await client.list_resource_templates()
        assert templates.resource_templates[0].uri_template == "memo://{name}"
        read = await client.read_resource("memo://abc")
        assert read.contents[0].text == "memo memo://abc"  # type: ignore[union-attr]
        prompts = await client.list_prompts()
        assert [p.name for p in prompts.prompts] == ["greet"]
        prompt = await client.get_prompt("greet", {"name": "Ada"})
        assert prompt.messages[0].content.text == "Hello, Ada!"  # type: ignore[union-attr]
        completion = await client.complete(
            types.PromptReference(type="ref/prompt", name="greet"), {"name": "name", "value": "al"}
        )
        assert completion.completion.values == ["alice", "albert"]
        if mode == "legacy":  # ping is a handshake-era method
            await client.send_ping()


async def test_logging_level_and_notifications_pass_in_the_handshake_era(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key, "legacy") as client:
        await client.set_logging_level("debug")  # type: ignore[attr-defined]
        assert (await client.call_tool("echo", {"text": "still here"})).content[0].text == "still here"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
async def test_upstream_sees_meshgate_credentials_and_mesh_token_never_the_client_key(
    gateway: Gateway, upstream: Upstream, mode: str
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream, connection_headers={"X-Team": "blue"})
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key, mode) as client:
        seen = (await client.call_tool("headers", {})).structured_content
    assert seen is not None
    last = seen["requests"][-1]
    assert last["authorization"] == f"Bearer {upstream.token}"
    assert last["x-team"] == "blue"
    for request in seen["requests"]:
        assert owner.api_key not in json.dumps(request)
    claims = jwt.decode(last["x-mesh-token"], gateway.env["MESHGATE_SECRET"], algorithms=["HS256"], audience=conn["id"])
    assert claims["sub"] == owner.user_id
    assert claims["org"] == owner.organization_id
    assert claims["connection"] == conn["id"]
    assert claims["caller"]["type"] == "api_key"
    assert claims["permissions"] == ["*"]
    assert claims["exp"] - claims["iat"] == 300
    assert claims["exp"] > time.time()


async def test_progress_reaches_the_client_before_the_upstream_finishes(gateway: Gateway, upstream: Upstream) -> None:
    # Handshake era only: the SDK's 2026-07-28 server answers a request in one piece when its handler
    # returns (it sends no progress mid-call), so there is nothing to stream in that era. The proxy's
    # streaming does not depend on the era.
    mode = "legacy"
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    url = f"{gateway.url}/mcp/{conn['id']}"
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)
        # The upstream is still waiting: only now, having seen progress, let it finish.
        async with connect(url, owner.api_key) as other:
            await other.call_tool("release", {})

    with anyio.fail_after(20):
        async with connect(url, owner.api_key, mode) as client:
            result = await client.call_tool("slow", {}, progress_callback=on_progress)
    assert progress == [1.0]
    assert result.content[0].text == "done"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
async def test_meta_reaches_the_upstream(gateway: Gateway, upstream: Upstream, mode: str) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key, mode) as client:
        result = await client.call_tool("echo", {"text": "m"}, meta={"example.com/trace": {"span": 7}})
    assert result.structured_content is not None
    assert result.structured_content["receivedMeta"]["example.com/trace"] == {"span": 7}


def _post(url: str, key: str, body: dict[str, Any]) -> httpx.Response:
    headers = {
        "authorization": f"Bearer {key}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
    }
    return httpx.post(url, content=json.dumps(body).encode(), headers=headers, timeout=30)


async def test_ids_meta_and_unknown_fields_survive_unchanged(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    raw_url = upstream.url.removesuffix("/mcp") + "/raw"
    conn = await add_connection(gateway, owner.api_key, upstream, connection_url=raw_url)
    assert conn["status"] == "active", conn["status_reason"]
    request = {
        "jsonrpc": "2.0",
        "id": "call-ä-42",
        "method": "tools/call",
        "params": {
            "name": "echo",
            "arguments": {"text": "x"},
            "_meta": {"client/extra": [1, 2]},
            "x-param-extra": True,
        },
        "x-client-extra": {"nested": None},
    }
    response = _post(f"{gateway.url}/mcp/{conn['id']}", owner.api_key, request)
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["id"] == "call-ä-42"
    assert message["x-envelope-extra"] == 1
    assert message["result"]["x-raw-extra"] == {"kept": True}
    assert message["result"]["received"] == request
    assert response.headers["x-request-id"]
