"""Helpers for event bus tests: an in-process gateway whose event worker the test drives with its own clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from meshgate.calls.models import Target
from meshgate.events.worker import DeliveryPolicy, EventWorker
from support.gateway import Upstream, free_port, spawn_server
from support.inprocess import InProcessGateway, in_process_gateway
from support.secrets import remember_secret

MCP = {"accept": "application/json, text/event-stream"}
NO_WORKER = {"MESHGATE_EVENT_DELIVERY": "off"}  # the test drives its own worker, with its own clock


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)  # whole milliseconds, as events show times

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def start_subscriber() -> Iterator[Upstream]:
    """An SDK-built ON_EVENTS server (tests/support/event_subscriber.py) for as long as the generator runs."""
    port = free_port()
    token = remember_secret("subscriber-token-0123456789")
    server = Upstream(
        port, token, spawn_server("support.event_subscriber", port, ["--port", str(port), "--token", token])
    )
    yield server
    server.kill()


async def call(gateway: InProcessGateway, name: str, arguments: dict[str, Any], key: str | None = None) -> Any:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    headers = MCP if key is None else {**MCP, "authorization": f"Bearer {key}"}
    answer = (await gateway.client.post("/mcp", json=message, headers=headers)).json()
    return answer["result"]


async def tool(gateway: InProcessGateway, name: str, arguments: dict[str, Any], key: str | None = None) -> Any:
    result = await call(gateway, name, arguments, key)
    assert not result.get("isError"), result
    return result["structuredContent"]


async def upstream_tool(gateway: InProcessGateway, name: str, arguments: dict[str, Any]) -> Any:
    """Call a tool of the subscriber itself (through meshgate's call pipeline, as the owner)."""
    owner = await gateway.runtime.authenticator.authenticate(gateway.key)
    result = await gateway.runtime.calls.call_tool(owner, Target(gateway.conn_id), name, arguments)
    return result["structuredContent"]


@asynccontextmanager
async def bus(
    tmp_path: Path,
    subscriber: Upstream,
    database_url: str,
    *,
    env: dict[str, str] | None = None,
    before_start: Any = None,
    **policy: Any,
) -> AsyncIterator[tuple[InProcessGateway, EventWorker, Clock]]:
    async with in_process_gateway(
        tmp_path, subscriber, env={**NO_WORKER, **(env or {})}, before_start=before_start, database_url=database_url
    ) as gateway:
        clock = Clock()
        worker = gateway.runtime.events  # not started (NO_WORKER): the test runs its rounds
        worker.clock, worker.jitter, worker.policy = clock, lambda: 1.0, DeliveryPolicy(**policy)
        yield gateway, worker, clock


async def deliveries(gateway: InProcessGateway, event_id: str) -> list[dict[str, Any]]:
    return list((await tool(gateway, "EVENT_GET", {"eventId": event_id}))["deliveries"])
