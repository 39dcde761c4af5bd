"""Upstreams recover by themselves: a Streamable HTTP upstream killed and restarted on the same port answers
the next call (REST, a 2026-07-28 client bridged onto meshgate's own session, a virtual MCP) without anyone
touching the connection; CONNECTION_TEST, the connection's status and its dashboard page say what is true."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from mcp.shared.exceptions import MCPError

from conftest import add_connection, new_owner
from support.gateway import Gateway, Upstream, free_port, spawn_server
from support.mcp_client import call, connect
from support.oauth import forms_of, new_person
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio
TOKEN = remember_secret("phoenix-upstream-token-2718")
RECOVERS_WITHIN_S = 20  # "never stalls" bound for conditions polled after a restart


def _spawn(port: int, *flags: str, module: str = "support.upstream") -> Upstream:
    args = ["--port", str(port), "--token", TOKEN, *flags]
    return Upstream(port, TOKEN, spawn_server(module, port, args))


def _restart(upstream: Upstream, *flags: str, module: str = "support.upstream") -> None:
    """Start the same server again on the same port (a deploy, a crash and restart)."""
    upstream.kill()
    upstream.process = _spawn(upstream.port, *flags, module=module).process


@pytest.fixture
def phoenix() -> Iterator[Upstream]:
    upstream = _spawn(free_port())
    yield upstream
    upstream.kill()


@pytest.fixture
def legacy_phoenix() -> Iterator[Upstream]:
    upstream = _spawn(free_port(), "--legacy-only")
    yield upstream
    upstream.kill()


async def _rest_echo(gateway: Gateway, key: str, conn_id: str, text: str) -> tuple[int, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{gateway.url}/mcp/{conn_id}/call-tool/echo",
            json={"text": text},
            headers={"authorization": f"Bearer {key}"},
        )
    return response.status_code, response.json()


async def test_a_restarted_upstream_answers_the_next_rest_call(gateway: Gateway, phoenix: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, phoenix, title="Phoenix")
    status, before = await _rest_echo(gateway, owner.api_key, conn["id"], "before")
    assert (status, before["structuredContent"]["text"]) == (200, "before")
    phoenix.kill()
    for _ in range(3):  # callers keep calling while it is down (fewer than the circuit's threshold)
        status, down = await _rest_echo(gateway, owner.api_key, conn["id"], "down")
        assert (status, down["error"]["code"]) == (502, "upstream_unreachable")
    _restart(phoenix)
    status, after = await _rest_echo(gateway, owner.api_key, conn["id"], "after")
    assert (status, after["structuredContent"]["text"]) == (200, "after")


async def test_an_upstream_that_answers_400_for_a_forgotten_session_gets_a_new_one(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    forgetful = _spawn(free_port(), module="support.forgetful_upstream")
    try:
        conn = await add_connection(gateway, owner.api_key, forgetful, title="Forgetful")
        assert (await _rest_echo(gateway, owner.api_key, conn["id"], "before"))[0] == 200
        _restart(forgetful, module="support.forgetful_upstream")  # meshgate's session id is unknown to it now
        status, after = await _rest_echo(gateway, owner.api_key, conn["id"], "after")
    finally:
        forgetful.kill()
    assert (status, after["structuredContent"]["text"]) == (200, "after")


async def test_a_restarted_upstream_answers_a_2026_client_bridged_onto_meshgates_session(
    gateway: Gateway, legacy_phoenix: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, legacy_phoenix, title="Phoenix")
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key, "2026-07-28") as client:
        assert (await client.call_tool("echo", {"text": "before"})).structured_content["text"] == "before"  # type: ignore[index]
        legacy_phoenix.kill()
        with pytest.raises(MCPError, match="upstream Phoenix is unreachable"):
            await client.call_tool("echo", {"text": "down"})
        _restart(legacy_phoenix, "--legacy-only")
        after = await client.call_tool("echo", {"text": "after"})
    assert not after.is_error
    assert after.structured_content["text"] == "after"  # type: ignore[index]


async def test_a_virtual_mcp_leaves_a_dead_member_out_and_takes_it_back_within_seconds(
    gateway: Gateway, phoenix: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, phoenix, title="Phoenix")
    async with connect(gateway.mcp_url, owner.api_key) as admin:
        data = {"title": "Desk", "connections": [{"connection_id": conn["id"]}]}
        virtual_id = (await call(admin, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data}))["id"]
    async with connect(f"{gateway.url}/mcp/virtual/{virtual_id}", owner.api_key) as client:
        assert "phoenix_echo" in {tool.name for tool in (await client.list_tools()).tools}
        phoenix.kill()
        down = await client.call_tool("phoenix_echo", {"text": "down"})
        assert down.is_error
        assert "unreachable" in down.content[0].text  # type: ignore[union-attr]
        assert "phoenix_echo" not in {tool.name for tool in (await client.list_tools()).tools}
        _restart(phoenix)
        with anyio.fail_after(RECOVERS_WITHIN_S):  # the list TTL is 300 s: a left-out member is retried sooner
            while True:
                if "phoenix_echo" in {tool.name for tool in (await client.list_tools()).tools}:
                    break
                await anyio.sleep(0.2)
        after = await client.call_tool("phoenix_echo", {"text": "after"})
    assert not after.is_error
    assert after.content[0].text == "after"  # type: ignore[union-attr]


async def test_an_upstream_back_after_its_circuit_opened_answers_once_the_cool_down_allows(
    gateway: Gateway, phoenix: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, phoenix, title="Phoenix")
    phoenix.kill()
    codes = [(await _rest_echo(gateway, owner.api_key, conn["id"], "down"))[1]["error"]["code"] for _ in range(6)]
    assert codes == ["upstream_unreachable"] * 5 + ["upstream_unavailable"]  # five different calls opened it
    _restart(phoenix)
    with anyio.fail_after(RECOVERS_WITHIN_S):
        while (answer := await _rest_echo(gateway, owner.api_key, conn["id"], "after"))[0] != 200:
            assert answer[1]["error"]["code"] == "upstream_unavailable"  # refused quickly until the probe
            await anyio.sleep(0.2)
    assert answer[1]["structuredContent"]["text"] == "after"


@asynccontextmanager
async def _dashboard(gateway: Gateway, email: str, password: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        login = await http.get("/login")
        fields = {**forms_of(login.text).fields, "email": email, "password": password, "next": "/app"}
        assert (await http.post("/login", data=fields)).status_code == 303
        root = str((await http.get("/app", follow_redirects=True)).url).rsplit("/", 1)[0]
        yield http, root


async def test_connection_test_status_and_page_show_a_dead_upstream_and_its_return(
    gateway: Gateway, phoenix: Upstream
) -> None:
    person = await new_person(gateway, "Recovery Org")
    conn = await add_connection(gateway, person.api_key, phoenix, title="Phoenix")
    async with (
        connect(gateway.mcp_url, person.api_key) as admin,
        _dashboard(gateway, person.email, person.password) as (http, root),
    ):
        assert (await call(admin, "CONNECTION_TEST", {"id": conn["id"]}))["healthy"] is True
        phoenix.kill()

        page = (await http.get(f"{root}/connections/{conn['id']}")).text
        tested = await http.post(
            f"{root}/connections/{conn['id']}/test", data={"csrf_token": forms_of(page).fields["csrf_token"]}
        )
        assert "Not healthy: upstream Phoenix is unreachable" in tested.text  # the page's Test button
        assert '<span class="badge bad">error</span>' in tested.text
        down = await call(admin, "CONNECTION_TEST", {"id": conn["id"]})
        assert down["healthy"] is False
        assert "upstream Phoenix is unreachable" in down["error"]
        stored = await call(admin, "COLLECTION_CONNECTIONS_GET", {"id": conn["id"]})
        assert (stored["status"], stored["status_reason"]) == ("error", down["error"])
        page = (await http.get(f"{root}/connections/{conn['id']}")).text
        assert '<span class="badge bad">error</span>' in page
        assert "upstream Phoenix is unreachable" in page

        _restart(phoenix)
        up = await call(admin, "CONNECTION_TEST", {"id": conn["id"]})
        assert up["healthy"] is True
        stored = await call(admin, "COLLECTION_CONNECTIONS_GET", {"id": conn["id"]})
        assert (stored["status"], stored["status_reason"]) == ("active", None)
        page = (await http.get(f"{root}/connections/{conn['id']}")).text
        assert '<span class="badge ok">active</span>' in page
        assert "unreachable" not in page


async def test_reads_show_an_upstream_whose_calls_fail_as_error_until_a_call_gets_through(
    gateway: Gateway, phoenix: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, phoenix, title="Phoenix")
    async with connect(gateway.mcp_url, owner.api_key) as admin:
        assert (await _rest_echo(gateway, owner.api_key, conn["id"], "before"))[0] == 200
        assert (await call(admin, "COLLECTION_CONNECTIONS_GET", {"id": conn["id"]}))["status"] == "active"
        phoenix.kill()
        assert (await _rest_echo(gateway, owner.api_key, conn["id"], "down"))[0] == 502
        seen = await call(admin, "COLLECTION_CONNECTIONS_GET", {"id": conn["id"]})
        assert seen["status"] == "error"
        assert seen["status_reason"].startswith("calls to the server are failing: unreachable:")
        listed = await call(admin, "COLLECTION_CONNECTIONS_LIST", {})
        assert [item["status"] for item in listed["items"] if item["id"] == conn["id"]] == ["error"]
        _restart(phoenix)
        assert (await _rest_echo(gateway, owner.api_key, conn["id"], "after"))[0] == 200
        seen = await call(admin, "COLLECTION_CONNECTIONS_GET", {"id": conn["id"]})
    assert (seen["status"], seen["status_reason"]) == ("active", None)
