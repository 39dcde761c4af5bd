"""meshgate's own events: the notices services leave in their transactions, published with source `meshgate`.

Types: `meshgate.connection.created|updated|status_changed|deleted`, `meshgate.member.added|removed` and
`meshgate.api_key.created|revoked` (and `meshgate.tool_call.completed`, see `meshgate.events.tool_calls`); the
subject is the object's id, the data names it and never holds a secret. They are published in the transaction of
the change (see `meshgate.db.database.notify`), so a subscriber hears of a change exactly when it happened, and
subscribing to them is subscribing to `meshgate.*`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.database import Notice
from meshgate.events.service import EventService
from meshgate.observability.metrics import GatewayMetrics

SOURCE = "meshgate"


class NoticePublisher:
    """The database's notice handler: each notice becomes an event of its organization."""

    def __init__(self, clock: Callable[[], datetime], metrics: GatewayMetrics | None, tracer: Tracer) -> None:
        self._clock = clock  # read at every publish: the event worker's clock, which tests replace
        self._metrics = metrics
        self._tracer = tracer

    async def __call__(self, session: AsyncSession, notices: list[Notice]) -> None:
        for notice in notices:
            events = EventService(session, notice.organization_id, self._clock, self._metrics, self._tracer)
            await events.publish(SOURCE, notice.type, subject=notice.subject, data=notice.data)
