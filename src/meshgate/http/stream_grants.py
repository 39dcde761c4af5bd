"""Long-lived client streams and the grant each one rests on.

A notification stream (a GET stream, `subscriptions/listen`) outlives the request that was admitted: the
credential may be revoked or lose its role, or the connection deleted or changed, while it is open. Each
stream is held here with its bearer credential, the change topics that end it and a check of what the
caller must still be allowed. A connection change (`connection:<id>`) ends the streams that name it
(clients open a new one, on the connection as it is now); an identity change (a key deleted, a member
removed, a role changed) re-checks every held stream, and ends those whose credential no longer
authenticates or no longer passes the check. On PostgreSQL both are heard from every replica (change notifications).
A stream also ends when its credential expires (an access token, a key with `expiresAt`): a timer set when it is
held, and every re-check against the injectable clock (security review 20).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from meshgate.access import Principal
from meshgate.db.database import EVERYTHING, Database
from meshgate.db.rows import utc_now
from meshgate.errors import Unauthenticated
from meshgate.identity.service import IDENTITY

log = logging.getLogger(__name__)

Authenticate = Callable[[str], Awaitable[Principal]]
Clock = Callable[[], datetime]


@dataclass(eq=False)
class _Held:
    token: str
    topics: frozenset[str]  # change topics that end it (`connection:<id>`)
    allowed: Callable[[Principal], bool]
    expires_at: datetime | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class StreamGrants:
    """The open streams of this process; `hold` one for as long as it is served."""

    def __init__(self, db: Database, authenticate: Authenticate, clock: Clock = utc_now) -> None:
        self._authenticate = authenticate
        self._clock = clock
        self._held: set[_Held] = set()
        self._checks: set[asyncio.Task[None]] = set()
        db.subscribe(self._on_change)

    @contextmanager
    def hold(
        self, token: str, topics: frozenset[str], allowed: Callable[[Principal], bool], expires_at: datetime | None
    ) -> Generator[asyncio.Event]:
        """Register a stream; the event is set when it must end: on one of `topics` (e.g. `connection:<id>`),
        when an identity change leaves `token` not authenticating or not `allowed`, or at `expires_at`."""
        held = _Held(token, topics, allowed, expires_at)
        self._held.add(held)
        timer = None
        if expires_at is not None:
            seconds = max((expires_at - self._clock()).total_seconds(), 0)
            timer = asyncio.get_running_loop().call_later(seconds, held.ended.set)
        try:
            yield held.ended
        finally:
            self._held.discard(held)
            if timer is not None:
                timer.cancel()

    def _on_change(self, topic: str) -> None:
        if topic == EVERYTHING:
            for held in self._held:
                held.ended.set()
        elif topic == IDENTITY and self._held:
            task = asyncio.get_running_loop().create_task(self._recheck())
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)
        else:
            for held in self._held:
                if topic in held.topics:
                    held.ended.set()

    async def _recheck(self) -> None:
        now = self._clock()
        for held in list(self._held):
            if held.expires_at is not None and held.expires_at <= now:
                held.ended.set()
                continue
            try:
                principal = await self._authenticate(held.token)
            except Unauthenticated:
                held.ended.set()
                continue
            except Exception:  # a background task's boundary: keep the stream, log why it was not checked
                log.exception("could not re-check an open stream's credential")
                continue
            if not held.allowed(principal):
                held.ended.set()
