"""Host and Origin checks on MCP endpoints (DNS-rebinding protection) and methods other than POST."""

from __future__ import annotations

import httpx
import pytest

from conftest import new_owner
from support.gateway import Gateway, rpc

pytestmark = pytest.mark.anyio
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


async def test_foreign_host_header_is_refused(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    response = rpc(gateway.mcp_url, LIST, key=owner.api_key, headers={"host": "attacker.example:80"})
    assert response.status_code == 403
    assert "Host 'attacker.example:80' is not allowed" in response.json()["error"]["message"]


async def test_foreign_origin_is_refused_and_loopback_origin_allowed(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    refused = rpc(gateway.mcp_url, LIST, key=owner.api_key, headers={"origin": "https://attacker.example"})
    assert refused.status_code == 403
    assert "Origin" in refused.json()["error"]["message"]
    allowed = rpc(gateway.mcp_url, LIST, key=owner.api_key, headers={"origin": "http://localhost:5173"})
    assert allowed.status_code == 200


async def test_host_check_runs_before_authentication(gateway: Gateway) -> None:
    response = rpc(gateway.mcp_url, LIST, key=None, headers={"host": "attacker.example"})
    assert response.status_code == 403


def test_get_and_delete_on_the_stateless_management_endpoint_are_405(gateway: Gateway) -> None:

    for method in ("GET", "DELETE"):
        response = httpx.request(method, gateway.mcp_url, headers={"accept": "text/event-stream"})
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
