"""API keys: 256 random bits, stored only as a SHA-256 hash, shown once."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import parse_permission_map
from meshgate.db.database import Notice, announce_change, notify
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import api_keys, oauth_refresh_tokens
from meshgate.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from meshgate.identity import _rows
from meshgate.identity._organizations import IDENTITY
from meshgate.identity.models import MAX_API_KEYS_PER_ORG, ApiKey
from meshgate.identity.validation import clean_name

KEY_PREFIX = "mg_"
MIN_EXPIRY_SECONDS = 300
MAX_EXPIRY_SECONDS = 10 * 365 * 24 * 3600
_VISIBLE = len(KEY_PREFIX) + 8


def hash_key(value: str) -> str:
    """The stored form of a key. A plain hash suffices: keys carry 256 random bits, not a guessable password."""
    return hashlib.sha256(value.encode()).hexdigest()


class ApiKeyService:
    """Creates, lists, changes and deletes the API keys of one organization."""

    def __init__(self, session: AsyncSession, organization_id: str) -> None:
        self._session = session
        self._org = organization_id

    async def create(
        self,
        user_id: str,
        name: str,
        *,
        permissions: Any = None,
        expires_in: int | None = None,
        grant_id: str | None = None,
        created_by_key: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its value; the value is not stored and cannot be shown again.

        A key created through an OAuth grant (`grant_id`, or `created_by_key` naming a key that was) belongs
        to that grant: it expires no later than the grant could be renewed to (its live refresh token) and
        is deleted when the grant is revoked."""
        key_name = clean_name(name, field="key name")
        permission_map = None if permissions is None else parse_permission_map(permissions)
        expires_at = self.expiry(expires_in)
        if grant_id is None and created_by_key is not None:
            grant_id = await self._session.scalar(select(api_keys.c.grant_id).where(api_keys.c.id == created_by_key))
        if grant_id is not None:
            horizon = await self._grant_horizon(grant_id)
            if horizon is None:
                raise PermissionDenied("the OAuth grant behind this credential can no longer be renewed")
            expires_at = horizon if expires_at is None else min(expires_at, horizon)
        count = await self._session.scalar(
            select(func.count()).select_from(api_keys).where(api_keys.c.organization_id == self._org)
        )
        if int(count or 0) >= MAX_API_KEYS_PER_ORG:
            raise Conflict(f"an organization can have at most {MAX_API_KEYS_PER_ORG} API keys; delete unused ones")
        value = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = new_id()
        await self._session.execute(
            insert(api_keys).values(
                id=key_id,
                organization_id=self._org,
                user_id=user_id,
                name=key_name,
                prefix=value[:_VISIBLE],
                key_hash=hash_key(value),
                permissions=permission_map,
                expires_at=expires_at,
                last_used_at=None,
                created_at=utc_now(),
                grant_id=grant_id,
            )
        )
        key = await self.get(key_id)
        notify(self._session, Notice(self._org, "meshgate.api_key.created", key_id, _described(key)))
        return key, value

    async def _grant_horizon(self, grant_id: str) -> datetime | None:
        """Until when a grant can live without a new consent: the expiry of its unused refresh token."""
        horizon: datetime | None = await self._session.scalar(
            select(func.max(oauth_refresh_tokens.c.expires_at)).where(
                oauth_refresh_tokens.c.grant_id == grant_id, oauth_refresh_tokens.c.used_at.is_(None)
            )
        )
        return horizon if horizon is not None and horizon > utc_now() else None

    async def list(self, *, user_id: str | None = None) -> list[ApiKey]:
        query = select(api_keys).where(api_keys.c.organization_id == self._org)
        if user_id is not None:
            query = query.where(api_keys.c.user_id == user_id)
        rows = await self._session.execute(query.order_by(api_keys.c.created_at, api_keys.c.id))
        return [_rows.api_key(row) for row in rows]

    async def get(self, key_id: str) -> ApiKey:
        query = select(api_keys).where(api_keys.c.organization_id == self._org, api_keys.c.id == key_id)
        row = (await self._session.execute(query)).first()
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        return _rows.api_key(row)

    async def update(self, key_id: str, *, name: str | None = None, permissions: Any = None) -> ApiKey:
        await self.get(key_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = clean_name(name, field="key name")
        if permissions is not None:
            values["permissions"] = parse_permission_map(permissions)
        if values:
            await self._session.execute(update(api_keys).where(api_keys.c.id == key_id).values(values))
            await announce_change(self._session, IDENTITY)
        return await self.get(key_id)

    async def delete(self, key_id: str) -> ApiKey:
        key = await self.get(key_id)
        await self._session.execute(delete(api_keys).where(api_keys.c.id == key_id))
        await announce_change(self._session, IDENTITY)
        notify(self._session, Notice(self._org, "meshgate.api_key.revoked", key_id, _described(key)))
        return key

    async def record_use(self, used: Mapping[str, datetime]) -> None:
        """Store last-used times collected in memory (written in batches, off the request path)."""
        for key_id, when in used.items():
            await self._session.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=when))

    @staticmethod
    def expiry(expires_in: int | None) -> datetime | None:
        """When a key given `expiresIn` seconds expires (None: never), or a refusal naming the allowed range."""
        if expires_in is None:
            return None
        if not MIN_EXPIRY_SECONDS <= expires_in <= MAX_EXPIRY_SECONDS:
            raise InvalidInput(
                f"expiresIn is {expires_in} seconds; it must be between {MIN_EXPIRY_SECONDS} and {MAX_EXPIRY_SECONDS}"
            )
        return utc_now() + timedelta(seconds=expires_in)


def _described(key: ApiKey) -> dict[str, Any]:
    """What an event says about a key: whose it is and its name, never its value or hash."""
    return {"id": key.id, "name": key.name, "userId": key.user_id, "prefix": key.prefix}
