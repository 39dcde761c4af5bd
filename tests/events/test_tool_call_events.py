"""`meshgate.tool_call.completed`: one event per finished tool call, with its audit summary, only for an
organization that subscribes to it by name, and never for the calls the event machinery makes itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from support.events import bus, tool, upstream_tool
from support.gateway import Upstream

pytestmark = pytest.mark.anyio
COMPLETED = "meshgate.tool_call.completed"


async def _audited(gateway: Any, count: int) -> None:
    """Wait until the audit writer has stored `count` records in all (the events go with them)."""
    with anyio.fail_after(15):
        while True:
            if gateway.runtime.audit.written >= count:
                return
            await anyio.sleep(0.02)


async def _completed(gateway: Any) -> list[dict[str, Any]]:
    return list((await tool(gateway, "EVENT_LIST", {"type": COMPLETED}))["items"])


async def test_tool_calls_are_events_only_while_someone_subscribes_to_them_by_name(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with bus(tmp_path, subscriber, tmp_db) as (gateway, worker, _clock):
        conn = gateway.conn_id
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "meshgate.*", "connectionId": conn})
        written = gateway.runtime.audit.written
        await upstream_tool(gateway, "answer_with", {"answers": []})
        await _audited(gateway, written + 1)
        assert await _completed(gateway) == []  # a catch-all subscription does not turn them on

        named = await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": COMPLETED, "connectionId": conn})
        await upstream_tool(gateway, "answer_with", {"answers": [{"success": True}] * 2})
        await _audited(gateway, written + 2)
        [event] = await _completed(gateway)
        assert (event["source"], event["subject"]) == ("meshgate", conn)
        data = event["data"]
        assert (data["connectionId"], data["tool"], data["isError"]) == (conn, "answer_with", False)
        assert data["callerType"] == "api_key" and data["apiKeyId"] and data["auditId"]
        assert "answers" not in str(data)  # a summary: neither arguments nor result

        # Delivered to both subscriptions (one ON_EVENTS call each), and those calls announce nothing.
        while await worker.run_once():
            pass
        await _audited(gateway, written + 4)
        assert [e["id"] for e in await _completed(gateway)] == [event["id"]]
        heard = (await upstream_tool(gateway, "received", {}))["batches"]
        assert [e["id"] for batch in heard for e in batch] == [event["id"], event["id"]]
        await _audited(gateway, written + 5)

        await tool(gateway, "EVENT_UNSUBSCRIBE", {"subscriptionId": named["id"]})
        before = len(await _completed(gateway))
        await upstream_tool(gateway, "answer_with", {"answers": []})
        await _audited(gateway, written + 6)
        assert len(await _completed(gateway)) == before == 2  # heard at once that nobody asks any more
