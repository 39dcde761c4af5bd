"""Members of one organization and their roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.database import Notice, announce_change, notify
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import members, roles, users
from meshgate.errors import Conflict, InvalidInput, NotFound
from meshgate.identity import _rows
from meshgate.identity._organizations import IDENTITY
from meshgate.identity.models import BUILTIN_ROLES, Member


class MemberService:
    """Adds, removes and re-roles members of one organization."""

    def __init__(self, session: AsyncSession, organization_id: str) -> None:
        self._session = session
        self._org = organization_id

    def _query(self) -> Select[*tuple[Any, ...]]:
        return (
            select(
                members.c.id,
                members.c.organization_id,
                members.c.user_id,
                members.c.role,
                members.c.created_at,
                users.c.email,
                users.c.name,
            )
            .join(users, users.c.id == members.c.user_id)
            .where(members.c.organization_id == self._org)
        )

    async def list(self) -> list[Member]:
        rows = await self._session.execute(self._query().order_by(members.c.created_at, members.c.id))
        return [_rows.member(row) for row in rows]

    async def get(self, member_id: str) -> Member:
        row = (await self._session.execute(self._query().where(members.c.id == member_id))).first()
        if row is None:
            raise NotFound(f"member {member_id} not found")
        return _rows.member(row)

    async def find_by_user(self, user_id: str) -> Member | None:
        row = (await self._session.execute(self._query().where(members.c.user_id == user_id))).first()
        return None if row is None else _rows.member(row)

    async def add(self, user_id: str, role: str) -> Member:
        await self.require_role(role)
        if await self.find_by_user(user_id) is not None:
            raise Conflict("that user is already a member of this organization")
        member_id = new_id()
        await self._session.execute(
            insert(members).values(
                id=member_id, organization_id=self._org, user_id=user_id, role=role, created_at=utc_now()
            )
        )
        await announce_change(self._session, IDENTITY)
        added = await self.get(member_id)
        notify(self._session, Notice(self._org, "meshgate.member.added", member_id, _described(added)))
        return added

    async def remove(self, member_id: str) -> Member:
        member = await self.get(member_id)
        if member.role == "owner" and await self._owner_count() <= 1:
            raise Conflict("cannot remove the last owner; make another member owner first")
        await self._session.execute(delete(members).where(members.c.id == member_id))
        await announce_change(self._session, IDENTITY)
        notify(self._session, Notice(self._org, "meshgate.member.removed", member_id, _described(member)))
        return member

    async def update_role(self, member_id: str, role: str) -> Member:
        member = await self.get(member_id)
        await self.require_role(role)
        if member.role == "owner" and role != "owner" and await self._owner_count() <= 1:
            raise Conflict("cannot change the role of the last owner; make another member owner first")
        await self._session.execute(update(members).where(members.c.id == member_id).values(role=role))
        await announce_change(self._session, IDENTITY)
        return await self.get(member_id)

    async def require_role(self, role: str) -> None:
        """Raise unless `role` is built in or a custom role of this organization."""
        if role in BUILTIN_ROLES:
            return
        found = await self._session.scalar(
            select(roles.c.id).where(roles.c.organization_id == self._org, roles.c.name == role)
        )
        if found is None:
            raise InvalidInput(f"role {role[:80]!r} does not exist; use owner, admin, member or a custom role name")

    async def _owner_count(self) -> int:
        count = await self._session.scalar(
            select(func.count())
            .select_from(members)
            .where(members.c.organization_id == self._org, members.c.role == "owner")
        )
        return int(count or 0)


def _described(member: Member) -> dict[str, Any]:
    """What an event says about a member (no email: subscribers need not learn addresses)."""
    return {"memberId": member.id, "userId": member.user_id, "role": member.role}
