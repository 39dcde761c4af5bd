"""The objects of one organization: listed, described, deleted, and reached through short-lived signed URLs.

Every key a caller gives is checked (`meshgate.storage.models.checked_key`) and placed under the organization's
prefix `<organization id>/`; every key shown has that prefix taken off. Another organization's objects are not
reachable by any key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import Principal
from meshgate.errors import NotFound
from meshgate.storage.backend import ObjectStore
from meshgate.storage.config import StorageSettingsService
from meshgate.storage.models import (
    ObjectInfo,
    checked_content_type,
    checked_expires_in,
    checked_key,
    checked_keys,
    checked_limit,
    checked_prefix,
)
from meshgate.storage.stores import ObjectStores
from meshgate.vault import Vault


class ObjectStorageService:
    def __init__(self, session: AsyncSession, organization_id: str, vault: Vault, stores: ObjectStores) -> None:
        self._settings = StorageSettingsService(session, organization_id, vault)
        self._org = organization_id
        self._root = f"{organization_id}/"
        self._stores = stores

    async def list(
        self, principal: Principal, prefix: str | None, cursor: str | None, limit: int | None
    ) -> dict[str, Any]:
        self._may_use(principal)
        wanted = checked_prefix(prefix)
        after = None if cursor is None else self._root + checked_key(cursor)
        store = await self._store()
        page = await store.list(self._root + wanted, after, checked_limit(limit))
        cursor = None if page.next_cursor is None else page.next_cursor.removeprefix(self._root)
        # `objects`, `nextContinuationToken` and `isTruncated` as MCP Mesh's object storage binding names them
        return {
            "objects": [self._shown(item) for item in page.items],
            "nextCursor": cursor,
            "nextContinuationToken": cursor,
            "isTruncated": cursor is not None,
            "backend": store.kind,
        }

    async def metadata(self, principal: Principal, key: str) -> dict[str, Any]:
        self._may_use(principal)
        found = await (await self._store()).head(self._root + checked_key(key))
        if found is None:
            raise NotFound(f"object {key[:100]!r} not found")
        return self._shown(found)

    async def presigned_get(self, principal: Principal, key: str, expires_in: int | None) -> dict[str, Any]:
        self._may_use(principal)
        seconds = checked_expires_in(expires_in)
        url = await (await self._store()).presign_get(self._root + checked_key(key), seconds)
        return {"key": key, "method": "GET", "url": url, **self._expiry(seconds)}

    async def presigned_put(
        self, principal: Principal, key: str, content_type: str | None, expires_in: int | None
    ) -> dict[str, Any]:
        self._may_use(principal)
        seconds, media = checked_expires_in(expires_in), checked_content_type(content_type)
        url = await (await self._store()).presign_put(self._root + checked_key(key), media, seconds)
        headers = {} if media is None else {"Content-Type": media}
        return {"key": key, "method": "PUT", "url": url, "headers": headers, **self._expiry(seconds)}

    async def delete(self, principal: Principal, keys: list[str]) -> dict[str, Any]:
        """`{deleted: [key], errors: [{key, message}]}`; a key that does not exist counts as deleted (as in S3)."""
        self._may_use(principal)
        wanted = checked_keys(keys)
        failed = await (await self._store()).delete([self._root + key for key in wanted])
        errors = [{"key": key.removeprefix(self._root), "message": message} for key, message in failed.items()]
        failed_keys = {error["key"] for error in errors}
        return {"deleted": [key for key in wanted if key not in failed_keys], "errors": errors}

    def _may_use(self, principal: Principal) -> None:
        if principal.organization_id != self._org:  # tools build the service for the caller's own organization
            raise NotFound("organization not found")

    async def _store(self) -> ObjectStore:
        return self._stores.for_organization(self._org, await self._settings.opened())

    def _shown(self, item: ObjectInfo) -> dict[str, Any]:
        return {**item.to_dict(), "key": item.key.removeprefix(self._root), "contentLength": item.size}

    def _expiry(self, seconds: int) -> dict[str, Any]:
        at = datetime.fromtimestamp(int(self._stores.clock()) + seconds, UTC)
        return {"expiresIn": seconds, "expiresAt": at.isoformat().replace("+00:00", "Z")}
