"""Helpers for the dashboard's event bus tests: an organization whose connection (the ON_EVENTS test server)
subscribes to `order.*`, events published over the HTTP API, deliveries waited for with a deadline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from support.gateway import Gateway, Upstream, manage
from support.oauth import Person, new_person

HOSTILE = "<script>document.title='owned'</script>"


@dataclass(frozen=True)
class Bus:
    person: Person
    slug: str
    connection_id: str


async def bus_with_subscriber(gateway: Gateway, subscriber: Upstream, org: str) -> Bus:
    """An organization whose "Orders app" connection (the ON_EVENTS test server) subscribes to `order.*`."""
    person = await new_person(gateway, org)
    data = {"title": "Orders app", "connection_type": "HTTP", "connection_url": subscriber.url}
    connection = manage(
        gateway, person.api_key, "COLLECTION_CONNECTIONS_CREATE", data={**data, "connection_token": subscriber.token}
    )
    manage(gateway, person.api_key, "EVENT_SUBSCRIBE", eventType="order.*", connectionId=connection["id"])
    slug = manage(gateway, person.api_key, "ORGANIZATION_GET")["slug"]
    return Bus(person, str(slug), str(connection["id"]))


async def upstream(gateway: Gateway, bus: Bus, tool: str, arguments: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            f"{gateway.url}/mcp/{bus.connection_id}/call-tool/{tool}",
            json=arguments,
            headers={"authorization": f"Bearer {bus.person.api_key}"},
        )
    assert answer.status_code == 200, answer.text


async def publish(gateway: Gateway, bus: Bus, event_type: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            f"{gateway.url}/api/{bus.slug}/events/{event_type}",
            json=body,
            headers={"authorization": f"Bearer {bus.person.api_key}"},
        )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def delivery_becomes(gateway: Gateway, key: str, event_id: str, status: str) -> dict[str, Any]:
    """The gateway's own worker delivers in the background: poll the event with a deadline."""
    with anyio.fail_after(20):
        while True:
            deliveries = manage(gateway, key, "EVENT_GET", eventId=event_id)["deliveries"]
            if deliveries and deliveries[0]["status"] == status:
                return dict(deliveries[0])
            await anyio.sleep(0.05)


async def dead_and_scheduled(gateway: Gateway, subscriber: Upstream, org: str) -> tuple[Bus, str, str]:
    """An order event whose only delivery failed for good (the next attempt will be asked to wait an hour),
    and an event scheduled for next year."""
    bus = await bus_with_subscriber(gateway, subscriber, org)
    answers = [{"success": False, "error": "stock service down"}, {"retryAfter": 3_600_000}]
    await upstream(gateway, bus, "answer_with", {"answers": answers})
    failed = await publish(
        gateway, bus, "order.created", {"subject": "order-7", "data": {"note": HOSTILE, "total": 12}}
    )
    await delivery_becomes(gateway, bus.person.api_key, failed["id"], "dead")
    later = await publish(gateway, bus, "order.reminder", {"deliverAt": "2099-01-01T09:00:00Z"})
    return bus, str(failed["id"]), str(later["id"])
