"""The virtual MCPs of one organization: definitions stored in the database, changes announced."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import Principal
from meshgate.db.database import announce_change
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import connections, virtual_mcp_connections, virtual_mcps
from meshgate.errors import NotFound, PermissionDenied
from meshgate.virtual.models import Member, ToolOverride, VirtualMcp


def virtual_topic(virtual_mcp_id: str) -> str:
    """The change topic that drops a virtual MCP from every process's cache."""
    return f"virtual:{virtual_mcp_id}"


class VirtualMcpService:
    """Creates, reads, changes and deletes the virtual MCPs of one organization."""

    def __init__(self, session: AsyncSession, organization_id: str) -> None:
        self._session = session
        self._org = organization_id

    async def create(self, values: Mapping[str, Any], members: Sequence[Member], by: Principal | str) -> VirtualMcp:
        """`values` holds title, description, instructions, status (already validated). `by` is who creates it
        (their grants must cover every member, see `require_grants`), or a user id for set-up code."""
        if isinstance(by, Principal):
            require_grants(by, members)
        created_by = by.user_id if isinstance(by, Principal) else by
        virtual_id = new_id()
        when = utc_now()
        await self._session.execute(
            insert(virtual_mcps).values(
                id=virtual_id,
                organization_id=self._org,
                created_by=created_by,
                created_at=when,
                updated_at=when,
                **{"status": "active", **values},
            )
        )
        await self._replace_members(virtual_id, members)
        return await self.get(virtual_id)

    async def get(self, virtual_id: str) -> VirtualMcp:
        row = (
            await self._session.execute(
                select(virtual_mcps).where(virtual_mcps.c.organization_id == self._org, virtual_mcps.c.id == virtual_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"virtual MCP {virtual_id} not found")
        return (await self._with_members([row]))[0]

    async def list(self, *, limit: int = 100, offset: int = 0) -> tuple[list[VirtualMcp], int]:
        condition = virtual_mcps.c.organization_id == self._org
        rows = (
            await self._session.execute(
                select(virtual_mcps)
                .where(condition)
                .order_by(virtual_mcps.c.title, virtual_mcps.c.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
        total = await self._session.scalar(select(func.count()).select_from(virtual_mcps).where(condition))
        return await self._with_members(rows), int(total or 0)

    async def update(
        self,
        virtual_id: str,
        values: Mapping[str, Any],
        members: Sequence[Member] | None = None,
        by: Principal | None = None,
    ) -> VirtualMcp:
        await self.get(virtual_id)
        if by is not None and members is not None:
            require_grants(by, members)
        await self._session.execute(
            update(virtual_mcps).where(virtual_mcps.c.id == virtual_id).values({**values, "updated_at": utc_now()})
        )
        if members is not None:
            await self._replace_members(virtual_id, members)
        await announce_change(self._session, virtual_topic(virtual_id))
        return await self.get(virtual_id)

    async def delete(self, virtual_id: str) -> VirtualMcp:
        found = await self.get(virtual_id)
        await self._session.execute(delete(virtual_mcps).where(virtual_mcps.c.id == virtual_id))
        await announce_change(self._session, virtual_topic(virtual_id))
        return found

    async def _replace_members(self, virtual_id: str, members: Sequence[Member]) -> None:
        wanted = [member.connection_id for member in members]
        if wanted:
            found = set(
                (
                    await self._session.scalars(
                        select(connections.c.id).where(
                            connections.c.organization_id == self._org, connections.c.id.in_(wanted)
                        )
                    )
                ).all()
            )
            missing = [connection_id for connection_id in wanted if connection_id not in found]
            if missing:
                raise NotFound(f"connection {missing[0]} not found")
        await self._session.execute(
            delete(virtual_mcp_connections).where(virtual_mcp_connections.c.virtual_mcp_id == virtual_id)
        )
        if members:
            await self._session.execute(
                insert(virtual_mcp_connections),
                [
                    {
                        "virtual_mcp_id": virtual_id,
                        "connection_id": member.connection_id,
                        "position": position,
                        "selected_tools": _listed(member.selected_tools),
                        "selected_resources": _listed(member.selected_resources),
                        "selected_prompts": _listed(member.selected_prompts),
                        "tool_overrides": None
                        if member.tool_overrides is None
                        else {tool: override.to_dict() for tool, override in member.tool_overrides.items()},
                    }
                    for position, member in enumerate(members)
                ],
            )

    async def _with_members(self, rows: Sequence[Row[Any]]) -> list[VirtualMcp]:
        if not rows:
            return []
        ids = [row.id for row in rows]
        member_rows = (
            await self._session.execute(
                select(virtual_mcp_connections, connections.c.title)
                .join(connections, connections.c.id == virtual_mcp_connections.c.connection_id)
                .where(virtual_mcp_connections.c.virtual_mcp_id.in_(ids))
                .order_by(virtual_mcp_connections.c.position)
            )
        ).all()
        by_virtual: dict[str, list[Member]] = {virtual_id: [] for virtual_id in ids}
        for row in member_rows:
            by_virtual[row.virtual_mcp_id].append(_member(row))
        return [
            VirtualMcp(
                id=row.id,
                organization_id=row.organization_id,
                title=row.title,
                description=row.description,
                instructions=row.instructions,
                status=row.status,
                members=tuple(by_virtual[row.id]),
                created_by=row.created_by,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in rows
        ]


def require_grants(principal: Principal, members: Sequence[Member]) -> None:
    """Nobody puts into a virtual MCP what they may not use themselves: a grant on the virtual MCP hands on
    every tool it exposes, so exposing a connection's tools needs a grant on each of them (all of its tools
    when none are selected) and exposing its resources and prompts needs a grant on the connection."""
    for member in members:
        connection_id = member.connection_id
        if member.selected_tools is None:
            if not principal.allows(connection_id, "*"):
                raise PermissionDenied(
                    f"exposing every tool of connection {connection_id} needs the permission {connection_id}:*; "
                    "name the tools you may call in selected_tools instead"
                )
        else:
            for tool in sorted(member.selected_tools):
                if not principal.allows(connection_id, tool):
                    raise PermissionDenied(
                        f"exposing {tool} of connection {connection_id} needs the permission {connection_id}:{tool}"
                    )
        if not principal.can_reach(connection_id):
            raise PermissionDenied(f"this credential has no permission on connection {connection_id}")


def _listed(values: Iterable[str] | None) -> list[str] | None:
    return None if values is None else sorted(set(values))


def _chosen(values: Any) -> frozenset[str] | None:
    return None if values is None else frozenset(str(value) for value in values)


def _member(row: Row[Any]) -> Member:
    overrides: dict[str, Any] | None = row.tool_overrides
    return Member(
        connection_id=row.connection_id,
        connection_title=row.title,
        selected_tools=_chosen(row.selected_tools),
        selected_resources=_chosen(row.selected_resources),
        selected_prompts=_chosen(row.selected_prompts),
        tool_overrides=None
        if overrides is None
        else {
            tool: ToolOverride(name=value.get("name"), description=value.get("description"))
            for tool, value in overrides.items()
        },
    )
