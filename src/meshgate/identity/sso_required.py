"""Whether one of a person's organizations requires single sign-on (which turns passwords and links off)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.tables import members, organization_sso, organizations
from meshgate.errors import PermissionDenied


async def require_no_sso(session: AsyncSession, user_id: str, method: str) -> None:
    """Raise unless every organization of the user allows signing in with `method` (not only SSO)."""
    row = (
        await session.execute(
            select(organizations.c.name, organizations.c.slug)
            .join(members, members.c.organization_id == organizations.c.id)
            .join(organization_sso, organization_sso.c.organization_id == organizations.c.id)
            .where(members.c.user_id == user_id, organization_sso.c.sso_required.is_(True))
            .order_by(organizations.c.slug)
            .limit(1)
        )
    ).first()
    if row is not None:
        raise PermissionDenied(
            f"{row.name} requires single sign-on, so {method} is turned off for its members: "
            f"sign in with the organization {row.slug} under single sign-on"
        )
