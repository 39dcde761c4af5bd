"""A connection acts for itself: meshgate sends each upstream a connection credential with its calls, and the
upstream (the SDK-built subscriber, tests/support/event_subscriber.py) calls `/mcp` back with it as its own
connection, for the event tools of its own organization only. `source` and the subscriber come from the
credential; no header names a caller."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from conftest import add_connection, new_member, new_owner
from support.events import MCP, NO_WORKER, upstream_tool
from support.gateway import Gateway, Owner, Upstream
from support.inprocess import in_process_gateway
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio


def _message(name: str, arguments: dict[str, Any] | None = None, method: str = "tools/call") -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}} if method == "tools/call" else {}
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


@dataclass
class Upstreamside:
    """Drives the subscriber through meshgate (as the owner) so that it calls meshgate back as its connection."""

    gateway: Gateway
    owner: Owner
    connection_id: str

    async def _proxy(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{self.gateway.url}/mcp/{self.connection_id}/call-tool/{name}",
                json=arguments,
                headers={"authorization": f"Bearer {self.owner.api_key}"},
            )
        result = response.json()
        assert response.status_code == 200 and not result.get("isError"), result
        return dict(result["structuredContent"])

    async def send(
        self, message: dict[str, Any], headers: dict[str, str] | None = None, path: str = "/mcp"
    ) -> dict[str, Any]:
        """What meshgate answered the upstream (`status`, `answer`)."""
        url = self.gateway.url + path
        return await self._proxy("as_connection", {"url": url, "message": message, "headers": headers or {}})

    async def tool(self, name: str, arguments: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """A management tool called by the upstream as itself: its result (maybe `isError`)."""
        sent = await self.send(_message(name, arguments), **kwargs)
        assert sent["status"] == 200, sent
        return dict(sent["answer"]["result"])

    async def ok(self, name: str, arguments: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        result = await self.tool(name, arguments, **kwargs)
        assert not result.get("isError"), result
        return dict(result["structuredContent"])

    async def refused(self, name: str, arguments: dict[str, Any] | None = None) -> str:
        result = await self.tool(name, arguments)
        assert result.get("isError"), result
        return str(result["content"][0]["text"])

    async def token(self) -> str:
        return remember_secret(str((await self._proxy("connection_token", {}))["token"]))

    async def received(self) -> list[dict[str, Any]]:
        return [event for batch in (await self._proxy("received", {}))["batches"] for event in batch]


async def _owner_tool(gateway: Gateway, key: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            gateway.mcp_url, json=_message(name, arguments), headers={**MCP, "authorization": f"Bearer {key}"}
        )
    result = response.json()["result"]
    assert not result.get("isError"), result
    return dict(result["structuredContent"])


async def _side(gateway: Gateway, subscriber: Upstream, org: str = "Acme") -> Upstreamside:
    owner = await new_owner(gateway, org)
    created = await add_connection(gateway, owner.api_key, subscriber, title="Subscriber")
    return Upstreamside(gateway, owner, str(created["id"]))


async def test_an_upstream_publishes_and_subscribes_as_its_own_connection(
    gateway: Gateway, subscriber: Upstream
) -> None:
    side = await _side(gateway, subscriber)
    me = side.connection_id
    mine = await side.ok("EVENT_SUBSCRIBE", {"eventType": "ping.*"})
    assert (mine["connectionId"], mine["createdBy"], mine["created"]) == (me, me, True)
    only_mine = await side.ok("EVENT_SUBSCRIBE", {"eventType": "pong", "publisher": f"connection:{me}"})

    published = await side.ok("EVENT_PUBLISH", {"type": "ping.one", "data": {"n": 1}})
    assert published["source"] == f"connection:{me}"
    by_owner = await _owner_tool(gateway, side.owner.api_key, "EVENT_PUBLISH", {"type": "pong"})
    assert by_owner["source"] == f"user:{side.owner.user_id}"
    pong = await side.ok("EVENT_PUBLISH", {"type": "pong"})

    with anyio.fail_after(15):  # the gateway's own worker delivers, as the connection
        while True:
            got = {event["id"]: event for event in await side.received()}
            if set(got) == {published["id"], pong["id"]}:
                break
            await anyio.sleep(0.05)
    assert got[published["id"]]["source"] == f"connection:{me}"
    assert got[published["id"]]["data"] == {"n": 1}

    listed = await side.ok("EVENT_SUBSCRIPTION_LIST")
    assert {item["id"] for item in listed["items"]} == {mine["id"], only_mine["id"]}
    state = await side.ok("EVENT_GET", {"eventId": pong["id"]})
    assert [item["status"] for item in state["deliveries"]] == ["delivered"]
    seen = await side.ok("EVENT_LIST")
    assert {item["id"] for item in seen["items"]} == {published["id"], pong["id"]}  # not the owner's pong
    assert "not found" in await side.refused("EVENT_GET", {"eventId": by_owner["id"]})

    synced = await side.ok("EVENT_SYNC_SUBSCRIPTIONS", {"subscriptions": [{"eventType": "ping.*"}]})
    assert [item["id"] for item in synced["unchanged"]] == [mine["id"]]
    assert [item["id"] for item in synced["deleted"]] == [only_mine["id"]]
    assert (await side.ok("EVENT_UNSUBSCRIBE", {"subscriptionId": mine["id"]}))["deleted"] is True


async def test_a_connection_credential_acts_for_its_own_connection_only(gateway: Gateway, subscriber: Upstream) -> None:
    side = await _side(gateway, subscriber)
    other = str((await add_connection(gateway, side.owner.api_key, subscriber, title="Other"))["id"])
    theirs = await _owner_tool(
        gateway, side.owner.api_key, "EVENT_SUBSCRIBE", {"eventType": "a.b", "connectionId": other}
    )
    event = await _owner_tool(gateway, side.owner.api_key, "EVENT_PUBLISH", {"type": "a.b"})

    own_only = "acts for its own connection only"
    assert own_only in await side.refused("EVENT_SUBSCRIBE", {"eventType": "a.b", "connectionId": other})
    assert own_only in await side.refused("EVENT_SUBSCRIPTION_LIST", {"connectionId": other})
    assert own_only in await side.refused("EVENT_SYNC_SUBSCRIPTIONS", {"connectionId": other, "subscriptions": []})
    assert own_only in await side.refused("EVENT_UNSUBSCRIBE", {"subscriptionId": theirs["id"]})
    assert own_only in await side.refused("EVENT_ACK", {"eventId": event["id"], "connectionId": other})
    assert "not a webhook" in await side.refused("EVENT_SUBSCRIBE", {"eventType": "a.b", "url": "https://x.test/h"})
    assert "not found" in await side.refused("EVENT_CANCEL", {"eventId": event["id"]})
    for name in ("COLLECTION_CONNECTIONS_LIST", "API_KEY_CREATE", "EVENT_REDELIVER", "CONNECTION_KEY_LIST"):
        assert "permission" in await side.refused(name, {"name": "k"} if name == "API_KEY_CREATE" else {})

    listed = (await side.send(_message("", method="tools/list")))["answer"]["result"]["tools"]
    assert all(tool["name"].startswith("EVENT_") for tool in listed) and "EVENT_REDELIVER" not in {
        tool["name"] for tool in listed
    }
    for path in (f"/mcp/{other}", f"/mcp/{side.connection_id}"):  # no connection's tools, not even its own
        proxied = await side.send(_message("received"), path=path)
        answer = proxied["answer"]
        assert proxied["status"] == 403 or "error" in answer or answer["result"].get("isError"), proxied


async def test_no_header_names_a_caller_and_no_organization_is_crossed(gateway: Gateway, subscriber: Upstream) -> None:
    side = await _side(gateway, subscriber)
    elsewhere = await _side(gateway, subscriber, org="Elsewhere")
    me = side.connection_id
    forged = {
        "x-caller-id": elsewhere.connection_id,
        "x-mesh-connection-id": elsewhere.connection_id,
        "x-org-id": elsewhere.owner.organization_id,
        "x-org-slug": elsewhere.owner.organization_slug,
    }
    published = await side.ok("EVENT_PUBLISH", {"type": "forged.try"}, headers=forged)
    assert published["source"] == f"connection:{me}"
    foreign = await elsewhere.ok("EVENT_PUBLISH", {"type": "forged.try"})
    owner_view = await _owner_tool(gateway, side.owner.api_key, "EVENT_LIST", {"type": "forged.try"})
    assert [item["id"] for item in owner_view["items"]] == [published["id"]]  # in its own organization only
    assert "not found" in await side.refused("EVENT_GET", {"eventId": foreign["id"]})
    crossing = {"eventType": "forged.*", "connectionId": elsewhere.connection_id}
    assert "own connection only" in await side.refused("EVENT_SUBSCRIBE", crossing)

    # A person's request that carries some connection's credential as a header is still that person's.
    async with httpx.AsyncClient(timeout=30) as client:
        token = await side.token()
        headers = {**MCP, "authorization": f"Bearer {side.owner.api_key}", "x-mesh-connection-token": token}
        answer = await client.post(gateway.mcp_url, json=_message("EVENT_PUBLISH", {"type": "x"}), headers=headers)
        assert answer.json()["result"]["structuredContent"]["source"] == f"user:{side.owner.user_id}"
        payload, _, mac = token.partition(".")
        other_mac = "A" + mac[1:] if mac[0] != "A" else "B" + mac[1:]
        for bad in (f"{payload}.{other_mac}", token + "x", "mgc_", "mgc_e30.", token.replace("mgc_", "mgc_x")):
            refused = await client.post(
                gateway.mcp_url, json=_message("EVENT_LIST"), headers={**MCP, "authorization": f"Bearer {bad}"}
            )
            assert refused.status_code == 401, (bad, refused.text)


async def test_the_connection_credential_expires_and_dies_with_its_connection(
    tmp_path: Path, subscriber: Upstream
) -> None:
    async with in_process_gateway(tmp_path, subscriber, env=NO_WORKER) as gateway:
        tokens = gateway.runtime.connection_tokens
        now = [tokens.clock()]
        tokens.clock = lambda: now[0]
        first = remember_secret((await upstream_tool(gateway, "connection_token", {}))["token"])
        assert first.startswith("mgc_")
        as_upstream = {**MCP, "authorization": f"Bearer {first}"}
        message = _message("EVENT_PUBLISH", {"type": "tick"})
        answer = (await gateway.client.post("/mcp", json=message, headers=as_upstream)).json()
        assert answer["result"]["structuredContent"]["source"] == f"connection:{gateway.conn_id}"

        now[0] += tokens.lifetime_s / 2  # still good: the upstream gets the same one again
        assert (await upstream_tool(gateway, "connection_token", {}))["token"] == first
        now[0] += tokens.lifetime_s / 4  # a third left: a new one is signed, the old one still works
        second = remember_secret((await upstream_tool(gateway, "connection_token", {}))["token"])
        assert second != first
        assert (await gateway.client.post("/mcp", json=message, headers=as_upstream)).status_code == 200

        now[0] += tokens.lifetime_s / 4 + 1
        expired = await gateway.client.post("/mcp", json=message, headers=as_upstream)
        assert expired.status_code == 401 and "expired" in expired.text
        as_second = {**MCP, "authorization": f"Bearer {second}"}
        assert (await gateway.client.post("/mcp", json=message, headers=as_second)).status_code == 200

        slug = (await gateway.runtime.authenticator.authenticate(gateway.key)).organization_slug
        watch = await gateway.client.get(f"/api/{slug}/watch", headers={"authorization": f"Bearer {second}"})
        assert watch.status_code == 403 and "no watch stream" in watch.text

        deleted = _message("COLLECTION_CONNECTIONS_DELETE", {"id": gateway.conn_id})
        assert not (await gateway.client.post("/mcp", json=deleted, headers=MCP)).json()["result"].get("isError")
        gone = await gateway.client.post("/mcp", json=message, headers=as_second)
        assert gone.status_code == 401 and "no longer exists" in gone.text


async def test_deliveries_of_a_connection_s_own_subscription_run_as_that_connection(
    tmp_path: Path, subscriber: Upstream
) -> None:
    async with in_process_gateway(tmp_path, subscriber, env=NO_WORKER) as gateway:
        token = remember_secret((await upstream_tool(gateway, "connection_token", {}))["token"])
        as_upstream = {**MCP, "authorization": f"Bearer {token}"}
        message = _message("EVENT_SUBSCRIBE", {"eventType": "own"})
        made = (await gateway.client.post("/mcp", json=message, headers=as_upstream)).json()["result"]
        assert made["structuredContent"]["createdBy"] == gateway.conn_id
        published = (
            await gateway.client.post("/mcp", json=_message("EVENT_PUBLISH", {"type": "own"}), headers=MCP)
        ).json()["result"]["structuredContent"]
        assert await gateway.runtime.events.run_once() == 1
        got = (await upstream_tool(gateway, "received", {}))["batches"]
        assert [event["id"] for batch in got for event in batch] == [published["id"]]
        logs = _message("MONITORING_LOGS_LIST", {"connectionId": gateway.conn_id, "toolName": "ON_EVENTS"})
        with anyio.fail_after(10):  # the audit writer flushes in the background
            while True:
                answer = (await gateway.client.post("/mcp", json=logs, headers=MCP)).json()
                if items := answer["result"]["structuredContent"]["items"]:
                    break
                await anyio.sleep(0.05)
        callers = [(item["caller"]["type"], item["caller"]["userId"], item["caller"]["apiKeyId"]) for item in items]
        assert callers == [("connection", gateway.conn_id, None)]  # as itself, no one's key


async def _as_key(gateway: Gateway, key: str, name: str, arguments: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            gateway.mcp_url, json=_message(name, arguments), headers={**MCP, "authorization": f"Bearer {key}"}
        )


async def test_an_owner_created_connection_key_acts_as_the_connection_until_revoked(
    gateway: Gateway, subscriber: Upstream
) -> None:
    side = await _side(gateway, subscriber)
    me = side.connection_id
    created = await _owner_tool(gateway, side.owner.api_key, "CONNECTION_KEY_CREATE", {"connectionId": me})
    key = remember_secret(created["key"])
    assert key.startswith("mgck_") and created["connectionId"] == me and key.startswith(created["prefix"])
    listed = await _owner_tool(gateway, side.owner.api_key, "CONNECTION_KEY_LIST", {"connectionId": me})
    assert [item["id"] for item in listed["items"]] == [created["id"]] and "key" not in listed["items"][0]

    published = (await _as_key(gateway, key, "EVENT_PUBLISH", {"type": "keyed"})).json()["result"]
    assert published["structuredContent"]["source"] == f"connection:{me}"
    subscribed = (await _as_key(gateway, key, "EVENT_SUBSCRIBE", {"eventType": "keyed"})).json()["result"]
    assert subscribed["structuredContent"]["createdBy"] == me
    for name in ("COLLECTION_CONNECTIONS_LIST", "CONNECTION_KEY_CREATE", "API_KEY_LIST"):
        refused = (await _as_key(gateway, key, name, {"connectionId": me})).json()["result"]
        assert refused["isError"] and "permission" in refused["content"][0]["text"], refused

    member = await new_member(gateway, side.owner.organization_id, "member")
    by_member = (await _as_key(gateway, member.api_key, "CONNECTION_KEY_CREATE", {"connectionId": me})).json()
    assert by_member["result"]["isError"]
    elsewhere = await new_owner(gateway, "Elsewhere")
    crossing = (await _as_key(gateway, elsewhere.api_key, "CONNECTION_KEY_CREATE", {"connectionId": me})).json()
    assert "not found" in crossing["result"]["content"][0]["text"]

    await _owner_tool(gateway, side.owner.api_key, "CONNECTION_KEY_DELETE", {"keyId": created["id"]})
    assert (await _as_key(gateway, key, "EVENT_LIST", {})).status_code == 401  # revoked: an identity change

    second = remember_secret(
        (await _owner_tool(gateway, side.owner.api_key, "CONNECTION_KEY_CREATE", {"connectionId": me}))["key"]
    )
    assert (await _as_key(gateway, second, "EVENT_LIST", {})).status_code == 200
    await _owner_tool(gateway, side.owner.api_key, "COLLECTION_CONNECTIONS_DELETE", {"id": me})
    assert (await _as_key(gateway, second, "EVENT_LIST", {})).status_code == 401  # gone with its connection
