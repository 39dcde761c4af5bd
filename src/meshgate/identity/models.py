"""Identity values as services return them (plain, immutable, no database session attached)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshgate.access import SELF, PermissionMap

BUILTIN_ROLES = ("owner", "admin", "member")
MAX_CUSTOM_ROLES = 500
MAX_API_KEYS_PER_ORG = 5000

DEFAULT_MEMBER_PERMISSIONS: PermissionMap = {
    SELF: (
        "ORGANIZATION_GET",
        "ORGANIZATION_LIST",
        "COLLECTION_CONNECTIONS_LIST",
        # A person may see and revoke the OAuth apps they authorized themselves.
        "OAUTH_GRANT_LIST",
        "OAUTH_GRANT_REVOKE",
        # ... and their own browser sessions.
        "USER_SESSION_LIST",
        "USER_SESSION_REVOKE",
    ),
}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str
    created_at: datetime
    email_verified: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "emailVerified": self.email_verified,
            "createdAt": _iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str
    slug: str
    description: str | None
    settings: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "slug": self.slug,
            "description": self.description,
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    organization_id: str
    user_id: str
    email: str
    name: str
    role: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organizationId": self.organization_id,
            "userId": self.user_id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "createdAt": _iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Role:
    id: str
    organization_id: str
    name: str
    description: str | None
    permissions: Mapping[str, list[str]]
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organizationId": self.organization_id,
            "name": self.name,
            "description": self.description,
            "permissions": dict(self.permissions),
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    organization_id: str
    user_id: str
    name: str
    prefix: str
    permissions: Mapping[str, list[str]] | None
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organizationId": self.organization_id,
            "userId": self.user_id,
            "name": self.name,
            "prefix": self.prefix,
            "permissions": None if self.permissions is None else dict(self.permissions),
            "expiresAt": _iso(self.expires_at),
            "lastUsedAt": _iso(self.last_used_at),
            "createdAt": _iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Invitation:
    """A link that adds whoever opens it (or only `email`, or only the user `user_id`) to an organization."""

    id: str
    organization_id: str
    role: str
    email: str | None
    user_id: str | None
    created_by: str | None
    created_at: datetime
    expires_at: datetime
    emailed_at: datetime | None = None  # when its link was last mailed to `email` (then shown to nobody)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organizationId": self.organization_id,
            "role": self.role,
            "email": self.email,
            "userId": self.user_id,
            "createdBy": self.created_by,
            "createdAt": _iso(self.created_at),
            "expiresAt": _iso(self.expires_at),
            "delivery": "email" if self.emailed_at is not None else "link",
            "emailedAt": _iso(self.emailed_at),
        }
