"""Events as CloudEvents 1.0, subscriptions to them, and the state of each delivery."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshgate.errors import InvalidInput

SPEC_VERSION = "1.0"
JSON_CONTENT = "application/json"
MESHGATE_SOURCE = "meshgate"  # the source of meshgate's own events (connection created, member added ...)
# The source of an automation's cron firings (`automation:<trigger id>`): they reach that trigger only.
AUTOMATION_SOURCE_PREFIX = "automation:"

TOPIC_PREFIX = "event:"

MAX_TYPE = 200
MAX_SUBJECT = 1024
MAX_DATA_BYTES = 256 * 1024
# Types appear in URL paths (`POST /api/{org}/events/{type}`) and in patterns (`a.b.*`): a dotted name.
_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")

# Delivery states: `pending` waits for its time (a retry, a `deliverAt`); `delivered` and `dead` are final
# (`dead`: failed permanently or out of attempts, until someone redelivers it); `cancelled` by EVENT_CANCEL.
PENDING, DELIVERED, DEAD, CANCELLED = "pending", "delivered", "dead", "cancelled"
DELIVERY_STATES = (PENDING, DELIVERED, DEAD, CANCELLED)


SUBSCRIPTIONS_TOPIC = "events:subscriptions"  # announced when any subscription or trigger is made or removed


def published_topic(organization_id: str, event_id: str) -> str:
    """The change topic that tells every replica's live streams about a newly published event."""
    return f"{TOPIC_PREFIX}{organization_id}:{event_id}"


def checked_type(value: str, field: str = "type") -> str:
    """An event type as given, or a refusal that says what a type may be."""
    if not value or len(value) > MAX_TYPE or not _TYPE.fullmatch(value):
        raise InvalidInput(
            f"{field} {value[:80]!r} is not an event type: up to {MAX_TYPE} letters, digits and . _ : / -,"
            " starting with a letter or digit (e.g. order.created)"
        )
    return value


def checked_pattern(value: str) -> str:
    """A subscription's `eventType`: an exact type, or `prefix.*` for every type under a prefix."""
    if value == "*":
        return value
    if value.endswith(".*"):
        checked_type(value[:-2], "eventType")
        return value
    return checked_type(value, "eventType")


def type_matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """One event as stored and as delivered (`to_dict` is the CloudEvents JSON format)."""

    id: str
    source: str
    type: str
    time: datetime
    subject: str | None = None
    data: Any = None
    datacontenttype: str = JSON_CONTENT
    traceparent: str | None = None  # the publish span's (CloudEvents distributed tracing extension)

    def attributes(self) -> dict[str, str]:
        """The context attributes as strings, for subscription filters (CloudEvents canonical forms)."""
        found = {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "specversion": SPEC_VERSION,
            "time": iso_time(self.time),
            "datacontenttype": self.datacontenttype,
        }
        if self.subject is not None:
            found["subject"] = self.subject
        if self.traceparent is not None:
            found["traceparent"] = self.traceparent
        return found

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {**self.attributes()}
        if self.data is not None:
            found["data"] = self.data
        return found


@dataclass(frozen=True, slots=True)
class Subscription:
    """A connection (its ON_EVENTS tool) or an https webhook that receives the events that match."""

    id: str
    organization_id: str
    connection_id: str | None
    webhook_url: str | None
    event_type: str
    publisher: str | None
    filter: Any  # a CloudEvents Subscriptions API filter expression (see `filters`), or None
    created_by: str  # the user whose permissions deliveries run with
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "connectionId": self.connection_id,
            "url": self.webhook_url,
            "eventType": self.event_type,
            "publisher": self.publisher,
            "filter": self.filter,
            "createdBy": self.created_by,
            "createdAt": iso_time(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """The state of one event's delivery to one subscription."""

    id: str
    event_id: str
    subscription_id: str
    connection_id: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subscriptionId": self.subscription_id,
            "connectionId": self.connection_id,
            "status": self.status,
            "attempts": self.attempts,
            "nextAttemptAt": None if self.next_attempt_at is None else iso_time(self.next_attempt_at),
            "lastError": self.last_error,
            "deliveredAt": None if self.delivered_at is None else iso_time(self.delivered_at),
        }


def iso_time(when: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as CloudEvents writes `time`."""
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
