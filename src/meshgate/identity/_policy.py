"""Who may hand out which role or map: nobody grants more than they hold themselves."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import FULL_ACCESS, PermissionMap, Principal
from meshgate.db.tables import organizations, roles
from meshgate.errors import NotFound, PermissionDenied
from meshgate.identity.models import DEFAULT_MEMBER_PERMISSIONS


async def role_map(session: AsyncSession, organization_id: str, role: str) -> PermissionMap:
    """The permission map a role holds in an organization right now."""
    if role in ("owner", "admin"):
        return FULL_ACCESS
    if role == "member":
        settings: dict[str, Any] | None = await session.scalar(
            select(organizations.c.settings).where(organizations.c.id == organization_id)
        )
        return (settings or {}).get("member_permissions", DEFAULT_MEMBER_PERMISSIONS)
    found = await session.scalar(
        select(roles.c.permissions).where(roles.c.organization_id == organization_id, roles.c.name == role)
    )
    return found or {}


def require_covers(principal: Principal, wanted: PermissionMap, what: str) -> None:
    if not principal.covers(wanted):
        raise PermissionDenied(f"{what} would grant permissions you do not hold yourself")


async def require_may_grant_role(session: AsyncSession, principal: Principal, role: str) -> None:
    """Owners alone hand out or take away `owner`; any other role needs the caller to hold its map."""
    if role == "owner" and principal.role != "owner":
        raise PermissionDenied("only an owner can give or take away the owner role")
    require_covers(principal, await role_map(session, principal.organization_id, role), f"role {role!r}")


def require_same_org(principal: Principal, organization_id: str | None, kind: str = "organization") -> str:
    """Ids of other organizations answer exactly like ids that do not exist."""
    if organization_id is not None and organization_id != principal.organization_id:
        raise NotFound(f"{kind} {organization_id} not found")
    return principal.organization_id
