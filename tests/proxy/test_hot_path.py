"""A proxied call does no database query once caches are warm, on every path a call can take (counted on
the real engine)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from meshgate.calls.models import Target
from meshgate.runtime import Runtime
from support.gateway import Upstream, connection_request, start_upstream
from support.inprocess import InProcessGateway, in_process_gateway
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio

PATHS = ("rest", "mcp-2026", "mcp-handshake", "virtual", "bridged", "worker")
MCP = {"accept": "application/json, text/event-stream"}
STATELESS = {**MCP, "mcp-protocol-version": "2026-07-28"}
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


@pytest.fixture(scope="module")
def legacy_upstream() -> Iterator[Upstream]:
    server = start_upstream(token=remember_secret("hot-path-legacy-token"), legacy_only=True)
    yield server
    server.kill()


def _tool_call(name: str, n: int, stateless: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": {"a": n, "b": 1}}
    if stateless:
        params["_meta"] = ENVELOPE
    return {"jsonrpc": "2.0", "id": n + 10, "method": "tools/call", "params": params}


async def _management(gateway: InProcessGateway, name: str, arguments: dict[str, Any]) -> Any:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    return (await gateway.client.post("/mcp", json=message, headers=MCP)).json()["result"]["structuredContent"]


async def _caller(path: str, gateway: InProcessGateway, legacy: Upstream) -> Callable[[int], Awaitable[None]]:
    """One call of `add` along `path`, checked to have answered."""
    client = gateway.client
    if path == "rest":

        async def rest(n: int) -> None:
            response = await client.post(f"/mcp/{gateway.conn_id}/call-tool/add", json={"a": n, "b": 1})
            assert response.status_code == 200, response.text

        return rest
    if path == "worker":
        principal = await gateway.runtime.authenticator.authenticate(gateway.key)

        async def worker(n: int) -> None:
            result = await gateway.runtime.calls.call_tool(principal, Target(gateway.conn_id), "add", {"a": n, "b": 1})
            assert result["structuredContent"] == {"sum": n + 1.0}

        return worker
    url, name, headers = f"/mcp/{gateway.conn_id}", "add", dict(STATELESS)
    if path == "virtual":
        data = {"title": "Hot", "connections": [{"connection_id": gateway.conn_id}]}
        url, name = (
            f"/mcp/virtual/{(await _management(gateway, 'COLLECTION_VIRTUAL_MCP_CREATE', {'data': data}))['id']}",
            "upstream_add",
        )
    elif path == "bridged":
        created = await _management(
            gateway, "COLLECTION_CONNECTIONS_CREATE", connection_request(legacy, "Legacy")["params"]["arguments"]
        )
        url = f"/mcp/{created['id']}"
    elif path == "mcp-handshake":
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        answer = await client.post(url, json=init, headers=MCP)
        headers = {**MCP, "mcp-session-id": answer.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await client.post(url, json=note, headers=headers)).status_code == 202
    stateless = headers.get("mcp-protocol-version") == "2026-07-28"

    async def mcp(n: int) -> None:
        response = await client.post(url, json=_tool_call(name, n, stateless), headers=headers)
        assert response.status_code == 200, response.text
        assert f'"sum":{n + 1.0}'.encode() in response.content.replace(b" ", b""), response.text

    return mcp


@pytest.mark.parametrize("path", PATHS)
async def test_steady_state_tools_call_runs_no_query(
    tmp_path: Path, upstream: Upstream, legacy_upstream: Upstream, path: str
) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO MONITORING_LOGS"):
            statements.append(statement)

    def listen(runtime: Runtime) -> None:
        event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", count)

    async with in_process_gateway(tmp_path, upstream, before_start=listen) as gateway:
        call = await _caller(path, gateway, legacy_upstream)
        await call(0)  # warms the caches
        warm_up = len(statements)
        statements.clear()
        for n in range(1, 21):
            await call(n)
        during_calls = list(statements)
    # (Shutdown then writes key last-used times and audit records in the background; not counted.)
    assert warm_up > 0, "the counter saw no query at all while caches were cold"
    assert during_calls == []
