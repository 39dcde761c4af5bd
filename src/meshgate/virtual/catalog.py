"""What each upstream offers (tools, resources, templates, prompts, instructions), cached per process.

Lists are fetched in parallel, on first use, with a deadline; an upstream that fails or is too slow is
remembered as left out (with its reason) and asked again every couple of seconds (on use and in the
background), so a member that comes back is included again within seconds, not at the list TTL. Entries are refreshed in
the background before they go stale, at once when the upstream announces a `list_changed`, and dropped
when the connection changes. Watchers hear which connection's lists changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.breaker import one_call
from meshgate.db.database import EVERYTHING, Database
from meshgate.errors import NotFound, UpstreamError
from meshgate.jsonvalues import as_dict, as_list
from meshgate.observability.metrics import GatewayMetrics

log = logging.getLogger(__name__)

MAX_PAGES = 50
RETRY_AFTER_S = 2.0  # a left-out upstream is asked again this long after it failed
_LISTS = (
    ("tools", "tools/list", "tools"),
    ("resources", "resources/list", "resources"),
    ("templates", "resources/templates/list", "resourceTemplates"),
    ("prompts", "prompts/list", "prompts"),
)
_CHANGES = frozenset(
    {"notifications/tools/list_changed", "notifications/resources/list_changed", "notifications/prompts/list_changed"}
)

ClientSource = Callable[[str, str], Awaitable[UpstreamClient]]
Watcher = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class UpstreamLists:
    """One upstream's lists as last fetched; `error` says why it is left out (then the lists are empty)."""

    connection_id: str
    organization_id: str
    tools: tuple[dict[str, Any], ...] = ()
    resources: tuple[dict[str, Any], ...] = ()
    templates: tuple[dict[str, Any], ...] = ()
    prompts: tuple[dict[str, Any], ...] = ()
    instructions: str | None = None
    error: str | None = None
    fetched_at: float = field(default_factory=time.monotonic, compare=False)

    def same_content(self, other: UpstreamLists | None) -> bool:
        return other is not None and self == other


class UpstreamCatalog:
    """Connection id → `UpstreamLists`, shared by every virtual MCP of the process."""

    def __init__(
        self,
        db: Database,
        clients: ClientSource,
        *,
        ttl_s: float = 300.0,
        timeout_s: float = 5.0,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._clients = clients
        self._ttl = ttl_s
        self._timeout = timeout_s
        self._metrics = metrics
        self._entries: dict[str, UpstreamLists] = {}
        self._used: dict[str, float] = {}
        self._fetching: dict[str, asyncio.Task[UpstreamLists]] = {}
        self._watchers: list[Watcher] = []
        self._refresher: asyncio.Task[None] | None = None
        self._left_out = asyncio.Event()  # an upstream was just left out: the refresher retries it soon
        db.subscribe(self._on_change)

    def watch(self, watcher: Watcher) -> None:
        """Call `watcher(connection_id)` whenever that connection's lists change."""
        self._watchers.append(watcher)

    async def lists(self, organization_id: str, connection_id: str) -> UpstreamLists:
        """The lists of one connection of this organization (fetched when missing, refreshed when stale)."""
        now = time.monotonic()
        self._used[connection_id] = now
        entry = self._entries.get(connection_id)
        if entry is not None and entry.organization_id == organization_id:
            age = now - entry.fetched_at
            if entry.error is None and age >= self._ttl:
                self._refresh(organization_id, connection_id)  # serve the stale lists while new ones come
            if entry.error is None or age < RETRY_AFTER_S:
                return entry
        return await asyncio.shield(self._refresh(organization_id, connection_id))

    def left_out(self, organization_id: str, connection_id: str, reason: str) -> None:
        """A call found the upstream failing: leave it out of lists until it answers again."""
        entry = self._entries.get(connection_id)
        if entry is not None and entry.error is None:
            self._store(UpstreamLists(connection_id, organization_id, error=reason))

    def start(self) -> None:
        if self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._keep_fresh())

    async def stop(self) -> None:
        tasks: list[asyncio.Task[Any]] = [*self._fetching.values()]
        if self._refresher is not None:
            tasks.append(self._refresher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _refresh(self, organization_id: str, connection_id: str) -> asyncio.Task[UpstreamLists]:
        """One fetch per connection at a time; callers share it."""
        task = self._fetching.get(connection_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(organization_id, connection_id))
            self._fetching[connection_id] = task
            task.add_done_callback(lambda _done: self._fetching.pop(connection_id, None))
        return task

    async def _fetch(self, organization_id: str, connection_id: str) -> UpstreamLists:
        try:
            client = await self._clients(organization_id, connection_id)
            if not client.watching("catalog"):
                client.watch("catalog", lambda message, _caller: self._heard(organization_id, connection_id, message))
            # One fetch is one call for the upstream's circuit breaker, however many lists it asks for.
            with one_call():
                async with asyncio.timeout(self._timeout):
                    entry = await _fetch_lists(client, organization_id)
        except NotFound:
            raise
        except (UpstreamError, TimeoutError) as error:
            reason = getattr(error, "message", "") or f"no answer within {self._timeout:g} s"
            entry = UpstreamLists(connection_id, organization_id, error=reason)
        self._store(entry)
        return entry

    def _store(self, entry: UpstreamLists) -> None:
        previous = self._entries.get(entry.connection_id)
        self._entries[entry.connection_id] = entry
        if entry.error is not None and (previous is None or previous.error is None):
            log.warning("virtual MCPs leave out connection %s for now: %s", entry.connection_id, entry.error)
            self._left_out.set()
            if self._metrics is not None:
                self._metrics.virtual_left_out.labels(entry.organization_id, entry.connection_id).inc()
        elif entry.error is None and previous is not None and previous.error is not None:
            log.info("virtual MCPs include connection %s again", entry.connection_id)
        if not entry.same_content(previous):
            for watcher in self._watchers:
                watcher(entry.connection_id)

    def _heard(self, organization_id: str, connection_id: str, message: dict[str, Any]) -> None:
        if message.get("method") in _CHANGES and connection_id in self._entries:
            self._refresh(organization_id, connection_id)

    def _on_change(self, topic: str) -> None:
        if topic.startswith("connection:"):
            self._forget(topic.split(":", 1)[1])
        elif topic == EVERYTHING:
            for connection_id in list(self._entries):
                self._forget(connection_id)

    def _forget(self, connection_id: str) -> None:
        if self._entries.pop(connection_id, None) is not None:
            for watcher in self._watchers:
                watcher(connection_id)

    async def _keep_fresh(self) -> None:
        """Refresh lists in use before they go stale; forget lists nobody asked for in a while."""
        period = max(min(self._ttl / 4, 30.0), 0.5)
        while True:
            left_out = any(entry.error is not None for entry in self._entries.values())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(period, RETRY_AFTER_S) if left_out else period):
                    await self._left_out.wait()
            self._left_out.clear()
            now = time.monotonic()
            for connection_id, entry in list(self._entries.items()):
                if now - self._used.get(connection_id, 0.0) > 3 * self._ttl:
                    self._entries.pop(connection_id, None)
                    self._used.pop(connection_id, None)
                elif now - entry.fetched_at >= (RETRY_AFTER_S if entry.error else 0.75 * self._ttl):
                    self._refresh(entry.organization_id, connection_id)


async def _fetch_lists(client: UpstreamClient, organization_id: str) -> UpstreamLists:
    info = await client.upstream_info()
    capabilities = as_dict(info.get("capabilities"))
    wanted = [(name, method, key) for name, method, key in _LISTS if method.split("/")[0] in capabilities]
    found = await asyncio.gather(*(_all_pages(client, method, key) for _name, method, key in wanted))
    lists = {name: tuple(items) for (name, _method, _key), items in zip(wanted, found, strict=True)}
    instructions = info.get("instructions")
    return UpstreamLists(
        client.config.id,
        organization_id,
        tools=lists.get("tools", ()),
        resources=lists.get("resources", ()),
        templates=lists.get("templates", ()),
        prompts=lists.get("prompts", ()),
        instructions=instructions if isinstance(instructions, str) else None,
    )


async def _all_pages(client: UpstreamClient, method: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        response = await client.request(method, {"cursor": cursor} if cursor else None)
        if "error" in response:
            raise UpstreamError(f"{method} failed: {as_dict(response['error']).get('message', '')}")
        result = as_dict(response.get("result"))
        items.extend(as_dict(item) for item in as_list(result.get(key)) if isinstance(item, dict))
        next_cursor = result.get("nextCursor")
        cursor = next_cursor if isinstance(next_cursor, str) and next_cursor else None
        if cursor is None:
            break
    return items
