"""Virtual MCP definitions and their merged views, cached per process and dropped on change.

A call finds its virtual MCP, view and route in memory. Clients holding a notification stream are
told `list_changed` when the merged lists they see change (a member's lists or the definition).
"""

from __future__ import annotations

import asyncio
import logging

from meshgate.db.database import EVERYTHING, Database
from meshgate.errors import NotFound
from meshgate.virtual.catalog import UpstreamCatalog, UpstreamLists
from meshgate.virtual.models import VirtualMcp
from meshgate.virtual.service import VirtualMcpService
from meshgate.virtual.view import VirtualView, build_view

log = logging.getLogger(__name__)

MAX_LISTENERS = 1000
TOOLS_CHANGED = "notifications/tools/list_changed"
PROMPTS_CHANGED = "notifications/prompts/list_changed"
RESOURCES_CHANGED = "notifications/resources/list_changed"


class VirtualDirectory:
    """Virtual MCP id → definition and view; listeners per virtual MCP for list_changed."""

    def __init__(self, db: Database, catalog: UpstreamCatalog) -> None:
        self._db = db
        self.catalog = catalog
        self._definitions: dict[str, VirtualMcp] = {}
        self._views: dict[str, tuple[tuple[UpstreamLists, ...], VirtualView]] = {}
        self._listeners: dict[str, set[asyncio.Queue[str]]] = {}
        self._generation = 0
        self._rechecking: set[asyncio.Task[None]] = set()
        db.subscribe(self._on_change)
        catalog.watch(self._on_lists_changed)

    async def get(self, organization_id: str, virtual_id: str) -> VirtualMcp:
        """The definition of a virtual MCP of this organization; other organizations' ids are not found."""
        definition = self._definitions.get(virtual_id)
        if definition is None:
            generation = self._generation
            async with self._db.transaction() as session:
                definition = await VirtualMcpService(session, organization_id).get(virtual_id)
            if generation == self._generation:
                self._definitions[virtual_id] = definition
        if definition.organization_id != organization_id:
            raise NotFound(f"virtual MCP {virtual_id} not found")
        return definition

    async def view(self, definition: VirtualMcp) -> VirtualView:
        """The merged lists, from the catalog (members fetched in parallel); rebuilt only on change."""
        lists = tuple(
            await asyncio.gather(
                *(self.catalog.lists(definition.organization_id, member.connection_id) for member in definition.members)
            )
        )
        cached = self._views.get(definition.id)
        if cached is not None and _same(cached[0], lists) and self._definitions.get(definition.id) is definition:
            return cached[1]
        view = build_view(definition, lists)
        if self._definitions.get(definition.id) is definition:
            self._views[definition.id] = (lists, view)
        return view

    def listen(self, virtual_id: str) -> asyncio.Queue[str]:
        """A queue of list_changed notification methods for one client stream; `unlisten` when done."""
        listeners = self._listeners.setdefault(virtual_id, set())
        if sum(len(queues) for queues in self._listeners.values()) >= MAX_LISTENERS:
            raise OverflowError("too many notification streams are open")
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=16)
        listeners.add(queue)
        return queue

    def unlisten(self, virtual_id: str, queue: asyncio.Queue[str]) -> None:
        listeners = self._listeners.get(virtual_id)
        if listeners is not None:
            listeners.discard(queue)
            if not listeners:
                del self._listeners[virtual_id]

    def _on_change(self, topic: str) -> None:
        if topic.startswith("virtual:"):
            self._forget(topic.split(":", 1)[1])
        elif topic.startswith("connection:"):
            # a member's title (its name prefix) or status may have changed
            connection_id = topic.split(":", 1)[1]
            for virtual_id, definition in list(self._definitions.items()):
                if any(member.connection_id == connection_id for member in definition.members):
                    self._forget(virtual_id)
        elif topic == EVERYTHING:
            for virtual_id in list(self._definitions):
                self._forget(virtual_id)

    def _forget(self, virtual_id: str) -> None:
        self._generation += 1
        definition = self._definitions.pop(virtual_id, None)
        previous = self._views.pop(virtual_id, None)
        if virtual_id in self._listeners:
            self._recheck(virtual_id, None if previous is None else previous[1], definition)

    def _on_lists_changed(self, connection_id: str) -> None:
        for virtual_id, definition in list(self._definitions.items()):
            if virtual_id in self._listeners and any(m.connection_id == connection_id for m in definition.members):
                cached = self._views.get(virtual_id)
                self._recheck(virtual_id, None if cached is None else cached[1], definition)

    def _recheck(self, virtual_id: str, previous: VirtualView | None, known: VirtualMcp | None) -> None:
        """Rebuild a watched view in the background and tell its listeners what changed."""

        async def recheck() -> None:
            organization_id = known.organization_id if known is not None else None
            if organization_id is None:
                return
            try:
                view = await self.view(await self.get(organization_id, virtual_id))
            except NotFound:
                view = None
            changed = [
                method
                for method, same in (
                    (TOOLS_CHANGED, view is not None and view.same_tools(previous)),
                    (PROMPTS_CHANGED, view is not None and view.same_prompts(previous)),
                    (RESOURCES_CHANGED, view is not None and view.same_resources(previous)),
                )
                if not same
            ]
            for queue in list(self._listeners.get(virtual_id, ())):
                for method in changed:
                    if not queue.full():
                        queue.put_nowait(method)

        task = asyncio.get_running_loop().create_task(recheck())
        self._rechecking.add(task)
        task.add_done_callback(self._rechecking.discard)

    async def stop(self) -> None:
        for task in self._rechecking:
            task.cancel()
        await asyncio.gather(*self._rechecking, return_exceptions=True)
        await self.catalog.stop()


def _same(first: tuple[UpstreamLists, ...], second: tuple[UpstreamLists, ...]) -> bool:
    return len(first) == len(second) and all(a is b for a, b in zip(first, second, strict=True))
