"""Webhook subscriptions: events POSTed to an https endpoint, signed as the Standard Webhooks specification says.

Each event is one request whose body is the CloudEvent (JSON). The headers are `webhook-id` (the delivery's id:
the same on every retry, so the receiver can drop repeats), `webhook-timestamp` (Unix seconds) and
`webhook-signature` (`v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`, keyed with the subscription's
secret: `whsec_` + base64 of 24 random bytes, shown once when the subscription is made, stored sealed).
The URL passes the SSRF guard when it is saved and at every connect (after DNS), no redirect is followed,
and the answer is read only up to a few KiB. 2xx is delivered; 410 Gone ends the delivery for good; anything
else (and no answer within the timeout) is retried like a failed ON_EVENTS call, `Retry-After` respected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import ssl
from collections import OrderedDict
from datetime import datetime
from urllib.parse import urlsplit

import orjson

from meshgate import __version__
from meshgate.connections.addresses import AddressPolicy, AddressRefused
from meshgate.connections.upstream.client import shared_ssl_context
from meshgate.connections.upstream.http11 import HttpError, Pool
from meshgate.errors import InvalidInput
from meshgate.events.models import DEAD, DELIVERED, PENDING, CloudEvent

SECRET_PREFIX = "whsec_"  # noqa: S105  (the format prefix of Standard Webhooks secrets, not a secret)
MAX_URL = 2048
TIMEOUT_S = 10.0
_MAX_POOLS = 256
_MAX_ANSWER = 4096


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value (one `v1` signature)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


async def checked_url(url: str, addresses: AddressPolicy) -> str:
    """A webhook URL: https, with a host that resolves to an address meshgate may connect to."""
    if len(url) > MAX_URL:
        raise InvalidInput(f"url is longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidInput("url must be an https:// URL with a host")
    if parts.username or parts.password:
        raise InvalidInput("url must not carry a user name or password; the signature authenticates meshgate")
    try:
        await addresses.resolve(parts.hostname, parts.port or 443)
    except AddressRefused as refused:
        raise InvalidInput(f"url is refused: {refused}") from refused
    return url


class WebhookSender:
    """Sends one event to one webhook; keeps a small pool of keep-alive connections per URL."""

    def __init__(self, addresses: AddressPolicy, ssl_context: ssl.SSLContext | None = None) -> None:
        self._addresses = addresses
        self._ssl = ssl_context
        self._pools: OrderedDict[str, Pool] = OrderedDict()

    async def send(
        self, url: str, secret: str, message_id: str, event: CloudEvent, now: datetime
    ) -> tuple[str, str | None, float | None]:
        """(status, error, retry in seconds): status is delivered, dead or pending."""
        body = orjson.dumps(event.to_dict())
        timestamp = int(now.timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": f"meshgate/{__version__}",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, message_id, timestamp, body),
        }
        try:
            response = await self._pool(url).request("POST", headers, body, head_timeout=TIMEOUT_S)
        except HttpError as error:
            return PENDING, f"webhook unreachable: {error}", None
        try:
            answer = await response.read(_MAX_ANSWER, idle_s=TIMEOUT_S)
        except (HttpError, ValueError):
            answer = b""
        finally:
            response.release()
        if 200 <= response.status < 300:
            return DELIVERED, None, None
        reason = f"webhook answered HTTP {response.status}: {answer[:200].decode('utf-8', 'replace')}"
        if response.status == 410:
            return DEAD, reason, None
        return PENDING, reason, _retry_after(response.headers.get("retry-after"))

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def _pool(self, url: str) -> Pool:
        pool = self._pools.get(url)
        if pool is None:
            context = self._ssl or shared_ssl_context()
            pool = self._pools[url] = Pool(
                url, ssl_context=context, connect_timeout=TIMEOUT_S, addresses=self._addresses
            )
            if len(self._pools) > _MAX_POOLS:
                _, oldest = self._pools.popitem(last=False)
                oldest.close()
        self._pools.move_to_end(url)
        return pool


def _retry_after(value: str | None) -> float | None:
    if value is not None and value.strip().isdigit():
        return float(value.strip())
    return None
