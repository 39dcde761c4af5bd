"""What a bridged upstream announces, fanned out to the client streams that asked for it.

On the bridged path (SSE and STDIO upstreams, and HTTP upstreams of the other generation) meshgate holds the
upstream side on a session of the caller's own (one per credential, `connections/upstream/callers.py`), so
what an upstream says on it goes only to that caller's client streams: a handshake-era client's GET stream
(log messages sent outside a call, and `notifications/resources/updated` for the URIs its session subscribed
to) or a `2026-07-28` client's `subscriptions/listen` stream (what its filter names, stamped with its
subscription id; a filter has no log messages, and 2026-07-28 servers send them only to requests that ask).
`*/list_changed` carries nothing of a caller's and goes to every stream of the connection that wants it, as
does everything said on meshgate's own session (a stateless-era upstream's, shared). meshgate subscribes
upstream on the caller's session, once per URI while any stream of this process of that caller wants it,
and again when that session is re-opened (a restarted STDIO process, a reconnected SSE stream). A stream
keeps its caller's session in use, so it is not closed as idle under it.

A handshake-era session's subscriptions arrive as POSTs that may land on any replica while its GET stream
is held by one of them: each change is announced as a change topic (PostgreSQL NOTIFY between replicas)
and every process keeps the subscriptions of recent sessions in memory, so the stream, on whichever
replica it is (or reconnects to), delivers what its session asked for.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from meshgate.connections.upstream import UpstreamClient
from meshgate.db.database import Database, announce_change
from meshgate.errors import InvalidInput, UpstreamError
from meshgate.jsonvalues import as_dict
from meshgate.protocol import SUBSCRIPTION_ID_META

log = logging.getLogger(__name__)

TOPIC = "resource-subscription"
UPDATED = "notifications/resources/updated"
LIST_CHANGED = {
    "toolsListChanged": "notifications/tools/list_changed",
    "promptsListChanged": "notifications/prompts/list_changed",
    "resourcesListChanged": "notifications/resources/list_changed",
}
_FOR_EVERYONE = frozenset(LIST_CHANGED.values())
LOG_MESSAGE = "notifications/message"  # outside a call (one during a call goes to its caller)
SUBSCRIPTION_ID = SUBSCRIPTION_ID_META
MAX_URI = 2048
MAX_URIS = 256  # per session or listen stream
MAX_SESSIONS = 10_000  # remembered per process; the oldest are forgotten first
_BACKLOG = 256  # events waiting for one slow client stream; more are dropped (logged)

SessionKey = tuple[str, str, str]  # (connection id, client session id, caller)


@dataclass(eq=False)
class Listener:
    """One client stream: what it wants, and the events waiting for it."""

    methods: frozenset[str]
    uris: set[str]
    meta: dict[str, Any] | None = None  # stamped into every event's `_meta` (2026-07-28 subscription id)
    caller: str | None = None  # whose upstream session it hears (`Principal.caller`)
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue[dict[str, Any]](_BACKLOG))

    def offer(self, message: dict[str, Any]) -> None:
        method = str(message.get("method"))
        params = as_dict(message.get("params"))
        if method not in self.methods and not (method == UPDATED and str(params.get("uri")) in self.uris):
            return
        if self.meta is not None:
            message = {"jsonrpc": "2.0", "method": method, "params": {**params, "_meta": self.meta}}
        try:
            self.events.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("a client stream is not reading; dropped %s", method)


def checked_uri(params: Any) -> str:
    """The `uri` of a resources/subscribe or unsubscribe, or a clear refusal."""
    uri = as_dict(params).get("uri")
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI or "\t" in uri:
        raise InvalidInput(f"params.uri must be a resource URI of 1 to {MAX_URI} characters")
    return uri


class Announcements:
    """Client streams of the bridged path in this process, and the upstream subscriptions they need."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._listeners: dict[str, set[Listener]] = {}  # connection id -> its streams here
        self._session_streams: dict[SessionKey, set[Listener]] = {}
        self._sessions: OrderedDict[SessionKey, set[str]] = OrderedDict()  # handshake sessions' URIs
        self._wanted: dict[tuple[str, str | None, str], int] = {}  # (connection, caller, uri) -> streams wanting it
        self._clients: dict[str, UpstreamClient] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        db.subscribe(self._on_change)

    # --- handshake-era sessions ---------------------------------------------------------------------

    async def change_session(self, key: SessionKey, operation: str, uri: str = "") -> None:
        """`subscribe`, `unsubscribe` (a URI) or `end` (the session): on every replica, once committed."""
        if operation == "subscribe" and len(self._sessions.get(key, ())) >= MAX_URIS and uri not in self._sessions[key]:
            raise InvalidInput(f"a session may subscribe to at most {MAX_URIS} resources")
        async with self._db.transaction() as session:
            await announce_change(session, "\t".join((TOPIC, operation, *key, uri)))

    def _on_change(self, topic: str) -> None:
        if not topic.startswith(TOPIC + "\t"):
            return
        parts = topic.split("\t")
        if len(parts) != 6:
            return
        operation, key, uri = parts[1], (parts[2], parts[3], parts[4]), parts[5]
        uris = self._sessions.pop(key, set())
        if operation == "subscribe" and len(uris) < MAX_URIS:
            uris.add(uri)
        elif operation == "unsubscribe":
            uris.discard(uri)
        if operation != "end":
            self._sessions[key] = uris  # most recently used last
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        for listener in self._session_streams.get(key, set()):
            self._spawn(self._retarget(key[0], listener, set(uris)))

    # --- streams ------------------------------------------------------------------------------------

    @asynccontextmanager
    async def listening(  # noqa: PLR0917  (what one stream wants)
        self,
        client: UpstreamClient,
        caller: str,
        methods: frozenset[str],
        uris: set[str],
        meta: dict[str, Any] | None = None,
        session: SessionKey | None = None,
    ) -> AsyncGenerator[Listener]:
        """A stream's registration for as long as it is open; `session` makes it follow that session's URIs."""
        connection_id = client.config.id
        self.watch(client)
        if session is not None:
            uris = set(self._sessions.get(session, set()))
        listener = Listener(methods, set(), meta, caller)
        self._listeners.setdefault(connection_id, set()).add(listener)
        if session is not None:
            self._session_streams.setdefault(session, set()).add(listener)
        try:
            async with AsyncExitStack() as held:
                try:
                    upstream = await held.enter_async_context(client.session_for(caller))
                    await upstream.stream_ready()  # what the upstream says before its stream is read is lost
                except UpstreamError as error:
                    log.info("a stream of upstream %s starts without its session: %s", client.config.title, error)
                await self._retarget(connection_id, listener, uris)
                try:
                    yield listener
                finally:
                    await asyncio.shield(self._retarget(connection_id, listener, set()))
        finally:
            self._listeners[connection_id].discard(listener)
            if not self._listeners[connection_id]:
                del self._listeners[connection_id]
            if session is not None:
                self._session_streams[session].discard(listener)
                if not self._session_streams[session]:
                    del self._session_streams[session]

    def watch(self, client: UpstreamClient) -> None:
        """Hear what `client`'s upstream announces (for HTTP upstreams this opens meshgate's GET stream, where
        servers also send requests that name no call, such as roots/list)."""
        connection_id = client.config.id
        self._clients[connection_id] = client
        if not client.watching("announcements"):
            client.watch("announcements", lambda message, caller: self._heard(connection_id, message, caller))
            client.on_reopen(lambda caller: self._spawn(self._resubscribe(connection_id, caller)))

    def _heard(self, connection_id: str, message: dict[str, Any], caller: str | None) -> None:
        """What an upstream said on `caller`'s session goes to that caller's streams (list_changed to all)."""
        everyone = caller is None or message.get("method") in _FOR_EVERYONE
        for listener in self._listeners.get(connection_id, set()):
            if everyone or listener.caller == caller:
                listener.offer(message)

    async def _retarget(self, connection_id: str, listener: Listener, uris: set[str]) -> None:
        """Make `listener` want exactly `uris`, subscribing or unsubscribing upstream where that changes."""
        added, removed = uris - listener.uris, listener.uris - uris
        listener.uris = uris
        caller = listener.caller
        for uri in sorted(added):
            key = (connection_id, caller, uri)
            self._wanted[key] = self._wanted.get(key, 0) + 1
            if self._wanted[key] == 1:
                await self._upstream(connection_id, caller, "resources/subscribe", uri)
        for uri in sorted(removed):
            key = (connection_id, caller, uri)
            left = self._wanted.get(key, 1) - 1
            if left > 0:
                self._wanted[key] = left
                continue
            self._wanted.pop(key, None)
            await self._upstream(connection_id, caller, "resources/unsubscribe", uri)

    async def _resubscribe(self, connection_id: str, caller: str | None) -> None:
        for connection, who, uri in list(self._wanted):
            if connection == connection_id and who == caller:
                await self._upstream(connection_id, caller, "resources/subscribe", uri)

    async def _upstream(self, connection_id: str, caller: str | None, method: str, uri: str) -> None:
        """Subscribe or unsubscribe on the caller's own upstream session."""
        client = self._clients.get(connection_id)
        if client is None:
            return
        try:
            answer = await client.request(method, {"uri": uri}, caller=caller)
        except UpstreamError as error:
            log.info("%s %s on upstream %s failed: %s", method, uri, client.config.title, error.message)
            return
        if "error" in answer:
            reason = as_dict(answer["error"]).get("message")
            log.info("upstream %s refused %s %s: %s", client.config.title, method, uri, reason)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def offers_subscriptions(client: UpstreamClient, caller: str) -> bool:
    """Whether the upstream announced `resources.subscribe` when the caller's session opened."""
    capabilities = as_dict((await client.upstream_info(caller)).get("capabilities"))
    return as_dict(capabilities.get("resources")).get("subscribe") is True
