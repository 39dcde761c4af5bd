"""Replica heartbeats: every gateway process records that it is alive, and counts the others.

Used to slice shared limits (see `meshgate.access.ratelimit`); off the request path entirely.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select, update

from meshgate.db.database import Database
from meshgate.db.tables import replicas

log = logging.getLogger(__name__)


class ReplicaRegistry:
    """Heartbeats every `interval_s`; a replica unseen for three intervals no longer counts."""

    def __init__(self, db: Database, on_count: Callable[[int], None], *, interval_s: float = 5.0) -> None:
        self._db = db
        self._on_count = on_count
        self._interval = interval_s
        self.id = str(uuid.uuid4())
        self.count = 1
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> int:
        """Record this replica and return how many are alive."""
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            updated = await session.execute(update(replicas).where(replicas.c.id == self.id).values(seen_at=now))
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                await session.execute(insert(replicas).values(id=self.id, started_at=now, seen_at=now))
            await session.execute(delete(replicas).where(replicas.c.seen_at < now - timedelta(hours=1)))
            alive = await session.scalar(
                select(func.count())
                .select_from(replicas)
                .where(replicas.c.seen_at >= now - timedelta(seconds=3 * self._interval))
            )
        self.count = max(1, int(alive or 1))
        self._on_count(self.count)
        return self.count

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            async with self._db.transaction() as session:
                await session.execute(delete(replicas).where(replicas.c.id == self.id))
        except Exception:  # noqa: BLE001  (shutting down: the row expires by itself)
            log.warning("could not remove this replica's heartbeat; it expires by itself")

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:  # noqa: BLE001  (a background task's boundary: log and keep beating)
                log.warning("replica heartbeat failed; keeping the last count (%d)", self.count)
            await asyncio.sleep(self._interval)
