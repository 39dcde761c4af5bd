"""Callers inside meshgate (workers, the dashboard) call a tool as a principal with one awaited call, and get
the permission decision and audit record of a call over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from meshgate.calls.models import CallContext, Target
from meshgate.dashboard._calls import ToolCaller
from meshgate.errors import NotFound, PermissionDenied
from support.gateway import Upstream
from support.inprocess import InProcessGateway, in_process_gateway

pytestmark = pytest.mark.anyio

MCP = {"accept": "application/json, text/event-stream"}


async def tool(gateway: InProcessGateway, name: str, arguments: dict[str, Any]) -> Any:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    answer = (await gateway.client.post("/mcp", json=message, headers=MCP)).json()
    assert not answer["result"].get("isError"), answer
    return answer["result"]["structuredContent"]


async def narrow_key(gateway: InProcessGateway, tools: list[str]) -> str:
    created = await tool(gateway, "API_KEY_CREATE", {"name": "worker", "permissions": {gateway.conn_id: tools}})
    return str(created["key"])


async def logs(gateway: InProcessGateway, count: int) -> list[dict[str, Any]]:
    with anyio.fail_after(15):
        while True:
            found = await tool(gateway, "MONITORING_LOGS_LIST", {"connectionId": gateway.conn_id})
            if len(found["items"]) >= count:
                return list(found["items"])
            await anyio.sleep(0.05)


async def test_a_worker_calls_a_tool_as_a_principal_and_is_audited(tmp_path: Path, upstream: Upstream) -> None:
    async with in_process_gateway(tmp_path, upstream) as gateway:
        principal = await gateway.runtime.authenticator.authenticate(await narrow_key(gateway, ["add"]))
        calls, target = gateway.runtime.calls, Target(gateway.conn_id)
        context = CallContext(request_id="worker-1", user_agent="a worker")
        result = await calls.call_tool(principal, target, "add", {"a": 2, "b": 3}, context)
        assert result["structuredContent"] == {"sum": 5.0}
        with pytest.raises(PermissionDenied, match=f"{gateway.conn_id}:echo"):
            await calls.call_tool(principal, target, "echo", {"text": "no"}, CallContext(request_id="worker-2"))
        with pytest.raises(NotFound):
            await calls.call_tool(principal, Target("00000000-0000-0000-0000-000000000000"), "add", {})
        by_request = {item["requestId"]: item for item in await logs(gateway, 2)}
    done, refused = by_request["worker-1"], by_request["worker-2"]
    assert (done["toolName"], done["isError"], done["userAgent"]) == ("add", False, "a worker")
    assert done["caller"]["apiKeyId"] == principal.api_key_id
    assert (refused["toolName"], refused["isError"]) == ("echo", True)
    assert "permission_denied" in refused["errorMessage"]


async def test_the_dashboard_calls_through_the_same_service(tmp_path: Path, upstream: Upstream) -> None:
    async with in_process_gateway(tmp_path, upstream) as gateway:
        principal = await gateway.runtime.authenticator.authenticate(await narrow_key(gateway, ["add"]))
        caller = ToolCaller(gateway.runtime.calls, gateway.runtime.limiter)
        done = await caller.call(principal, gateway.conn_id, "add", {"a": 1, "b": 1})
        refused = await caller.call(principal, gateway.conn_id, "echo", {"text": "x"})
        items = await logs(gateway, 2)
    assert done.status == 200 and done.result is not None and done.result["structuredContent"] == {"sum": 2.0}
    assert refused.status == 403 and refused.error is not None and refused.error["code"] == "permission_denied"
    assert {(item["toolName"], item["userAgent"], item["isError"]) for item in items} == {
        ("add", "meshgate dashboard", False),
        ("echo", "meshgate dashboard", True),
    }
