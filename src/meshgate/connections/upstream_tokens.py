"""Tokens meshgate holds for OAuth-protected upstream servers, sealed in the vault per connection.

One row per connection: the access and refresh tokens plus what refreshing needs (token endpoint,
client id and secret, resource), sealed as one value bound to the connection id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.tables import connection_oauth
from meshgate.vault import Vault

REFRESH_MARGIN_S = 60.0


@dataclass(frozen=True, slots=True)
class UpstreamTokens:
    access_token: str
    refresh_token: str | None
    expires_at: float | None  # epoch seconds
    issued_at: float
    token_endpoint: str
    client_id: str
    client_secret: str | None
    auth_method: str
    resource: str
    issuer: str

    @property
    def refresh_at(self) -> float | None:
        """When to refresh: a quarter of the lifetime before expiry, at most a minute, at least a second."""
        if self.expires_at is None or self.refresh_token is None:
            return None
        margin = min(REFRESH_MARGIN_S, max(1.0, (self.expires_at - self.issued_at) / 4))
        return self.expires_at - margin


def _context(connection_id: str) -> bytes:
    return f"connection-oauth:{connection_id}".encode()


class UpstreamTokenStore:
    def __init__(self, session: AsyncSession, vault: Vault) -> None:
        self._session = session
        self._vault = vault

    async def load(self, connection_id: str, *, lock: bool = False) -> tuple[UpstreamTokens, datetime] | None:
        query = select(connection_oauth).where(connection_oauth.c.connection_id == connection_id)
        if lock:
            query = query.with_for_update()
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        data: dict[str, Any] = orjson.loads(self._vault.open(row.sealed, context=_context(connection_id)))
        return UpstreamTokens(**data), row.updated_at

    async def save(self, connection_id: str, tokens: UpstreamTokens) -> None:
        sealed = self._vault.seal(orjson.dumps(asdict(tokens)), context=_context(connection_id))
        await self.forget(connection_id)
        await self._session.execute(
            connection_oauth.insert().values(
                connection_id=connection_id,
                issuer=tokens.issuer,
                sealed=sealed,
                expires_at=None if tokens.expires_at is None else datetime.fromtimestamp(tokens.expires_at, UTC),
                updated_at=datetime.now(UTC),
            )
        )

    async def forget(self, connection_id: str) -> None:
        await self._session.execute(delete(connection_oauth).where(connection_oauth.c.connection_id == connection_id))
