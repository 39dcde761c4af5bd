"""The connection registry of one organization. Secrets are sealed in the vault, never returned by reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.connections.models import (
    Connection,
    ConnectionSecrets,
    Discovery,
    UpstreamConfig,
    oauth_shown,
    split_tools,
    stdio_shown,
)
from meshgate.connections.query import order_by, where_clause
from meshgate.connections.upstream_tokens import UpstreamTokenStore
from meshgate.db.database import Notice, announce_change, notify
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import connections, virtual_mcp_connections, virtual_mcps
from meshgate.errors import Conflict, NotFound
from meshgate.jsonvalues import as_dict
from meshgate.vault import Vault

MAX_TOOLS_PER_CONNECTION = 200  # tool names beyond this fold into "other" in metrics


def connection_topic(connection_id: str) -> str:
    """The change topic that drops a connection from every process's cache."""
    return f"connection:{connection_id}"


def _summary(secrets: ConnectionSecrets) -> dict[str, Any]:
    """What reads may say about the secrets: which are set, and header names (never values)."""
    return {
        "token": secrets.token is not None,
        "headers": sorted(secrets.headers),
        "stdio": None if secrets.stdio is None else stdio_shown(secrets.stdio),
        "configuration_state": secrets.configuration_state is not None,
        "oauth": secrets.oauth is not None,
        "oauth_client": None if secrets.oauth is None else oauth_shown(secrets.oauth),
    }


def _origin(url: str | None) -> tuple[str, str, int | None] | None:
    if url is None:
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def _without_old_server_secrets(secrets: ConnectionSecrets) -> tuple[ConnectionSecrets, tuple[str, ...]]:
    """Drop what was given for one server: token, secret headers, configuration state, OAuth client secret."""
    dropped: list[str] = []
    if secrets.token is not None:
        dropped.append("connection_token")
    if secrets.headers:
        dropped.append("connection_headers")
    if secrets.configuration_state is not None:
        dropped.append("configuration_state")
    oauth = secrets.oauth
    if oauth is not None and oauth.get("client_secret") is not None:
        dropped.append("oauth.client_secret")
        oauth = {name: value for name, value in oauth.items() if name != "client_secret"}
    moved = replace(secrets, token=None, headers={}, configuration_state=None, oauth=oauth)
    return moved, tuple(dropped)


def _context(connection_id: str) -> bytes:
    # Binding the ciphertext to its row: a sealed value copied to another connection does not open.
    return f"connection:{connection_id}".encode()


class ConnectionInUse(Conflict):
    """Deleting a connection that virtual MCPs still use: `users` names them (id, title) so a page can link them."""

    def __init__(self, title: str, users: list[tuple[str, str]]) -> None:
        named = ", ".join(f"{name} ({virtual_id})" for virtual_id, name in users)
        super().__init__(
            f"connection {title} is used by virtual MCPs {named}: "
            "remove it from them (COLLECTION_VIRTUAL_MCP_UPDATE) before deleting it"
        )
        self.users = users


class ConnectionService:
    """Creates, reads, changes and deletes the connections of one organization."""

    def __init__(self, session: AsyncSession, organization_id: str, vault: Vault) -> None:
        self._session = session
        self._org = organization_id
        self._vault = vault

    async def create(self, values: Mapping[str, Any], secrets: ConnectionSecrets, created_by: str | None) -> Connection:
        """`values` holds the non-secret columns (already validated)."""
        connection_id = new_id()
        when = utc_now()
        await self._session.execute(
            insert(connections).values(
                id=connection_id,
                organization_id=self._org,
                secrets=self._seal(connection_id, secrets),
                secret_summary=_summary(secrets),
                created_by=created_by,
                created_at=when,
                updated_at=when,
                **values,
            )
        )
        created = await self.get(connection_id)
        notify(self._session, Notice(self._org, "meshgate.connection.created", connection_id, _described(created)))
        return created

    async def get(self, connection_id: str) -> Connection:
        row = (await self._session.execute(self._select().where(connections.c.id == connection_id))).first()
        if row is None:
            raise NotFound(f"connection {connection_id} not found")
        return await self._connection(row)

    async def list(
        self,
        *,
        where: Mapping[str, Any] | None = None,
        order: list[Mapping[str, Any]] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Connection], int]:
        """A page of connections and the total matching count."""
        condition = connections.c.organization_id == self._org
        if where:
            condition = condition & where_clause(connections, where)
        query = self._select().where(condition).order_by(*order_by(connections, order)).limit(limit).offset(offset)
        rows = (await self._session.execute(query)).all()
        total = await self._session.scalar(select(func.count()).select_from(connections).where(condition))
        return [await self._connection(row) for row in rows], int(total or 0)

    async def secrets_for_url(self, connection_id: str, url: str | None) -> tuple[ConnectionSecrets, tuple[str, ...]]:
        """The stored secrets that may be sent to `url`, and the names of those dropped.

        Secrets were given for the server at the stored URL. When `url` has another origin (scheme, host,
        port), sending them there would hand them to whoever runs it (anyone who may update a connection
        could read its secrets that way), so they are dropped, and the OAuth tokens held for the old server
        are forgotten. The caller supplies secrets again on top of what this returns."""
        current = await self.get(connection_id)
        secrets = await self.secrets(connection_id)
        if _origin(url) == _origin(current.connection_url):
            return secrets, ()
        moved, dropped = _without_old_server_secrets(secrets)
        tokens = UpstreamTokenStore(self._session, self._vault)
        if await tokens.load(connection_id) is not None:
            await tokens.forget(connection_id)
            dropped = (*dropped, "oauth tokens")
        return moved, dropped

    async def update(
        self,
        connection_id: str,
        values: Mapping[str, Any],
        secrets: ConnectionSecrets | None = None,
        *,
        dropped: tuple[str, ...] = (),
    ) -> Connection:
        """`secrets` replaces the stored ones when given; it must come from `secrets_for_url` when `values`
        moves the URL (`dropped` names what that dropped). Without `secrets`, a move drops them here."""
        before = await self.get(connection_id)
        if secrets is None and "connection_url" in values:
            moved, dropped = await self.secrets_for_url(connection_id, values["connection_url"])
            secrets = moved if dropped else None
        changes: dict[str, Any] = {**values, "updated_at": utc_now()}
        if secrets is not None:
            changes["secrets"] = self._seal(connection_id, secrets)
            changes["secret_summary"] = _summary(secrets)
        await self._session.execute(update(connections).where(connections.c.id == connection_id).values(changes))
        await announce_change(self._session, connection_topic(connection_id))
        after = await self.get(connection_id)
        self._notify_update(before, after, sorted(name for name in changes if name not in _NOT_NOTICED))
        return replace(after, dropped_secrets=dropped)

    def _notify_update(self, before: Connection, after: Connection, changed: list[str]) -> None:
        if after.status != before.status:
            data = {**_described(after), "previous": before.status, "reason": after.status_reason}
            notify(self._session, Notice(self._org, "meshgate.connection.status_changed", after.id, data))
        if [name for name in changed if name not in ("status", "status_reason")]:
            data = {**_described(after), "changed": changed}
            notify(self._session, Notice(self._org, "meshgate.connection.updated", after.id, data))

    async def record_discovery(self, connection_id: str, discovery: Discovery | None, error: str | None) -> Connection:
        """Store what contacting the server found, or the reason it could not be reached."""
        if discovery is None:
            values: dict[str, Any] = {"status": "error", "status_reason": error}
        else:
            values = {
                "status_reason": None,
                "server_info": discovery.server_info,
                "instructions": discovery.instructions,
                "tools": discovery.tools,
            }
            current = await self.get(connection_id)
            if current.status == "error":
                values["status"] = "active"
        return await self.update(connection_id, values)

    async def record_health(self, connection_id: str, reason: str | None) -> Connection:
        """What a test of the connection found: `reason` why the server could not be reached, or None when it
        answered. An inactive connection stays inactive; nothing is written when nothing changed."""
        current = await self.get(connection_id)
        if current.status == "inactive":
            return current
        if reason is not None:
            wanted = ("error", reason)
        elif current.status == "error":
            wanted = ("active", None)
        else:
            return current
        if (current.status, current.status_reason) == wanted:
            return current
        return await self.update(connection_id, {"status": wanted[0], "status_reason": wanted[1]})

    async def delete(self, connection_id: str) -> Connection:
        connection = await self.get(connection_id)
        users = (
            await self._session.execute(
                select(virtual_mcps.c.id, virtual_mcps.c.title)
                .join(virtual_mcp_connections, virtual_mcp_connections.c.virtual_mcp_id == virtual_mcps.c.id)
                .where(virtual_mcp_connections.c.connection_id == connection_id)
                .order_by(virtual_mcps.c.title)
            )
        ).all()
        if users:
            raise ConnectionInUse(connection.title, [(str(row.id), str(row.title)) for row in users])
        await self._session.execute(delete(connections).where(connections.c.id == connection_id))
        await announce_change(self._session, connection_topic(connection_id))
        notify(self._session, Notice(self._org, "meshgate.connection.deleted", connection_id, _described(connection)))
        return connection

    async def secrets(self, connection_id: str) -> ConnectionSecrets:
        sealed = await self._session.scalar(
            select(connections.c.secrets).where(
                connections.c.organization_id == self._org, connections.c.id == connection_id
            )
        )
        return self._open(connection_id, sealed)

    async def upstream_config(self, connection_id: str) -> UpstreamConfig:
        """Everything needed to reach the upstream, secrets opened (for the in-memory cache only)."""
        row = (
            await self._session.execute(
                select(connections).where(connections.c.organization_id == self._org, connections.c.id == connection_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"connection {connection_id} not found")
        secrets = self._open(row.id, row.secrets)
        refresh_at: float | None = None
        if secrets.oauth is not None:
            # OAuth connections send the stored access token (if any) instead of a static one.
            stored = await UpstreamTokenStore(self._session, self._vault).load(row.id)
            token = None if stored is None else stored[0].access_token
            refresh_at = None if stored is None else stored[0].refresh_at
            secrets = replace(secrets, token=token)
        return UpstreamConfig(
            id=row.id,
            organization_id=row.organization_id,
            title=row.title,
            connection_type=row.connection_type,
            url=row.connection_url,
            status=row.status,
            secrets=secrets,
            connect_timeout_ms=row.connect_timeout_ms,
            call_timeout_ms=row.call_timeout_ms,
            tool_names=frozenset(
                str(tool.get("name")) for tool in split_tools(row.tools)[0][:MAX_TOOLS_PER_CONNECTION]
            ),
            oauth=secrets.oauth is not None,
            oauth_refresh_at=refresh_at,
        )

    def _seal(self, connection_id: str, secrets: ConnectionSecrets) -> str:
        return self._vault.seal(orjson.dumps(secrets.to_json()), context=_context(connection_id))

    def _open(self, connection_id: str, sealed: str | None) -> ConnectionSecrets:
        if not sealed:
            return ConnectionSecrets()
        return ConnectionSecrets.from_json(orjson.loads(self._vault.open(sealed, context=_context(connection_id))))

    def _select(self) -> Any:
        return select(*[c for c in connections.c if c.name != "secrets"]).where(
            connections.c.organization_id == self._org
        )

    async def _connection(self, row: Row[Any]) -> Connection:
        summary: dict[str, Any] = row.secret_summary or {}
        stdio: dict[str, Any] | None = as_dict(summary["stdio"]) if isinstance(summary.get("stdio"), dict) else None
        oauth = as_dict(summary.get("oauth_client")) or None
        if summary.get("stdio") is True or (summary.get("oauth") and "oauth_client" not in summary):
            # Rows summarised before issue 22 said "set" only: show the configuration from the sealed value.
            sealed = await self.secrets(row.id)
            stdio = None if sealed.stdio is None else stdio_shown(sealed.stdio)
            oauth = None if sealed.oauth is None else oauth_shown(sealed.oauth)
        tools, hidden = (None, ()) if row.tools is None else split_tools(row.tools)
        return Connection(
            id=row.id,
            organization_id=row.organization_id,
            title=row.title,
            description=row.description,
            icon=row.icon,
            connection_type=row.connection_type,
            connection_url=row.connection_url,
            token_set=bool(summary.get("token")),
            header_names=list(summary.get("headers") or []),
            stdio=stdio,
            configuration_state_set=bool(summary.get("configuration_state")),
            oauth_enabled=bool(summary.get("oauth")),
            oauth_client=oauth,
            configuration_scopes=row.configuration_scopes,
            metadata=row.metadata,
            status=row.status,
            status_reason=row.status_reason,
            server_info=row.server_info,
            instructions=row.instructions,
            tools=tools,
            hidden_tools=hidden,
            connect_timeout_ms=row.connect_timeout_ms,
            call_timeout_ms=row.call_timeout_ms,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


# Columns whose change is not worth an `updated` event (bookkeeping), and secrets, named as "secrets" only.
_NOT_NOTICED = frozenset({"updated_at", "secret_summary"})


def _described(connection: Connection) -> dict[str, Any]:
    """What an event says about a connection: never a secret."""
    return {
        "id": connection.id,
        "title": connection.title,
        "connectionType": connection.connection_type,
        "status": connection.status,
    }
