"""Bearer credential (API key or OAuth access token) → `Principal`, cached in memory and dropped on any identity change.

The cache is the reason an authenticated request costs no database query in the steady state.
Correctness under change: every identity change is announced (see `meshgate.db.database`), which
clears the cache here and, on PostgreSQL, in every other process. A generation counter keeps a
lookup that raced with a change from caching the stale answer.

OAuth access tokens are checked by an `AccessTokenVerifier` passed in (the authorization server in
`meshgate.oauth.access_tokens` is one); identity defines the seam so that it does not depend on oauth.
A connection token (`connection_tokens.py`) makes the connection itself the principal; its principals are
cached by token and dropped when the connection changes (topic `connection:<id>`) or on any identity change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select

from meshgate.access import PermissionMap, Principal, connection_principal
from meshgate.db.database import EVERYTHING, Database
from meshgate.db.tables import api_keys, connection_keys, connections, members, oauth_grants, organizations
from meshgate.errors import Unauthenticated
from meshgate.identity._policy import role_map
from meshgate.identity.connection_tokens import ConnectionClaims, ConnectionTokens
from meshgate.identity.service import CONNECTION_KEY_PREFIX, IDENTITY, ApiKeyService, hash_key

log = logging.getLogger(__name__)

MAX_CACHED = 10_000
_CONNECTION_TOPIC = "connection:"  # what the connection registry announces when a connection changes


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says: whose it is, under which grant, for which endpoint, until when."""

    user_id: str
    organization_id: str
    grant_id: str
    audience: str
    scope: str | None
    expires_at: int  # epoch seconds


class AccessTokenVerifier(Protocol):
    """Checks OAuth access tokens (like the MCP SDK's `TokenVerifier`); the authenticator looks up the grant."""

    def recognises(self, token: str) -> bool:
        """Whether the bearer value has the shape of an access token rather than an API key (no verification)."""
        ...

    def verify(self, token: str) -> AccessClaims:
        """The claims of a genuine, unexpired token; `Unauthenticated` for anything else."""
        ...


class Authenticator:
    """Resolves API keys and OAuth access tokens to principals."""

    def __init__(
        self,
        db: Database,
        *,
        usage_flush_seconds: float = 10.0,
        access_tokens: AccessTokenVerifier | None = None,
        clock: Callable[[], float] = time.time,
        connection_tokens: ConnectionTokens | None = None,
    ) -> None:
        self._db = db
        self._clock = clock  # epoch seconds: when credentials expire
        self._access_tokens = access_tokens
        self._connection_tokens = connection_tokens
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._connections: dict[str, Principal] = {}  # connection token → the connection acting for itself
        self._generation = 0
        self._usage: dict[str, float] = {}  # key id → epoch seconds of its last use (a datetime only when written)
        self._flush_seconds = usage_flush_seconds
        self._flusher: asyncio.Task[None] | None = None
        db.subscribe(self._on_change)

    async def authenticate(self, token: str) -> Principal:
        """The principal for a bearer token, or `Unauthenticated`."""
        if self._connection_tokens is not None and self._connection_tokens.recognises(token):
            return await self._connection(token, self._connection_tokens.verify(token))
        digest = hash_key(token)
        principal = self._cache.get(digest)
        if principal is None:
            generation = self._generation
            principal = await self._load(digest, token)
            if generation == self._generation:
                self._remember(digest, principal)
        if principal.expires_at is not None and principal.expires_at.timestamp() <= self._clock():
            self._cache.pop(digest, None)
            if principal.grant_id is not None:
                raise Unauthenticated("the access token has expired; refresh it or log in again")
            if principal.connection_id is not None:
                raise Unauthenticated("the connection key has expired")
            raise Unauthenticated("the API key has expired")
        if principal.api_key_id is not None:
            self._usage[principal.api_key_id] = time.time()
        return principal

    def clear(self) -> None:
        self._generation += 1
        self._cache.clear()
        self._connections.clear()

    def start(self) -> None:
        """Begin writing key last-used times in the background."""
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await self.flush_usage()

    async def flush_usage(self) -> None:
        """Write collected last-used times now."""
        if not self._usage:
            return
        pending, self._usage = self._usage, {}
        by_org: dict[str, dict[str, datetime]] = {}
        try:
            async with self._db.transaction() as session:
                rows = await session.execute(
                    select(api_keys.c.id, api_keys.c.organization_id).where(api_keys.c.id.in_(list(pending)))
                )
                for key_id, org_id in rows:
                    by_org.setdefault(org_id, {})[key_id] = datetime.fromtimestamp(pending[key_id], UTC)
                for org_id, used in by_org.items():
                    await ApiKeyService(session, org_id).record_use(used)
        except BaseException:
            # Keep the times for the next attempt (newer uses recorded meanwhile win).
            self._usage = {**pending, **self._usage}
            raise

    def _on_change(self, topic: str) -> None:
        if topic in (IDENTITY, EVERYTHING):
            self.clear()
        elif topic.startswith(_CONNECTION_TOPIC):
            changed = topic.removeprefix(_CONNECTION_TOPIC)
            self._generation += 1
            for token in [token for token, found in self._connections.items() if found.connection_id == changed]:
                del self._connections[token]
            for digest in [digest for digest, found in self._cache.items() if found.connection_id == changed]:
                del self._cache[digest]

    def _remember(self, digest: str, principal: Principal) -> None:
        self._cache[digest] = principal
        if len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)

    async def _connection(self, token: str, claims: ConnectionClaims) -> Principal:
        """The connection of a verified connection token, while it exists and is not switched off."""
        found = self._connections.get(token)
        if found is not None:
            return found
        generation = self._generation
        async with self._db.transaction() as session:
            row = (
                await session.execute(
                    select(connections.c.status, organizations.c.slug)
                    .join(organizations, organizations.c.id == connections.c.organization_id)
                    .where(
                        connections.c.id == claims.connection_id,
                        connections.c.organization_id == claims.organization_id,
                    )
                )
            ).first()
        if row is None:
            raise Unauthenticated("the connection of this connection token no longer exists")
        if row.status == "inactive":
            raise Unauthenticated("the connection of this connection token is inactive")
        expires = datetime.fromtimestamp(claims.expires_at, UTC)
        found = connection_principal(claims.connection_id, claims.organization_id, str(row.slug), expires)
        if generation == self._generation:
            if len(self._connections) >= MAX_CACHED:
                self._connections.clear()
            self._connections[token] = found
        return found

    async def _load(self, digest: str, token: str) -> Principal:
        if self._access_tokens is not None and self._access_tokens.recognises(token):
            return await self._load_grant(self._access_tokens.verify(token))
        if token.startswith(CONNECTION_KEY_PREFIX):
            return await self._load_connection_key(digest)
        query = (
            select(
                api_keys.c.id,
                api_keys.c.user_id,
                api_keys.c.organization_id,
                api_keys.c.permissions,
                api_keys.c.expires_at,
                organizations.c.slug,
                members.c.role,
            )
            .join(organizations, organizations.c.id == api_keys.c.organization_id)
            .join(
                members,
                (members.c.organization_id == api_keys.c.organization_id) & (members.c.user_id == api_keys.c.user_id),
            )
            .where(api_keys.c.key_hash == digest)
        )
        async with self._db.transaction() as session:
            row = (await session.execute(query)).first()
            if row is None:
                raise Unauthenticated("the API key is not valid")
            grant = await role_map(session, row.organization_id, row.role)
        grants: tuple[PermissionMap, ...] = (grant,) if row.permissions is None else (grant, row.permissions)
        return Principal(
            user_id=row.user_id,
            organization_id=row.organization_id,
            organization_slug=row.slug,
            role=row.role,
            grants=grants,
            api_key_id=row.id,
            expires_at=row.expires_at,
        )

    async def _load_connection_key(self, digest: str) -> Principal:
        query = (
            select(
                connection_keys.c.connection_id,
                connection_keys.c.organization_id,
                connection_keys.c.expires_at,
                connections.c.status,
                organizations.c.slug,
            )
            .join(connections, connections.c.id == connection_keys.c.connection_id)
            .join(organizations, organizations.c.id == connection_keys.c.organization_id)
            .where(connection_keys.c.key_hash == digest)
        )
        async with self._db.transaction() as session:
            row = (await session.execute(query)).first()
        if row is None:
            raise Unauthenticated("the connection key is not valid")
        if row.status == "inactive":
            raise Unauthenticated("the connection of this connection key is inactive")
        return connection_principal(row.connection_id, row.organization_id, str(row.slug), row.expires_at)

    async def _load_grant(self, claims: AccessClaims) -> Principal:
        query = (
            select(
                oauth_grants.c.permissions,
                oauth_grants.c.revoked_at,
                oauth_grants.c.client_id,
                organizations.c.slug,
                members.c.role,
            )
            .join(organizations, organizations.c.id == oauth_grants.c.organization_id)
            .join(
                members,
                (members.c.organization_id == oauth_grants.c.organization_id)
                & (members.c.user_id == oauth_grants.c.user_id),
            )
            .where(
                oauth_grants.c.id == claims.grant_id,
                oauth_grants.c.user_id == claims.user_id,
                oauth_grants.c.organization_id == claims.organization_id,
            )
        )
        async with self._db.transaction() as session:
            row = (await session.execute(query)).first()
            if row is None or row.revoked_at is not None:
                raise Unauthenticated("the access token has been revoked")
            grant = await role_map(session, claims.organization_id, row.role)
        grants: tuple[PermissionMap, ...] = (grant,) if row.permissions is None else (grant, row.permissions)
        return Principal(
            user_id=claims.user_id,
            organization_id=claims.organization_id,
            organization_slug=row.slug,
            role=row.role,
            grants=grants,
            expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
            grant_id=claims.grant_id,
            client_id=row.client_id,
            audience=claims.audience,
        )

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush_usage()
            except Exception:
                log.exception("could not record API key use; will retry")
