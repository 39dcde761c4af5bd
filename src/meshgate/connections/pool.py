"""The in-memory pool of upstream clients, one per connection, dropped when the connection changes.

A proxied call finds its client here without touching the database. A change to a connection is
announced with `connection_topic(id)`; every process drops that client: its callers' upstream sessions close
at once (those in use when their calls end), the rest once calls still using it have had time to finish.
The pool also closes callers' sessions that have been idle too long (`SessionLimits`).
"""

from __future__ import annotations

import asyncio
import logging

from meshgate.connections.addresses import AddressPolicy
from meshgate.connections.service import ConnectionService
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.callers import SessionLimits
from meshgate.connections.upstream.stdio import StdioSupervisor
from meshgate.db.database import EVERYTHING, Database
from meshgate.errors import NotFound
from meshgate.vault import Vault

log = logging.getLogger(__name__)

_MAX_UNKNOWN = 10_000


class UpstreamPool:
    """Connection id → `UpstreamClient`, organization-checked on every lookup."""

    def __init__(
        self,
        db: Database,
        vault: Vault,
        *,
        addresses: AddressPolicy | None = None,
        close_grace_s: float = 300.0,
        stdio: StdioSupervisor | None = None,
        sessions: SessionLimits | None = None,
    ) -> None:
        self.stdio = stdio  # None unless meshgate runs with --local-mode
        self.sessions = sessions or SessionLimits()
        self._sweeper: asyncio.Task[None] | None = None
        self._db = db
        self._vault = vault
        self.addresses = addresses or AddressPolicy()
        self._clients: dict[str, UpstreamClient] = {}
        self._unknown: set[tuple[str, str]] = set()  # (organization, connection id) pairs known not to exist
        self._generation = 0
        self._grace = close_grace_s
        self._retiring: set[asyncio.Task[None]] = set()
        db.subscribe(self._on_change)

    async def get(self, organization_id: str, connection_id: str) -> UpstreamClient:
        """The client for a connection of this organization; other organizations' ids are not found.

        Another organization's pooled id takes the same path as an id that does not exist (one scoped query,
        then the same negative cache), so how fast the answer comes tells nothing about other tenants."""
        client = self._clients.get(connection_id)
        if client is not None and client.config.organization_id == organization_id:
            return client
        if (organization_id, connection_id) in self._unknown:
            raise NotFound(f"connection {connection_id} not found")
        generation = self._generation
        try:
            async with self._db.transaction() as session:
                config = await ConnectionService(session, organization_id, self._vault).upstream_config(connection_id)
        except NotFound:
            if generation == self._generation:
                if len(self._unknown) >= _MAX_UNKNOWN:
                    self._unknown.clear()
                self._unknown.add((organization_id, connection_id))
            raise
        client = UpstreamClient(config, self.addresses, self.stdio, sessions=self.sessions)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        if generation == self._generation and connection_id not in self._clients:
            self._clients[connection_id] = client
            return client
        self._retire(client)
        return self._clients.get(connection_id, client)

    def clients(self) -> list[UpstreamClient]:
        """The clients in the pool now (for metrics)."""
        return list(self._clients.values())

    def drop(self, connection_id: str) -> None:
        self._generation += 1
        self._unknown.clear()
        client = self._clients.pop(connection_id, None)
        if client is not None:
            self._retire(client)

    async def sweep(self) -> int:
        """Close callers' upstream sessions idle for longer than allowed; returns how many."""
        closed = 0
        for client in list(self._clients.values()):
            closed += await client.callers.sweep()
        return closed

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(min(max(self.sessions.idle_s / 4, 0.05), 30.0))
            await self.sweep()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        clients, self._clients = list(self._clients.values()), {}
        for task in self._retiring:
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)

    def _on_change(self, topic: str) -> None:
        if topic.startswith("connection:"):
            self.drop(topic.split(":", 1)[1])
        elif topic == EVERYTHING:
            self._generation += 1
            self._unknown.clear()
            for connection_id in list(self._clients):
                self.drop(connection_id)

    def _retire(self, client: UpstreamClient) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (closing at exit): nothing runs to close
        client.retire()

        async def later() -> None:
            try:
                await asyncio.sleep(self._grace)
            finally:
                await client.close()

        task = loop.create_task(later())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
