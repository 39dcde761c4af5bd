"""Upstream sessions that belong to one caller: one per (connection, credential), bounded and idle-closed.

An upstream keeps state per session (resource subscriptions, log level, roots it asked for, whatever a
tool remembers), so callers that meshgate bridges onto a session of its own must not share one across
credentials. Each connection's client keeps at most `max_sessions` of them; a new caller over the bound
closes the least recently used idle one (and is refused while every one is in use). A session unused for
`idle_s` is closed by `sweep()` (which the pool runs periodically; tests call it after advancing `clock`).
A session in use (a call, or a client stream that listens on it) is never closed under its user; one
retired while in use is closed when its last user lets go.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from meshgate.connections.upstream.session import UpstreamSession
from meshgate.errors import UpstreamUnavailable

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """How many caller sessions one connection keeps, and how long an unused one lives."""

    max_sessions: int = 100
    idle_s: float = 300.0
    clock: Clock = field(default=time.monotonic)


@dataclass(eq=False, slots=True)
class _Entry:
    session: UpstreamSession
    last_used: float
    users: int = 0
    retired: bool = False
    prepared: asyncio.Task[None] | None = None


class CallerSessions:
    """The caller sessions of one connection, by caller (see the module docstring)."""

    def __init__(
        self,
        title: str,
        limits: SessionLimits,
        new_session: Callable[[str], UpstreamSession],
        prepare: Callable[[UpstreamSession], Awaitable[None]] | None = None,
    ) -> None:
        self._title = title
        self._limits = limits
        self._new_session = new_session
        self._prepare = prepare  # awaited once before a new session's first use (an HTTP GET stream opens)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def callers(self) -> list[str]:
        return list(self._entries)

    @asynccontextmanager
    async def lease(self, caller: str) -> AsyncGenerator[UpstreamSession]:
        """`caller`'s session (created when it has none), in use until the block ends."""
        self._close_idle()
        entry = self._entries.get(caller)
        if entry is None:
            entry = self._create(caller)
        self._entries.move_to_end(caller)
        entry.users += 1
        try:
            if self._prepare is not None:
                if entry.prepared is None:
                    entry.prepared = asyncio.ensure_future(self._prepare(entry.session))
                await asyncio.shield(entry.prepared)
            yield entry.session
        finally:
            entry.users -= 1
            entry.last_used = self._limits.clock()
            if entry.retired and entry.users == 0:
                self._close_later(entry)

    async def sweep(self) -> int:
        """Close every session unused for the idle time; returns how many were closed."""
        idle = self._take_idle()
        await asyncio.gather(*(entry.session.close() for entry in idle), return_exceptions=True)
        return len(idle)

    def retire(self) -> None:
        """Close every session (the connection changed): unused ones now, the others when their users let go."""
        entries, self._entries = list(self._entries.values()), OrderedDict()
        for entry in entries:
            entry.retired = True
            if entry.users == 0:
                self._close_later(entry)

    async def close(self) -> None:
        entries, self._entries = list(self._entries.values()), OrderedDict()
        for entry in entries:
            if entry.prepared is not None:
                entry.prepared.cancel()
        await asyncio.gather(*(entry.session.close() for entry in entries), *self._closing, return_exceptions=True)

    def _create(self, caller: str) -> _Entry:
        if len(self._entries) >= self._limits.max_sessions:
            unused = next((key for key, entry in self._entries.items() if entry.users == 0), None)
            if unused is None:
                raise UpstreamUnavailable(
                    f"upstream {self._title} already has {len(self._entries)} caller sessions in use "
                    f"(MESHGATE_UPSTREAM_SESSIONS_MAX={self._limits.max_sessions}); try again shortly"
                )
            self._close_later(self._entries.pop(unused))
        entry = _Entry(self._new_session(caller), self._limits.clock())
        self._entries[caller] = entry
        return entry

    def _take_idle(self) -> list[_Entry]:
        now = self._limits.clock()
        idle = [
            key
            for key, entry in self._entries.items()
            if entry.users == 0 and now - entry.last_used >= self._limits.idle_s
        ]
        return [self._entries.pop(key) for key in idle]

    def _close_idle(self) -> None:
        for entry in self._take_idle():
            self._close_later(entry)

    def _close_later(self, entry: _Entry) -> None:
        async def closing() -> None:
            try:
                await entry.session.close()
            except Exception:  # a top-level task: log it with the traceback, never lose it silently
                log.exception("closing a caller session of upstream %s failed", self._title)

        task = asyncio.get_running_loop().create_task(closing())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
