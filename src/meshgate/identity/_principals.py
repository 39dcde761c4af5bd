"""The principal of a person logged in through the browser, acting in one of their organizations."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import Principal
from meshgate.db.tables import members, organizations
from meshgate.errors import NotFound
from meshgate.identity._policy import role_map


async def member_principal(session: AsyncSession, user_id: str, organization_slug: str) -> Principal:
    """What the user may do in the organization now (their role's map, no narrowing credential).

    An organization the user does not belong to answers like one that does not exist."""
    row = (
        await session.execute(
            select(organizations.c.id, organizations.c.slug, members.c.role)
            .join(members, members.c.organization_id == organizations.c.id)
            .where(organizations.c.slug == organization_slug, members.c.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"organization {organization_slug[:100]} not found")
    grant = await role_map(session, row.id, row.role)
    return Principal(
        user_id=user_id, organization_id=row.id, organization_slug=row.slug, role=row.role, grants=(grant,)
    )
