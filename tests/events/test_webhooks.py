"""Webhook subscriptions: each event is POSTed to an https endpoint, signed as Standard Webhooks says (verified
with the independent `standardwebhooks` package), retried with the same id, and the secret is shown only once."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from meshgate.connections.addresses import AddressPolicy
from meshgate.db.tables import event_subscriptions
from meshgate.errors import InvalidInput
from meshgate.events.webhooks import WebhookSender, checked_url
from support.events import bus, call, deliveries, tool
from support.gateway import Upstream
from support.tls import Authority, make_authority

pytestmark = pytest.mark.anyio


@dataclass
class Receiver:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list[tuple[dict[str, str], bytes]])
    statuses: list[int] = field(default_factory=list[int])  # answered in turn; 204 once they run out


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return make_authority(tmp_path / "tls")


@pytest.fixture
def receiver(authority: Authority) -> Iterator[Receiver]:
    found = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            found.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = found.statuses.pop(0) if found.statuses else 204
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(authority.cert_file, authority.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    found.url = f"https://127.0.0.1:{server.server_address[1]}/hooks/meshgate"
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


async def test_events_reach_a_webhook_signed_and_retried_with_the_same_id(
    tmp_path: Path, subscriber: Upstream, receiver: Receiver, authority: Authority
) -> None:
    async with bus(tmp_path, subscriber, f"sqlite:///{tmp_path / 'hooks.db'}", first_retry_s=5) as (
        gateway,
        worker,
        clock,
    ):
        trusting = ssl.create_default_context(cafile=str(authority.ca_file))
        worker.webhooks = WebhookSender(gateway.runtime.upstreams.addresses, ssl_context=trusting)
        created = await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "deploy.*", "url": receiver.url})
        secret = created["secret"]
        assert secret.startswith("whsec_") and created["url"] == receiver.url and created["connectionId"] is None
        listed = await tool(gateway, "EVENT_SUBSCRIPTION_LIST", {})
        assert all("secret" not in item for item in listed["items"])
        async with gateway.runtime.db.transaction() as session:
            stored = await session.scalar(select(event_subscriptions.c.webhook_secret))
        assert stored is not None and secret not in stored and secret.removeprefix("whsec_") not in stored

        receiver.statuses.append(503)
        event_id = (await tool(gateway, "EVENT_PUBLISH", {"type": "deploy.done", "data": {"app": "web"}}))["id"]
        assert await worker.run_once() == 1
        [waiting] = await deliveries(gateway, event_id)
        assert (waiting["status"], waiting["attempts"]) == ("pending", 1)
        assert "HTTP 503" in waiting["lastError"]
        clock.advance(5)
        assert await worker.run_once() == 1
        [done] = await deliveries(gateway, event_id)
        assert done["status"] == "delivered"

        assert len(receiver.received) == 2
        verifier = Webhook(secret)
        for headers, body in receiver.received:
            event = verifier.verify(body, headers)  # raises unless the signature and timestamp hold
            assert (event["id"], event["type"], event["data"]) == (event_id, "deploy.done", {"app": "web"})
            assert headers["content-type"] == "application/json"
        first, second = (headers["webhook-id"] for headers, _ in receiver.received)
        assert first == second == done["id"]  # the same message id on a retry: receivers drop repeats
        with pytest.raises(Exception, match="No matching signature"):
            Webhook("whsec_" + "A" * 32).verify(receiver.received[0][1], receiver.received[0][0])


async def test_a_gone_webhook_ends_in_the_dead_letter_state(
    tmp_path: Path, subscriber: Upstream, receiver: Receiver, authority: Authority
) -> None:
    async with bus(tmp_path, subscriber, f"sqlite:///{tmp_path / 'gone.db'}") as (gateway, worker, _clock):
        worker.webhooks = WebhookSender(
            gateway.runtime.upstreams.addresses, ssl_context=ssl.create_default_context(cafile=str(authority.ca_file))
        )
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "x.y", "url": receiver.url})
        receiver.statuses.append(410)
        event_id = (await tool(gateway, "EVENT_PUBLISH", {"type": "x.y"}))["id"]
        assert await worker.run_once() == 1
        [dead] = await deliveries(gateway, event_id)
        assert dead["status"] == "dead" and "HTTP 410" in dead["lastError"]


async def test_webhooks_need_https_the_right_to_read_events_and_an_allowed_address(
    tmp_path: Path, subscriber: Upstream, receiver: Receiver
) -> None:
    async with bus(tmp_path, subscriber, f"sqlite:///{tmp_path / 'rules.db'}") as (gateway, _worker, _clock):
        plain = await call(
            gateway, "EVENT_SUBSCRIBE", {"eventType": "a.b", "url": receiver.url.replace("https", "http")}
        )
        assert plain["isError"] and "must be an https:// URL" in plain["content"][0]["text"]
        both = await call(gateway, "EVENT_SUBSCRIBE", {"eventType": "a.b", "url": receiver.url, "connectionId": "c"})
        assert both["isError"] and "give connectionId" in both["content"][0]["text"]
        narrow = await tool(gateway, "API_KEY_CREATE", {"name": "n", "permissions": {"self": ["EVENT_SUBSCRIBE"]}})
        refused = await call(gateway, "EVENT_SUBSCRIBE", {"eventType": "a.b", "url": receiver.url}, narrow["key"])
        assert refused["isError"] and "self:EVENT_LIST" in refused["content"][0]["text"]
    with pytest.raises(InvalidInput, match="private address"):
        await checked_url(receiver.url, AddressPolicy(block_private=True))
    with pytest.raises(InvalidInput, match="user name or password"):
        await checked_url(receiver.url.replace("https://", "https://me:pw@"), AddressPolicy())
    assert json.dumps(receiver.received) == "[]"
