"""The database handle: engine, transactions, and change announcements between processes.

A service that changes something other processes cache (identity, roles, keys) calls
`announce_change(session, topic)` inside its transaction. After the commit, local subscribers hear
the topic; on PostgreSQL the same topic also goes out through NOTIFY, which every meshgate process
sharing the database receives through its LISTEN connection (so a revoked key stops working on
every replica). SQLite and MySQL deployments are single-process for cache purposes.

A service that changed something people may subscribe to (a connection created, a key revoked) also calls
`notify(session, Notice(...))`; the notices of a transaction are handed to the one registered handler (the
event bus, which publishes them as CloudEvents with source `meshgate`) inside the same transaction, just
before it commits, so a notice is published exactly when its change is. Services need not know the event bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from meshgate.db.engine import create_engine, session_factory

log = logging.getLogger(__name__)

CHANNEL = "meshgate_changes"
EVERYTHING = "*"  # topic meaning "forget every cached thing" (after notifications may have been missed)
_TOPICS_KEY = "meshgate.topics"

ChangeSubscriber = Callable[[str], None]
_NOTICES_KEY = "meshgate.notices"


@dataclass(frozen=True, slots=True)
class Notice:
    """Something happened that is worth an event: `type` (e.g. `meshgate.connection.created`), the object's id
    as `subject`, and `data` without secrets."""

    organization_id: str
    type: str
    subject: str | None = None
    data: Any = None


NoticeHandler = Callable[[AsyncSession, list[Notice]], Awaitable[None]]


def notify(session: AsyncSession, notice: Notice) -> None:
    """Publish `notice` when this transaction commits (and never if it rolls back)."""
    session.info.setdefault(_NOTICES_KEY, []).append(notice)


async def announce_change(session: AsyncSession, topic: str) -> None:
    """Record that `topic` changed; subscribers everywhere hear it once the transaction commits."""
    topics: set[str] = session.info.setdefault(_TOPICS_KEY, set())
    if topic in topics:
        return
    topics.add(topic)
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, :topic)"), {"channel": CHANNEL, "topic": topic})


class Database:
    """Owns the engine and hands out transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine(url)
        self._sessions = session_factory(self.engine)
        self._subscribers: list[ChangeSubscriber] = []
        self._listener: Any = None
        self._closing = False
        self._reconnect: asyncio.Task[None] | None = None
        self._notices: NoticeHandler | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def subscribe(self, subscriber: ChangeSubscriber) -> None:
        """Call `subscriber(topic)` after every committed change, local or (PostgreSQL) remote."""
        self._subscribers.append(subscriber)

    def on_notices(self, handler: NoticeHandler) -> None:
        """Hand every transaction's notices to `handler`, in that transaction, before it commits."""
        self._notices = handler

    @asynccontextmanager
    async def transaction(self) -> AsyncGenerator[AsyncSession]:
        """A session in a transaction that commits on success and rolls back on error."""
        async with self._sessions() as session:
            async with session.begin():
                yield session
                notices: list[Notice] = session.info.pop(_NOTICES_KEY, [])
                if notices and self._notices is not None:
                    await self._notices(session, notices)
            topics: set[str] = session.info.pop(_TOPICS_KEY, set())
        for topic in topics:
            self._publish(topic)

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def start_listening(self) -> None:
        """On PostgreSQL, hear changes made by other processes (and keep hearing them across restarts)."""
        if self.dialect != "postgresql" or self._listener is not None:
            return
        connection = await self.engine.connect()
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.add_listener(CHANNEL, self._on_notify)
        driver.add_termination_listener(self._on_listener_lost)
        self._listener = connection

    def _on_listener_lost(self, _connection: object) -> None:
        """The LISTEN connection died (database restart, network): changes may have been missed."""
        if self._closing:
            return
        log.warning("lost the change-notification connection; caches are cleared and it is being re-opened")
        self._listener = None
        self._publish(EVERYTHING)
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        delay = 0.2
        while not self._closing:
            try:
                await self.engine.dispose()  # every pooled connection died with the server
                await self.start_listening()
            except Exception as error:  # noqa: BLE001  (a background task's boundary: log and keep trying)
                name = type(error).__name__
                log.warning("change notifications still unavailable (%s); retrying in %.1f s", name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            # Anything may have changed while nobody was listening.
            self._publish(EVERYTHING)
            log.warning("change notifications are back")
            return

    async def close(self) -> None:
        self._closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            await asyncio.gather(self._reconnect, return_exceptions=True)
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        await self.engine.dispose()

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self._publish(payload)

    def _publish(self, topic: str) -> None:
        for subscriber in self._subscribers:
            subscriber(topic)


def rows_changed(result: Any) -> int:
    """How many rows an UPDATE or DELETE touched (`CursorResult.rowcount`, typed)."""
    return int(getattr(result, "rowcount", 0))
