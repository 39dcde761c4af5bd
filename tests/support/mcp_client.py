"""The official MCP SDK client pointed at a gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from mcp.client import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

MODES = ("legacy", "2026-07-28")


@asynccontextmanager
async def connect(url: str, key: str, mode: str = "legacy") -> AsyncIterator[Client]:
    """`mode` is "legacy" (handshake era, 2025-11-25) or "2026-07-28" (stateless era)."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,  # type: ignore[arg-type]
    ):
        yield client


@asynccontextmanager
async def connect_answering(url: str, key: str, mode: str, **callbacks: Any) -> AsyncIterator[Client]:
    """Like `connect`, with the client's answers to server requests (`elicitation_callback=`,
    `sampling_callback=`, `list_roots_callback=`) and a `message_handler=` for notifications."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, **callbacks) as client,  # type: ignore[arg-type]
    ):
        yield client


@asynccontextmanager
async def connect_pinned(url: str, key: str, version: str) -> AsyncIterator[ClientSession]:
    """A handshake-era session that offers exactly `version` (e.g. 2025-03-26)."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        init = await session.send_request(
            types.InitializeRequest(
                params=types.InitializeRequestParams(
                    protocol_version=version,
                    capabilities=types.ClientCapabilities(),
                    client_info=types.Implementation(name="meshgate-tests", version="0"),
                )
            ),
            types.InitializeResult,
        )
        session.adopt(init)
        await session.send_notification(types.InitializedNotification())
        yield session


class ToolFailedError(AssertionError):
    """A tool answered isError when the test expected success."""


async def call(client: Client | ClientSession, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call a tool and return its structured content; raise `ToolFailedError` on an isError result."""
    result = await client.call_tool(tool, arguments or {})
    if result.is_error:
        raise ToolFailedError(f"{tool} failed: {result.content[0].text}")  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client | ClientSession, tool: str, arguments: dict[str, Any] | None = None) -> str:
    """Call a tool that must fail; return its one-line reason."""
    result = await client.call_tool(tool, arguments or {})
    assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "\n" not in text
    return text


async def tool_names(client: Client | ClientSession) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}
