"""Management tools for virtual MCPs (names follow MCP Mesh's collection tools)."""

from __future__ import annotations

from typing import Any

from meshgate.errors import InvalidInput
from meshgate.mcp.registry import ToolContext, ToolSpec
from meshgate.virtual.inputs import CreateInput, IdInput, ListInput, MemberInput, UpdateInput, VirtualDataInput
from meshgate.virtual.models import Member, ToolOverride
from meshgate.virtual.service import VirtualMcpService


def _service(ctx: ToolContext) -> VirtualMcpService:
    return VirtualMcpService(ctx.session, ctx.principal.organization_id)


def _members(given: list[MemberInput]) -> list[Member]:
    return [
        Member(
            connection_id=item.connection_id,
            connection_title="",
            selected_tools=None if item.selected_tools is None else frozenset(item.selected_tools),
            selected_resources=None if item.selected_resources is None else frozenset(item.selected_resources),
            selected_prompts=None if item.selected_prompts is None else frozenset(item.selected_prompts),
            tool_overrides=None
            if item.tool_overrides is None
            else {
                tool: ToolOverride(name=override.name, description=override.description)
                for tool, override in item.tool_overrides.items()
            },
        )
        for item in given
    ]


def _values(data: VirtualDataInput) -> dict[str, Any]:
    return {name: getattr(data, name) for name in data.model_fields_set if name != "connections"}


async def virtual_create(ctx: ToolContext, args: CreateInput) -> Any:
    data = args.data
    if not data.title:
        raise InvalidInput("data.title is required")
    created = await _service(ctx).create(_values(data), _members(data.connections or []), ctx.principal)
    return created.to_dict(ctx.runtime.settings.public_url)


async def virtual_list(ctx: ToolContext, args: ListInput) -> Any:
    items, total = await _service(ctx).list(limit=args.limit, offset=args.offset)
    url = ctx.runtime.settings.public_url
    return {
        "items": [item.to_dict(url) for item in items],
        "totalCount": total,
        "hasMore": args.offset + len(items) < total,
    }


async def virtual_get(ctx: ToolContext, args: IdInput) -> Any:
    return (await _service(ctx).get(args.id)).to_dict(ctx.runtime.settings.public_url)


async def virtual_update(ctx: ToolContext, args: UpdateInput) -> Any:
    data = args.data
    if "title" in data.model_fields_set and not data.title:
        raise InvalidInput("data.title cannot be removed")
    members = None if data.connections is None else _members(data.connections)
    updated = await _service(ctx).update(args.id, _values(data), members, by=ctx.principal)
    return updated.to_dict(ctx.runtime.settings.public_url)


async def virtual_delete(ctx: ToolContext, args: IdInput) -> Any:
    deleted = await _service(ctx).delete(args.id)
    return {**deleted.to_dict(ctx.runtime.settings.public_url), "deleted": True}


TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "COLLECTION_VIRTUAL_MCP_CREATE",
        "Put several connections behind one endpoint (/mcp/virtual/{id}), choosing and renaming their tools.",
        CreateInput,
        virtual_create,
    ),
    ToolSpec(
        "COLLECTION_VIRTUAL_MCP_LIST",
        "List virtual MCPs with limit (<=1000) and offset.",
        ListInput,
        virtual_list,
        read_only=True,
    ),
    ToolSpec("COLLECTION_VIRTUAL_MCP_GET", "Get a virtual MCP.", IdInput, virtual_get, read_only=True),
    ToolSpec(
        "COLLECTION_VIRTUAL_MCP_UPDATE",
        "Change a virtual MCP; connections, when given, replace the whole list.",
        UpdateInput,
        virtual_update,
    ),
    ToolSpec("COLLECTION_VIRTUAL_MCP_DELETE", "Delete a virtual MCP.", IdInput, virtual_delete),
]
