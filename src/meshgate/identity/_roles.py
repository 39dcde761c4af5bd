"""Custom roles: a named permission map per organization."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import parse_permission_map
from meshgate.db.database import announce_change
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import members, roles
from meshgate.errors import Conflict, InvalidInput, NotFound
from meshgate.identity import _rows
from meshgate.identity._organizations import IDENTITY
from meshgate.identity.models import BUILTIN_ROLES, MAX_CUSTOM_ROLES, Role
from meshgate.identity.validation import clean_description, clean_role_name


class RoleService:
    """Creates, lists, changes and deletes the custom roles of one organization."""

    def __init__(self, session: AsyncSession, organization_id: str) -> None:
        self._session = session
        self._org = organization_id

    async def create(self, name: str, permissions: Any, *, description: str | None = None) -> Role:
        role_name = self._check_name(name)
        permission_map = parse_permission_map(permissions)
        count = await self._session.scalar(
            select(func.count()).select_from(roles).where(roles.c.organization_id == self._org)
        )
        if int(count or 0) >= MAX_CUSTOM_ROLES:
            raise Conflict(f"an organization can have at most {MAX_CUSTOM_ROLES} custom roles")
        if await self._find(role_name) is not None:
            raise Conflict(f"a role named {role_name!r} already exists")
        when = utc_now()
        role_id = new_id()
        await self._session.execute(
            insert(roles).values(
                id=role_id,
                organization_id=self._org,
                name=role_name,
                description=clean_description(description),
                permissions=permission_map,
                created_at=when,
                updated_at=when,
            )
        )
        return await self.get(role_id)

    async def list(self) -> list[Role]:
        query = select(roles).where(roles.c.organization_id == self._org).order_by(roles.c.name)
        return [_rows.role(row) for row in await self._session.execute(query)]

    async def get(self, role_id: str) -> Role:
        query = select(roles).where(roles.c.organization_id == self._org, roles.c.id == role_id)
        row = (await self._session.execute(query)).first()
        if row is None:
            raise NotFound(f"role {role_id} not found")
        return _rows.role(row)

    async def update(
        self, role_id: str, *, name: str | None = None, description: str | None = None, permissions: Any = None
    ) -> Role:
        current = await self.get(role_id)
        values: dict[str, Any] = {"updated_at": utc_now()}
        if description is not None:
            values["description"] = clean_description(description)
        if permissions is not None:
            values["permissions"] = parse_permission_map(permissions)
        if name is not None and name != current.name:
            values["name"] = self._check_name(name)
            if await self._find(values["name"]) is not None:
                raise Conflict(f"a role named {name!r} already exists")
            await self._session.execute(
                update(members)
                .where(members.c.organization_id == self._org, members.c.role == current.name)
                .values(role=values["name"])
            )
        await self._session.execute(update(roles).where(roles.c.id == role_id).values(values))
        await announce_change(self._session, IDENTITY)
        return await self.get(role_id)

    async def delete(self, role_id: str) -> Role:
        role = await self.get(role_id)
        in_use = await self._session.scalar(
            select(func.count())
            .select_from(members)
            .where(members.c.organization_id == self._org, members.c.role == role.name)
        )
        if in_use:
            raise Conflict(f"role {role.name!r} is held by {in_use} member(s); give them another role first")
        await self._session.execute(delete(roles).where(roles.c.id == role_id))
        await announce_change(self._session, IDENTITY)
        return role

    async def _find(self, name: str) -> str | None:
        return await self._session.scalar(
            select(roles.c.id).where(roles.c.organization_id == self._org, roles.c.name == name)
        )

    @staticmethod
    def _check_name(name: str) -> str:
        if name in BUILTIN_ROLES:
            raise InvalidInput(f"{name!r} is a built-in role; choose another name")
        return clean_role_name(name)
