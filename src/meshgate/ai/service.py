"""The AI provider keys of one organization: created, changed and removed by owners and admins, the key sealed
in the vault and never returned."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import Principal
from meshgate.ai.models import COMPATIBLE, PROVIDERS, OpenedProvider, ProviderKey, clean_provider_name
from meshgate.db.database import announce_change
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import ai_provider_keys
from meshgate.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from meshgate.vault import Vault

AI_TOPIC = "ai"  # change topic: the API's in-memory provider cache forgets the organization's keys
MAX_KEYS = 50
MAX_SECRET = 4096
_UNSET: Any = object()


def _context(key_id: str) -> bytes:
    # Binding the ciphertext to its row: a sealed value copied to another row does not open.
    return f"ai-provider-key:{key_id}".encode()


def _may_manage(principal: Principal) -> None:
    if not principal.is_admin:
        raise PermissionDenied("only owners and admins manage AI provider keys")


def checked_base_url(provider: str, base_url: str | None) -> str | None:
    """A base URL is http(s) with a host and no credentials; `openai-compatible` must have one."""
    if base_url is None:
        if provider == COMPATIBLE:
            raise InvalidInput("an openai-compatible provider needs baseUrl, e.g. http://127.0.0.1:11434/v1 (Ollama)")
        return None
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(base_url) > 2048:
        raise InvalidInput("baseUrl must be an http:// or https:// URL with a host (at most 2048 characters)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput("baseUrl must not carry a user name, password, query or fragment; give the key as apiKey")
    return base_url.rstrip("/")


class ProviderKeyService:
    def __init__(self, session: AsyncSession, organization_id: str, vault: Vault) -> None:
        self._session = session
        self._org = organization_id
        self._vault = vault

    async def create(
        self, principal: Principal, provider: str, name: str | None, api_key: str | None, base_url: str | None
    ) -> ProviderKey:
        _may_manage(principal)
        if provider not in PROVIDERS:
            raise InvalidInput(f"provider {provider[:40]!r} is not supported; use one of {', '.join(PROVIDERS)}")
        key_name = clean_provider_name(name or provider)
        url = checked_base_url(provider, base_url)
        mine = ai_provider_keys.c.organization_id == self._org
        if (
            int(await self._session.scalar(select(func.count()).select_from(ai_provider_keys).where(mine)) or 0)
            >= MAX_KEYS
        ):
            raise Conflict(f"an organization has at most {MAX_KEYS} AI provider keys")
        if await self._session.scalar(select(ai_provider_keys.c.id).where(mine, ai_provider_keys.c.name == key_name)):
            raise Conflict(f"a provider named {key_name!r} exists already; give another name")
        key_id, now = new_id(), utc_now()
        await self._session.execute(
            insert(ai_provider_keys).values(
                id=key_id,
                organization_id=self._org,
                name=key_name,
                provider=provider,
                base_url=url,
                created_by=principal.user_id,
                created_at=now,
                updated_at=now,
                **self._sealed(key_id, api_key),
            )
        )
        await announce_change(self._session, AI_TOPIC)
        return await self.get(principal, key_id)

    async def list(self, principal: Principal) -> list[ProviderKey]:
        _may_manage(principal)
        rows = await self._session.execute(
            select(ai_provider_keys)
            .where(ai_provider_keys.c.organization_id == self._org)
            .order_by(ai_provider_keys.c.name)
        )
        return [_key(row) for row in rows]

    async def get(self, principal: Principal, key_id: str) -> ProviderKey:
        _may_manage(principal)
        return _key(await self._row(key_id))

    async def update(
        self, principal: Principal, key_id: str, *, api_key: str | None = _UNSET, base_url: str | None = _UNSET
    ) -> ProviderKey:
        _may_manage(principal)
        row = await self._row(key_id)
        changes: dict[str, Any] = {"updated_at": utc_now()}
        if api_key is not _UNSET:
            changes.update(self._sealed(key_id, api_key))
        if base_url is not _UNSET:
            changes["base_url"] = checked_base_url(row.provider, base_url)
        await self._session.execute(update(ai_provider_keys).where(ai_provider_keys.c.id == key_id).values(**changes))
        await announce_change(self._session, AI_TOPIC)
        return await self.get(principal, key_id)

    async def delete(self, principal: Principal, key_id: str) -> ProviderKey:
        _may_manage(principal)
        found = _key(await self._row(key_id))
        await self._session.execute(delete(ai_provider_keys).where(ai_provider_keys.c.id == key_id))
        await announce_change(self._session, AI_TOPIC)
        return found

    async def opened(self) -> dict[str, OpenedProvider]:
        """Every provider of the organization with its key opened, by name (for the API's cache; no caller check)."""
        rows = await self._session.execute(
            select(ai_provider_keys).where(ai_provider_keys.c.organization_id == self._org)
        )
        return {
            row.name: OpenedProvider(
                _key(row),
                None if row.secret is None else self._vault.open(row.secret, context=_context(row.id)).decode(),
            )
            for row in rows
        }

    def _sealed(self, key_id: str, api_key: str | None) -> dict[str, Any]:
        if api_key is None or api_key == "":
            return {"secret": None, "hint": None}
        if len(api_key) > MAX_SECRET or not api_key.isprintable():
            raise InvalidInput(f"apiKey must be printable text of at most {MAX_SECRET} characters")
        return {
            "secret": self._vault.seal(api_key.encode(), context=_context(key_id)),
            "hint": api_key[-4:] if len(api_key) >= 12 else None,  # short keys: no hint, it would be most of them
        }

    async def _row(self, key_id: str) -> Row[Any]:
        row = (
            await self._session.execute(
                select(ai_provider_keys).where(
                    ai_provider_keys.c.organization_id == self._org, ai_provider_keys.c.id == key_id
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"AI provider key {key_id[:80]} not found")
        return row


def _key(row: Row[Any]) -> ProviderKey:
    return ProviderKey(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        provider=row.provider,
        base_url=row.base_url,
        hint=row.hint,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
