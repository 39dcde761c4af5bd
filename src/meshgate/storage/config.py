"""Which store an organization uses: its own S3-compatible bucket, or (no settings) the local directory.

Owners and admins set, read and clear the settings; the secret access key is sealed in the vault, bound to
the organization, and no read returns it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import Principal
from meshgate.db.rows import utc_now
from meshgate.db.tables import object_storage_settings as settings_table
from meshgate.errors import InvalidInput, PermissionDenied
from meshgate.storage.s3 import S3Config
from meshgate.vault import Vault

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_ACCESS_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
MAX_SECRET = 256


def _context(organization_id: str) -> bytes:
    return f"object-storage:{organization_id}".encode()


def _may_manage(principal: Principal) -> None:
    if not principal.is_admin:
        raise PermissionDenied("only owners and admins configure the organization's object storage")


def checked_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(endpoint) > 2048:
        raise InvalidInput(
            "endpoint must be an http:// or https:// URL with a host, e.g. https://s3.eu-west-1.amazonaws.com"
        )
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise InvalidInput(
            "endpoint must be only scheme, host and port: no path, user name, password, query or fragment"
        )
    return endpoint.rstrip("/")


def _checked(bucket: str, region: str, access_key_id: str) -> None:
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidInput(f"bucket {bucket[:80]!r} is not an S3 bucket name (3-63 of a-z, 0-9, '.', '-')")
    if not _REGION.match(region):
        raise InvalidInput(f"region {region[:80]!r} must be 1-64 of a-z, 0-9 and '-', e.g. us-east-1")
    if not _ACCESS_KEY.match(access_key_id):
        raise InvalidInput("accessKeyId must be 1-128 printable characters without spaces")


def _checked_secret(secret: str) -> str:
    if not 1 <= len(secret) <= MAX_SECRET or not secret.isprintable() or secret.strip() != secret:
        raise InvalidInput(f"secretAccessKey must be 1-{MAX_SECRET} printable characters")
    return secret


class StorageSettingsService:
    def __init__(self, session: AsyncSession, organization_id: str, vault: Vault) -> None:
        self._session = session
        self._org = organization_id
        self._vault = vault

    async def get(self, principal: Principal) -> dict[str, Any]:
        _may_manage(principal)
        return _shown(await self._row())

    async def set(
        self,
        principal: Principal,
        *,
        endpoint: str,
        bucket: str,
        region: str,
        access_key_id: str,
        secret_access_key: str | None,
        path_style: bool,
    ) -> S3Config:
        """Check the values and return the config to try; `save` stores it (after the caller tried it)."""
        _may_manage(principal)
        url = checked_endpoint(endpoint)
        _checked(bucket, region, access_key_id)
        if secret_access_key is None:
            current = await self.opened()
            if current is None:
                raise InvalidInput("secretAccessKey is required when the organization has no store configured yet")
            secret = current.secret_access_key
        else:
            secret = _checked_secret(secret_access_key)
        return S3Config(url, bucket, region, access_key_id, secret, path_style)

    async def save(self, principal: Principal, config: S3Config) -> dict[str, Any]:
        _may_manage(principal)
        now = utc_now()
        values: dict[str, Any] = {
            "endpoint": config.endpoint,
            "bucket": config.bucket,
            "region": config.region,
            "access_key_id": config.access_key_id,
            "secret": self._vault.seal(config.secret_access_key.encode(), context=_context(self._org)),
            "path_style": config.path_style,
            "updated_by": principal.user_id,
            "updated_at": now,
        }
        if await self._row() is None:
            await self._session.execute(
                insert(settings_table).values(organization_id=self._org, created_at=now, **values)
            )
        else:
            await self._session.execute(
                update(settings_table).where(settings_table.c.organization_id == self._org).values(**values)
            )
        return _shown(await self._row())

    async def clear(self, principal: Principal) -> dict[str, Any]:
        _may_manage(principal)
        await self._session.execute(delete(settings_table).where(settings_table.c.organization_id == self._org))
        return _shown(None)

    async def opened(self) -> S3Config | None:
        """The organization's store with its secret opened (for the object service; no caller check)."""
        row = await self._row()
        if row is None:
            return None
        secret = self._vault.open(row.secret, context=_context(self._org)).decode()
        return S3Config(row.endpoint, row.bucket, row.region, row.access_key_id, secret, bool(row.path_style))

    async def _row(self) -> Row[Any] | None:
        query = select(settings_table).where(settings_table.c.organization_id == self._org)
        return (await self._session.execute(query)).first()


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _shown(row: Row[Any] | None) -> dict[str, Any]:
    if row is None:
        return {"backend": "local", "configured": False}
    return {
        "backend": "s3",
        "configured": True,
        "endpoint": row.endpoint,
        "bucket": row.bucket,
        "region": row.region,
        "accessKeyId": row.access_key_id,
        "secretAccessKeySet": True,
        "pathStyle": bool(row.path_style),
        "updatedBy": row.updated_by,
        "updatedAt": _iso(row.updated_at),
    }
