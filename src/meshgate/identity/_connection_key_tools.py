"""CONNECTION_KEY_* management tools: long-lived keys with which an upstream acts as its own connection."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from meshgate.identity.service import ConnectionKeyService
from meshgate.mcp.registry import ToolContext, ToolInput, ToolSpec


class ConnectionKeyCreateInput(ToolInput):
    connectionId: str = Field(max_length=36, description="The connection the key acts as")  # noqa: N815  (camelCase like the EVENT_* tools)
    name: str = Field(default="connection key", max_length=100, description="What the key is for")
    expiresIn: int | None = Field(  # noqa: N815  (camelCase like API_KEY_CREATE)
        default=None, description="Lifetime in seconds (at least 300); never expires when absent"
    )


class ConnectionKeyListInput(ToolInput):
    connectionId: str | None = Field(default=None, max_length=36, description="Only this connection's keys")  # noqa: N815


class ConnectionKeyIdInput(ToolInput):
    keyId: str = Field(max_length=36, description="A connection key id (from CONNECTION_KEY_LIST)")  # noqa: N815


def _service(ctx: ToolContext) -> ConnectionKeyService:
    return ConnectionKeyService(ctx.session, ctx.principal.organization_id)


async def connection_key_create(ctx: ToolContext, args: ConnectionKeyCreateInput) -> Any:
    key, value = await _service(ctx).create(ctx.principal, args.connectionId, args.name, args.expiresIn)
    return {**key.to_dict(), "key": value}  # shown this once


async def connection_key_list(ctx: ToolContext, args: ConnectionKeyListInput) -> Any:
    return {"items": [key.to_dict() for key in await _service(ctx).list(ctx.principal, args.connectionId)]}


async def connection_key_delete(ctx: ToolContext, args: ConnectionKeyIdInput) -> Any:
    return {**(await _service(ctx).delete(ctx.principal, args.keyId)).to_dict(), "deleted": True}


CONNECTION_KEY_TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "CONNECTION_KEY_CREATE",
        "Create a key with which a connection's server calls meshgate as that connection (the event tools only:"
        " publish, subscribe itself); owners and admins only; the value is shown only in this answer.",
        ConnectionKeyCreateInput,
        connection_key_create,
    ),
    ToolSpec(
        "CONNECTION_KEY_LIST",
        "List connection keys (never their values).",
        ConnectionKeyListInput,
        connection_key_list,
        read_only=True,
    ),
    ToolSpec(
        "CONNECTION_KEY_DELETE",
        "Revoke a connection key; it stops working on its next request.",
        ConnectionKeyIdInput,
        connection_key_delete,
    ),
]
