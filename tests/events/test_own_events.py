"""meshgate's own events: connections, members and API keys changing are CloudEvents with source `meshgate`,
published in the transaction of the change (nothing for a change that did not happen) and without secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.events import bus, call, tool, upstream_tool
from support.gateway import Upstream

pytestmark = pytest.mark.anyio


async def _heard(gateway: Any) -> list[dict[str, Any]]:
    batches = (await upstream_tool(gateway, "received", {}))["batches"]
    return [event for batch in batches for event in batch]


async def test_connection_and_key_changes_are_published_as_meshgate_events(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with bus(tmp_path, subscriber, tmp_db) as (gateway, worker, _clock):
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "meshgate.*", "connectionId": gateway.conn_id})
        token = subscriber.token
        data = {
            "title": "Second",
            "connection_type": "HTTP",
            "connection_url": subscriber.url,
            "connection_token": token,
        }
        made = await tool(gateway, "COLLECTION_CONNECTIONS_CREATE", {"data": data})
        await tool(gateway, "COLLECTION_CONNECTIONS_UPDATE", {"id": made["id"], "data": {"title": "Renamed"}})
        await tool(gateway, "COLLECTION_CONNECTIONS_UPDATE", {"id": made["id"], "data": {"status": "inactive"}})
        await tool(gateway, "COLLECTION_CONNECTIONS_DELETE", {"id": made["id"]})
        key = await tool(gateway, "API_KEY_CREATE", {"name": "ci"})
        await tool(gateway, "API_KEY_DELETE", {"keyId": key["id"]})
        refused = await call(gateway, "API_KEY_DELETE", {"keyId": key["id"]})  # a change that did not happen
        assert refused.get("isError")

        while await worker.run_once():
            pass
        heard = await _heard(gateway)  # (published at one instant of the test's clock: their order is not kept)
        assert sorted((event["type"], event["subject"]) for event in heard) == sorted(
            [
                ("meshgate.connection.created", made["id"]),
                ("meshgate.connection.updated", made["id"]),
                ("meshgate.connection.status_changed", made["id"]),
                ("meshgate.connection.deleted", made["id"]),
                ("meshgate.api_key.created", key["id"]),
                ("meshgate.api_key.revoked", key["id"]),
            ]
        )
        by_type = {event["type"]: event for event in heard}
        assert {event["source"] for event in heard} == {"meshgate"}
        assert by_type["meshgate.connection.updated"]["data"]["changed"] == ["title"]
        changed = by_type["meshgate.connection.status_changed"]["data"]
        assert (changed["previous"], changed["status"]) == ("active", "inactive")
        assert by_type["meshgate.api_key.created"]["data"]["name"] == "ci"
        everything = str(heard)
        assert token not in everything and "mg_" not in everything.replace(key["prefix"], "")


async def test_an_unsubscribed_organization_stores_its_own_events_without_delivering_them(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with bus(tmp_path, subscriber, tmp_db) as (gateway, worker, _clock):
        key = await tool(gateway, "API_KEY_CREATE", {"name": "quiet"})
        listed = await tool(gateway, "EVENT_LIST", {"type": "meshgate.api_key.created"})
        assert [item["subject"] for item in listed["items"]] == [key["id"]]
        assert await worker.run_once() == 0
