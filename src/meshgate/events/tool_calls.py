"""`meshgate.tool_call.completed`: an event per finished tool call, for organizations that ask for it by name.

The audit writer hands each batch it writes to `ToolCallAnnouncer`, in the batch's transaction, so the event
and the audit record are stored together and the proxied call itself does nothing for it. An organization
gets these events only while it has a subscription (or an automation trigger) for
`meshgate.tool_call.completed` or `meshgate.tool_call.*`: catch-all patterns (`*`, `meshgate.*`) do not
turn them on, as one event per call would swamp whoever subscribed to "everything". Once published they
reach every matching subscription as any event does. Calls that meshgate's event machinery makes (deliveries,
automation runs) are not announced: otherwise each delivery of such an event would make the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.database import Database, Notice, notify
from meshgate.db.tables import event_subscriptions
from meshgate.events.models import SUBSCRIPTIONS_TOPIC
from meshgate.monitoring.models import AuditEntry

TOOL_CALL_COMPLETED = "meshgate.tool_call.completed"
NAMING_PATTERNS = (TOOL_CALL_COMPLETED, "meshgate.tool_call.*")
SUMMARY_FIELDS = {
    "auditId": "id",
    "connectionId": "connection_id",
    "virtualMcpId": "virtual_mcp_id",
    "tool": "tool_name",
    "callerType": "caller_type",
    "userId": "user_id",
    "apiKeyId": "api_key_id",
    "clientId": "client_id",
    "requestId": "request_id",
    "isError": "is_error",
    "errorMessage": "error_message",  # redacted and cut by the audit writer
    "durationMs": "duration_ms",
}


class ToolCallAnnouncer:
    """Which organizations want tool-call events: read once, again whenever a subscription or trigger changes
    anywhere (the change bus), and at least every `ttl_s` (MariaDB replicas hear no other replica's changes)."""

    def __init__(self, db: Database, *, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._organizations: frozenset[str] | None = None
        self._read_at = 0.0
        self._generation = 0
        db.subscribe(self._heard)

    def _heard(self, topic: str) -> None:
        if topic == SUBSCRIPTIONS_TOPIC:
            self._generation += 1
            self._organizations = None

    async def __call__(self, session: AsyncSession, written: Sequence[tuple[AuditEntry, Mapping[str, Any]]]) -> None:
        """Leave a notice for each announced tool call of an organization that wants them."""
        calls = [(entry, row) for entry, row in written if entry.announced and entry.method == "tools/call"]
        if not calls:
            return
        wanting = await self._wanting(session)
        for entry, row in calls:
            if entry.organization_id in wanting:
                data = {name: row.get(column) for name, column in SUMMARY_FIELDS.items()}
                notify(session, Notice(entry.organization_id, TOOL_CALL_COMPLETED, row.get("connection_id"), data))

    async def _wanting(self, session: AsyncSession) -> frozenset[str]:
        now = self._clock()
        if self._organizations is not None and now - self._read_at < self._ttl_s:
            return self._organizations
        generation = self._generation
        rows = await session.execute(
            select(event_subscriptions.c.organization_id)
            .where(event_subscriptions.c.event_type.in_(NAMING_PATTERNS))
            .distinct()
        )
        found = frozenset(str(organization) for organization in rows.scalars())
        if generation == self._generation:  # nothing changed while it was read: keep it
            self._organizations, self._read_at = found, now
        return found
