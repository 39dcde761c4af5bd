"""`GET /api/{org_slug}/watch?types=a.*,b.c`: events pushed live as server-sent events, from any replica.

Publishing announces `published_topic(org, id)` (in this process, and on PostgreSQL through NOTIFY to every
replica); each process that has a watcher for the organization loads the event once and offers it to every
stream whose patterns match. `Last-Event-ID` resumes from the store: the events after that one, oldest first
(at most `MAX_REPLAY`), then the live ones, none twice. A stream that does not keep up (its backlog is full)
is ended with an `error` event instead of being buffered without bound, and a stream ends when its
credential expires. Watching needs `self:EVENT_LIST`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from sqlalchemy import and_, or_, select
from starlette.types import Receive, Scope, Send

from meshgate.access import SELF, Principal
from meshgate.db.database import Database
from meshgate.db.tables import events
from meshgate.errors import InvalidInput, MeshgateError, NotFound, PermissionDenied
from meshgate.events.models import TOPIC_PREFIX, CloudEvent, checked_pattern, type_matches
from meshgate.events.service import event_of
from meshgate.http.errors import http_error
from meshgate.http.guard import Admission, headers_of
from meshgate.http.sse import serve_events

log = logging.getLogger(__name__)

MAX_PATTERNS = 20
MAX_REPLAY = 1000
BACKLOG = 512


@dataclass(eq=False)
class _Watcher:
    patterns: tuple[str, ...]
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue[dict[str, Any]](BACKLOG))
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    last: dict[str, Any] = field(default_factory=dict[str, Any])  # filled in before `ended` is set
    seen: set[str] = field(default_factory=set[str])  # replayed ids, so a live copy is not sent again

    def offer(self, event: CloudEvent) -> None:
        if self.ended.is_set() or event.id in self.seen:
            return
        if not any(type_matches(pattern, event.type) for pattern in self.patterns):
            return
        try:
            self.queue.put_nowait(event.to_dict())
        except asyncio.QueueFull:
            self.end("the stream fell too far behind and was ended; reconnect with Last-Event-ID to resume")

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.last.update({"error": reason})
            self.ended.set()


class WatchHub:
    """The live event streams of this process."""

    def __init__(self, db: Database, admission: Admission, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._admission = admission
        self._clock = clock
        self._watchers: dict[str, set[_Watcher]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        db.subscribe(self._heard)

    @property
    def open_streams(self) -> int:
        return sum(len(found) for found in self._watchers.values())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            principal, _ = await self._admission.admit(scope, receive, headers_of(scope))
            slug = scope["path_params"]["org_slug"]
            if principal.organization_slug != slug:
                raise NotFound(f"organization {str(slug)[:100]} not found")
        except MeshgateError as error:
            await http_error(error)(scope, receive, send)
            return
        await self.serve(scope, receive, send, principal)

    async def serve(self, scope: Scope, receive: Receive, send: Send, principal: Principal) -> None:
        """The stream of `principal`'s organization, for a caller already authenticated (the API route with
        its bearer credential, the dashboard with a browser session); `types` and `Last-Event-ID` as above."""
        headers = headers_of(scope)
        try:
            if not principal.allows(SELF, "EVENT_LIST"):
                raise PermissionDenied("watching events needs self:EVENT_LIST")
            if principal.connection_id is not None:  # it would see every event of the organization
                raise PermissionDenied("a connection's credential has no watch stream: it receives events by ON_EVENTS")
            patterns = _patterns(scope)
        except MeshgateError as error:
            await http_error(error)(scope, receive, send)
            return
        watcher = _Watcher(patterns)
        organization = principal.organization_id
        self._watchers.setdefault(organization, set()).add(watcher)
        expiry = self._expire_at(principal, watcher)
        try:
            await self._replay(organization, watcher, headers.get("last-event-id"))
            await serve_events(receive, send, watcher.queue, _same, ended=watcher.ended, last=watcher.last, encode=_sse)
        finally:
            if expiry is not None:
                expiry.cancel()
            found = self._watchers.get(organization)
            if found is not None:
                found.discard(watcher)
                if not found:
                    del self._watchers[organization]

    async def stop(self) -> None:
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.end("meshgate is shutting down")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _heard(self, topic: str) -> None:
        if not topic.startswith(TOPIC_PREFIX):
            return
        organization, _, event_id = topic[len(TOPIC_PREFIX) :].partition(":")
        if organization in self._watchers:
            task = asyncio.get_running_loop().create_task(self._deliver(organization, event_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, organization: str, event_id: str) -> None:
        async with self._db.transaction() as session:
            row = (
                await session.execute(
                    select(events).where(events.c.organization_id == organization, events.c.id == event_id)
                )
            ).first()
        if row is None:
            return
        event = event_of(row)
        for watcher in list(self._watchers.get(organization, ())):
            watcher.offer(event)

    async def _replay(self, organization: str, watcher: _Watcher, last_id: str | None) -> None:
        """What was published after `last_id`, oldest first (the watcher is registered already: live events that
        arrive meanwhile wait in its queue, and the replayed ones are not sent again)."""
        if not last_id:
            return
        async with self._db.transaction() as session:
            mark = (
                await session.execute(
                    select(events.c.time, events.c.id).where(
                        events.c.organization_id == organization, events.c.id == last_id[:36]
                    )
                )
            ).first()
            if mark is None:
                return
            after = or_(events.c.time > mark.time, and_(events.c.time == mark.time, events.c.id > mark.id))
            rows = (
                await session.execute(
                    select(events)
                    .where(events.c.organization_id == organization, events.c.status == "published", after)
                    .order_by(events.c.time, events.c.id)
                    .limit(MAX_REPLAY)
                )
            ).all()
        replayed = [event_of(row) for row in rows]
        live = [watcher.queue.get_nowait() for _ in range(watcher.queue.qsize())]
        watcher.seen.update(event.id for event in replayed)
        for event in replayed:
            if any(type_matches(pattern, event.type) for pattern in watcher.patterns):
                watcher.queue.put_nowait(event.to_dict())
        for item in live:
            if item["id"] not in watcher.seen:
                watcher.queue.put_nowait(item)

    def _expire_at(self, principal: Principal, watcher: _Watcher) -> asyncio.TimerHandle | None:
        if principal.expires_at is None:
            return None
        seconds = (principal.expires_at - self._clock()).total_seconds()
        return asyncio.get_running_loop().call_later(max(seconds, 0), watcher.end, "the credential expired")


def _patterns(scope: Scope) -> tuple[str, ...]:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    given = ",".join(query.get("types", []))
    patterns = tuple(item.strip() for item in given.split(",") if item.strip()) or ("*",)
    if len(patterns) > MAX_PATTERNS:
        raise InvalidInput(f"types names at most {MAX_PATTERNS} patterns")
    return tuple(checked_pattern(pattern) for pattern in patterns)


def _same(item: dict[str, Any]) -> dict[str, Any]:
    return item


def _sse(frame: dict[str, Any]) -> bytes:
    """A CloudEvent as an SSE event whose id resumes the stream; the last frame of an ended stream is `error`."""
    if "error" in frame:
        return b"event: error\ndata: " + orjson.dumps(frame) + b"\n\n"
    return b"id: " + str(frame["id"]).encode() + b"\nevent: cloudevent\ndata: " + orjson.dumps(frame) + b"\n\n"
