"""`POST /api/{org_slug}/events/{type}` publishes with a credential, as EVENT_PUBLISH does, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.gateway import Upstream
from support.inprocess import in_process_gateway

pytestmark = pytest.mark.anyio

MCP = {"accept": "application/json, text/event-stream"}


async def test_http_publishing_needs_a_credential_of_that_organization_with_the_right(
    tmp_path: Path, subscriber: Upstream
) -> None:
    async with in_process_gateway(tmp_path, subscriber, env={"MESHGATE_EVENT_DELIVERY": "off"}) as gateway:
        slug = (await gateway.runtime.authenticator.authenticate(gateway.key)).organization_slug
        published = await gateway.client.post(
            f"/api/{slug}/events/invoice.paid", json={"subject": "inv-9", "data": {"amount": [1, 2]}}
        )
        assert published.status_code == 201, published.text
        event = published.json()
        assert (event["type"], event["status"]) == ("invoice.paid", "published")

        message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
        message["params"] = {"name": "EVENT_GET", "arguments": {"eventId": event["id"]}}
        stored = (await gateway.client.post("/mcp", json=message, headers=MCP)).json()["result"]["structuredContent"]
        assert (stored["subject"], stored["data"], stored["source"]) == ("inv-9", {"amount": [1, 2]}, event["source"])

        anonymous = await gateway.client.post(
            f"/api/{slug}/events/invoice.paid", json={}, headers={"authorization": ""}
        )
        assert anonymous.status_code == 401
        elsewhere = await gateway.client.post("/api/not-this-org/events/invoice.paid", json={})
        assert elsewhere.status_code == 404

        message["params"] = {
            "name": "API_KEY_CREATE",
            "arguments": {"name": "r", "permissions": {"self": ["EVENT_LIST"]}},
        }
        narrow = (await gateway.client.post("/mcp", json=message, headers=MCP)).json()["result"]["structuredContent"]
        refused = await gateway.client.post(
            f"/api/{slug}/events/invoice.paid", json={}, headers={"authorization": f"Bearer {narrow['key']}"}
        )
        assert refused.status_code == 403 and "EVENT_PUBLISH" in refused.json()["error"]["message"]

        for body, expected in [
            ({"source": "someone-else"}, "unknown field 'source'"),
            ({"deliverAt": 5}, "deliverAt must be a string"),
        ]:
            bad = await gateway.client.post(f"/api/{slug}/events/invoice.paid", json=body)
            assert bad.status_code == 400 and expected in bad.json()["error"]["message"], bad.text
        bad_type = await gateway.client.post(f"/api/{slug}/events/has%20space", json={})
        assert bad_type.status_code == 400 and "is not an event type" in bad_type.json()["error"]["message"]
