"""Security review finding 4: an upstream pushing one 15 MiB SSE event in 1 KiB chunks stalls nobody. While
meshgate reads and relays it, `/health/live` keeps answering; the bound is a generous "never stalls" check,
and the slowest answer is printed (run with -s to see it)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

from conftest import new_owner
from support.chatty_upstream import start_chatty
from support.gateway import Gateway, Upstream
from support.mcp_client import call, connect

pytestmark = pytest.mark.anyio
NEVER_STALLS_S = 60
HEALTH_BOUND_S = 1.0


@pytest.fixture(scope="module")
def chatty() -> Iterator[Upstream]:
    upstream = start_chatty()
    yield upstream
    upstream.kill()


@pytest.mark.finding(4)
async def test_health_answers_while_an_upstream_pushes_a_15_mib_event(gateway: Gateway, chatty: Upstream) -> None:
    owner = await new_owner(gateway)
    data = {"title": "Huge", "connection_type": "HTTP", "connection_url": chatty.url, "connection_token": chatty.token}
    async with connect(gateway.mcp_url, owner.api_key) as client:
        made = await call(client, "COLLECTION_CONNECTIONS_CREATE", {"data": data})
    assert made["status"] == "active", made
    waits: list[float] = []
    answer: list[httpx.Response] = []

    async with httpx.AsyncClient(timeout=NEVER_STALLS_S) as http:

        async def huge_call() -> None:
            answer.append(
                await http.post(
                    f"{gateway.url}/mcp/{made['id']}/call-tool/huge",
                    json={},
                    headers={"authorization": f"Bearer {owner.api_key}"},
                )
            )

        async def probe() -> None:
            async with httpx.AsyncClient(timeout=NEVER_STALLS_S) as prober:
                while not answer:
                    started = time.monotonic()
                    live = await prober.get(f"{gateway.url}/health/live")
                    waits.append(time.monotonic() - started)
                    assert live.status_code == 200
                    await anyio.sleep(0.01)

        with anyio.fail_after(NEVER_STALLS_S):
            async with anyio.create_task_group() as group:
                group.start_soon(huge_call)
                group.start_soon(probe)

    (response,) = answer
    # 15 MiB is under the 16 MiB event limit: the result comes back whole.
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["content"][0]["text"]) == 15 * 1024 * 1024
    assert len(waits) > 5, "the call ended before /health/live could be probed meanwhile"
    print(f"/health/live while a 15 MiB event streamed: {len(waits)} probes, slowest {max(waits) * 1000:.1f} ms")
    assert max(waits) < HEALTH_BOUND_S
