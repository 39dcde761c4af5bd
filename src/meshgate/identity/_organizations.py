"""Organizations and their settings."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import parse_permission_map
from meshgate.db.database import announce_change
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import members, organizations
from meshgate.errors import InvalidInput, NotFound
from meshgate.identity import _rows
from meshgate.identity.models import DEFAULT_MEMBER_PERMISSIONS, Organization
from meshgate.identity.validation import clean_description, clean_name, slugify

IDENTITY = "identity"
_SETTINGS_FIELDS = {"member_permissions", "ai_keep_prompts"}


def default_settings() -> dict[str, Any]:
    return {"member_permissions": {k: list(v) for k, v in DEFAULT_MEMBER_PERMISSIONS.items()}}


class OrganizationService:
    """Creates organizations (with their first owner) and reads or changes one."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, name: str, owner_user_id: str, *, description: str | None = None) -> Organization:
        """A new organization whose owner is `owner_user_id`; the slug is derived from the name."""
        clean = clean_name(name)
        desc = clean_description(description)
        slug = await self._free_slug(slugify(clean))
        when = utc_now()
        org_id = new_id()
        settings = default_settings()
        await self._session.execute(
            insert(organizations).values(
                id=org_id,
                name=clean,
                slug=slug,
                description=desc,
                settings=settings,
                created_at=when,
                updated_at=when,
            )
        )
        await self._session.execute(
            insert(members).values(
                id=new_id(), organization_id=org_id, user_id=owner_user_id, role="owner", created_at=when
            )
        )
        await announce_change(self._session, IDENTITY)
        return Organization(org_id, clean, slug, desc, settings, when, when)

    async def get(self, organization_id: str) -> Organization:
        row = (await self._session.execute(select(organizations).where(organizations.c.id == organization_id))).first()
        if row is None:
            raise NotFound(f"organization {organization_id} not found")
        return _rows.organization(row)

    async def list_for_user(self, user_id: str) -> list[Organization]:
        query = (
            select(organizations)
            .join(members, members.c.organization_id == organizations.c.id)
            .where(members.c.user_id == user_id)
            .order_by(organizations.c.created_at, organizations.c.id)
        )
        return [_rows.organization(row) for row in await self._session.execute(query)]

    async def update(self, organization_id: str, *, name: str | None, description: str | None) -> Organization:
        values: dict[str, Any] = {"updated_at": utc_now()}
        if name is not None:
            values["name"] = clean_name(name)
        if description is not None:
            values["description"] = clean_description(description)
        await self._require(organization_id)
        await self._session.execute(update(organizations).where(organizations.c.id == organization_id).values(values))
        return await self.get(organization_id)

    async def delete(self, organization_id: str) -> None:
        await self._require(organization_id)
        await self._session.execute(delete(organizations).where(organizations.c.id == organization_id))
        await announce_change(self._session, IDENTITY)

    async def get_settings(self, organization_id: str) -> dict[str, Any]:
        return dict((await self.get(organization_id)).settings)

    async def update_settings(self, organization_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change settings; only known fields are accepted."""
        unknown = set(changes) - _SETTINGS_FIELDS
        if unknown:
            raise InvalidInput(f"unknown setting(s) {sorted(unknown)}; allowed: {sorted(_SETTINGS_FIELDS)}")
        settings = await self.get_settings(organization_id)
        if "member_permissions" in changes:
            settings["member_permissions"] = parse_permission_map(
                changes["member_permissions"], field="member_permissions"
            )
        if "ai_keep_prompts" in changes:
            if not isinstance(changes["ai_keep_prompts"], bool):
                raise InvalidInput("ai_keep_prompts must be true or false")
            settings["ai_keep_prompts"] = changes["ai_keep_prompts"]
        await self._session.execute(
            update(organizations)
            .where(organizations.c.id == organization_id)
            .values(settings=settings, updated_at=utc_now())
        )
        await announce_change(self._session, IDENTITY)
        return settings

    async def _require(self, organization_id: str) -> None:
        found = await self._session.scalar(select(organizations.c.id).where(organizations.c.id == organization_id))
        if found is None:
            raise NotFound(f"organization {organization_id} not found")

    async def _free_slug(self, base: str) -> str:
        slug = base
        while await self._session.scalar(select(organizations.c.id).where(organizations.c.slug == slug)) is not None:
            slug = f"{base[:52]}-{secrets.token_hex(3)}"
        return slug
