"""`meshgate connect URL`: the SDK's stdio client talks to the bridge, which forwards to a real gateway and a
real upstream, in both protocol generations, server-to-client requests included."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from pydantic import FileUrl

from support.gateway import Gateway, Upstream, create_connection
from support.mcp_client import MODES
from support.remote import client_env, remote

pytestmark = pytest.mark.anyio
ROOT = "file:///work/bridged"


async def _roots(_context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri=FileUrl(ROOT), name="bridged")])


@asynccontextmanager
async def bridged(url: str, config: Path, mode: str, *extra: str) -> AsyncIterator[Client]:
    """The SDK's stdio client, running `meshgate connect URL` as its server."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "meshgate", "connect", url, *extra], env=client_env(config)
    )
    async with Client(stdio_client(params), mode=mode, list_roots_callback=_roots) as client:  # type: ignore[arg-type]
        yield client


@pytest.mark.parametrize("mode", MODES)
async def test_a_connection_is_listed_and_called_through_the_bridge(
    gateway: Gateway, upstream: Upstream, tmp_path: Path, mode: str
) -> None:
    owner = gateway.bootstrap(f"bridge-{mode}-{tmp_path.name}@example.com")
    url = create_connection(gateway, owner.api_key, upstream)
    async with bridged(url, tmp_path, mode, "--api-key", owner.api_key) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"echo", "add", "roots"} <= names
        result = await client.call_tool("echo", {"text": "over stdio"})
        assert not result.is_error
        assert result.structured_content is not None
        assert result.structured_content["text"] == "over stdio"


@pytest.mark.parametrize("mode", MODES)
async def test_the_upstreams_request_for_roots_reaches_the_stdio_client(
    gateway: Gateway, upstream: Upstream, tmp_path: Path, mode: str
) -> None:
    owner = gateway.bootstrap(f"bridge-roots-{mode}-{tmp_path.name}@example.com")
    url = create_connection(gateway, owner.api_key, upstream)
    async with bridged(url, tmp_path, mode, "--api-key", owner.api_key) as client:
        result = await client.call_tool("roots", {})
        assert result.content[0].text == f"roots: {ROOT}"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
async def test_the_management_endpoint_is_bridged_with_the_stored_login(
    gateway: Gateway, tmp_path: Path, mode: str
) -> None:
    owner = gateway.bootstrap(f"bridge-login-{mode}-{tmp_path.name}@example.com")
    assert remote(tmp_path, "login", gateway.url, "--api-key", owner.api_key).returncode == 0
    async with bridged(gateway.mcp_url, tmp_path, mode) as client:
        assert "API_KEY_CREATE" in {tool.name for tool in (await client.list_tools()).tools}
        got = await client.call_tool("ORGANIZATION_GET", {})
        assert got.structured_content is not None
        assert got.structured_content["id"] == owner.organization_id


async def test_a_refused_key_answers_each_request_with_a_json_rpc_error(gateway: Gateway, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "meshgate", "connect", gateway.mcp_url, "--api-key", "mg_wrong-key-000000000000000000000000"],
        env=client_env(tmp_path),
    )
    with pytest.raises(BaseException) as raised:  # the SDK wraps the refusal in its task group's exception group
        async with Client(stdio_client(params), mode="legacy") as client:  # type: ignore[arg-type]
            await client.list_tools()
    reasons = " ".join(str(error) for error in _leaves(raised.value))
    assert "the gateway refused the credentials (HTTP 401" in reasons
    assert "run `meshgate login` or pass --api-key" in reasons


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]
