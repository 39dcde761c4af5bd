"""The live event stream: events published through one gateway process reach a watcher on another (PostgreSQL
NOTIFY), filtered by type, and `Last-Event-ID` resumes from the store without repeats."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

from support.databases import fresh_database
from support.gateway import Gateway, free_port, start_gateway

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def two_gateways(tmp_path: Path) -> Iterator[tuple[Gateway, Gateway]]:
    with fresh_database("postgresql", tmp_path) as url:
        first = start_gateway(url, tmp_path, "first")
        second = Gateway(env=first.env, port=0)
        try:
            second.port = free_port()
            second.start(tmp_path / "second.log")
            yield first, second
        finally:
            assert second.stop() == 0
            assert first.stop() == 0


async def cloudevents(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The data of each SSE event of the stream (keep-alive comments skipped)."""
    kind = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            yield {"event": kind, **orjson.loads(line[len("data: ") :])}


async def publish(client: httpx.AsyncClient, gateway: Gateway, slug: str, key: str, event_type: str) -> str:
    answer = await client.post(
        f"{gateway.url}/api/{slug}/events/{event_type}", json={"data": {"t": event_type}}, headers=_auth(key)
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_a_watcher_on_another_replica_gets_matching_events_and_resumes(
    two_gateways: tuple[Gateway, Gateway],
) -> None:
    first, second = two_gateways
    owner = first.bootstrap("watcher@example.com", "Watchers")
    watch = f"{second.url}/api/{owner.organization_slug}/watch?types=order.*,invoice.paid"
    async with httpx.AsyncClient(timeout=30) as client:
        received: list[dict[str, Any]] = []
        published: list[str] = []
        with anyio.fail_after(30):
            async with client.stream("GET", watch, headers=_auth(owner.api_key)) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                stream = cloudevents(response)
                published.append(await publish(client, first, owner.organization_slug, owner.api_key, "order.made"))
                published.append(await publish(client, first, owner.organization_slug, owner.api_key, "user.left"))
                published.append(await publish(client, first, owner.organization_slug, owner.api_key, "invoice.paid"))
                published.append(await publish(client, first, owner.organization_slug, owner.api_key, "order.sent"))
                async for event in stream:
                    received.append(event)
                    if len(received) == 3:
                        break
        assert [event["type"] for event in received] == ["order.made", "invoice.paid", "order.sent"]
        assert [event["id"] for event in received] == [published[0], published[2], published[3]]
        assert {event["event"] for event in received} == {"cloudevent"}
        assert received[0]["data"] == {"t": "order.made"} and received[0]["specversion"] == "1.0"

        resumed: list[str] = []
        with anyio.fail_after(30):
            headers = {**_auth(owner.api_key), "last-event-id": published[0]}
            async with client.stream("GET", watch, headers=headers) as response:
                async for event in cloudevents(response):
                    resumed.append(event["id"])
                    if len(resumed) == 2:
                        break
        assert resumed == [published[2], published[3]]  # after the first, matching only, oldest first

        assert (await client.get(watch)).status_code == 401
        other = f"{second.url}/api/someone-else/watch"
        assert (await client.get(other, headers=_auth(owner.api_key))).status_code == 404
        bad = await client.get(f"{watch}&types=bad%20type", headers=_auth(owner.api_key))
        assert bad.status_code == 400 and "is not an event type" in bad.json()["error"]["message"]
