"""Long-lived client streams and the grant each one rests on.

A notification stream (a GET stream, `subscriptions/listen`) outlives the request that was admitted: the
credential may be revoked or lose its role, or the connection deleted or changed, while it is open. Each
stream is held here with its bearer credential, the change topics that end it and a check of what the
caller must still be allowed. A connection change (`connection:<id>`) ends the streams that name it
(clients open a new one, on the connection as it is now); an identity change (a key deleted, a member
removed, a role changed) re-checks every held stream, and ends those whose credential no longer
authenticates or no longer passes the check. On PostgreSQL both are heard from every replica (change notifications).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass, field

from meshgate.access import Principal
from meshgate.db.database import EVERYTHING, Database
from meshgate.errors import Unauthenticated
from meshgate.identity.service import IDENTITY

log = logging.getLogger(__name__)

Authenticate = Callable[[str], Awaitable[Principal]]


@dataclass(eq=False)
class _Held:
    token: str
    topics: frozenset[str]  # change topics that end it (`connection:<id>`)
    allowed: Callable[[Principal], bool]
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class StreamGrants:
    """The open streams of this process; `hold` one for as long as it is served."""

    def __init__(self, db: Database, authenticate: Authenticate) -> None:
        self._authenticate = authenticate
        self._held: set[_Held] = set()
        self._checks: set[asyncio.Task[None]] = set()
        db.subscribe(self._on_change)

    @contextmanager
    def hold(
        self, token: str, topics: frozenset[str], allowed: Callable[[Principal], bool]
    ) -> Generator[asyncio.Event]:
        """Register a stream; the event is set when it must end: on one of `topics` (e.g. `connection:<id>`),
        or when an identity change leaves `token` not authenticating or not `allowed`."""
        held = _Held(token, topics, allowed)
        self._held.add(held)
        try:
            yield held.ended
        finally:
            self._held.discard(held)

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
        for held in list(self._held):
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
