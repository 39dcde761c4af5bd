"""Connection keys: a long-lived credential, created by an owner or admin, with which an upstream acts as its
own connection (the same principal as a connection token: the event tools only). 256 random bits, stored only
as a SHA-256 hash, shown once; deleting a key (or its connection) stops it at once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import Principal
from meshgate.db.database import announce_change
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import connection_keys, connections
from meshgate.errors import Conflict, NotFound, PermissionDenied
from meshgate.identity._api_keys import ApiKeyService, hash_key
from meshgate.identity._organizations import IDENTITY
from meshgate.identity.validation import clean_name

CONNECTION_KEY_PREFIX = "mgck_"  # API keys are mg_, connection tokens mgc_
MAX_KEYS_PER_CONNECTION = 20
_VISIBLE = len(CONNECTION_KEY_PREFIX) + 8


@dataclass(frozen=True, slots=True)
class ConnectionKey:
    id: str
    organization_id: str
    connection_id: str
    name: str
    prefix: str
    created_by: str
    expires_at: datetime | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organizationId": self.organization_id,
            "connectionId": self.connection_id,
            "name": self.name,
            "prefix": self.prefix,
            "createdBy": self.created_by,
            "expiresAt": None if self.expires_at is None else self.expires_at.isoformat().replace("+00:00", "Z"),
            "createdAt": self.created_at.isoformat().replace("+00:00", "Z"),
        }


class ConnectionKeyService:
    """The connection keys of one organization; only owners and admins create, list or delete them."""

    def __init__(self, session: AsyncSession, organization_id: str) -> None:
        self._session = session
        self._org = organization_id

    async def create(
        self, principal: Principal, connection_id: str, name: str, expires_in: int | None = None
    ) -> tuple[ConnectionKey, str]:
        """A new key for the connection and its value (not stored, not shown again)."""
        _may_manage(principal)
        key_name = clean_name(name, field="key name")
        expires_at = ApiKeyService.expiry(expires_in)
        mine = (connections.c.organization_id == self._org) & (connections.c.id == connection_id)
        found = await self._session.scalar(select(connections.c.id).where(mine))
        if found is None:
            raise NotFound(f"connection {connection_id[:80]} not found")
        count = await self._session.scalar(
            select(func.count()).select_from(connection_keys).where(connection_keys.c.connection_id == connection_id)
        )
        if int(count or 0) >= MAX_KEYS_PER_CONNECTION:
            raise Conflict(f"a connection has at most {MAX_KEYS_PER_CONNECTION} keys; delete unused ones")
        value = CONNECTION_KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = new_id()
        await self._session.execute(
            insert(connection_keys).values(
                id=key_id,
                organization_id=self._org,
                connection_id=connection_id,
                name=key_name,
                prefix=value[:_VISIBLE],
                key_hash=hash_key(value),
                created_by=principal.user_id,
                expires_at=expires_at,
                created_at=utc_now(),
            )
        )
        return await self.get(principal, key_id), value

    async def list(self, principal: Principal, connection_id: str | None = None) -> list[ConnectionKey]:
        _may_manage(principal)
        query = select(connection_keys).where(connection_keys.c.organization_id == self._org)
        if connection_id is not None:
            query = query.where(connection_keys.c.connection_id == connection_id)
        rows = await self._session.execute(query.order_by(connection_keys.c.created_at, connection_keys.c.id))
        return [_key(row) for row in rows]

    async def get(self, principal: Principal, key_id: str) -> ConnectionKey:
        _may_manage(principal)
        row = (
            await self._session.execute(
                select(connection_keys).where(
                    connection_keys.c.organization_id == self._org, connection_keys.c.id == key_id
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"connection key {key_id[:80]} not found")
        return _key(row)

    async def delete(self, principal: Principal, key_id: str) -> ConnectionKey:
        """Revoke a key: every process forgets it (an identity change)."""
        key = await self.get(principal, key_id)
        await self._session.execute(delete(connection_keys).where(connection_keys.c.id == key_id))
        await announce_change(self._session, IDENTITY)
        return key


def _may_manage(principal: Principal) -> None:
    if not principal.is_admin:
        raise PermissionDenied("connection keys are created, listed and deleted by owners and admins")


def _key(row: Row[Any]) -> ConnectionKey:
    return ConnectionKey(
        id=row.id,
        organization_id=row.organization_id,
        connection_id=row.connection_id,
        name=row.name,
        prefix=row.prefix,
        created_by=row.created_by,
        expires_at=row.expires_at,
        created_at=row.created_at,
    )
