"""USER_SESSION_* management tools: the caller's own browser sessions, listed and ended."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from meshgate.identity.sessions import BrowserSessionService
from meshgate.mcp.registry import ToolContext, ToolInput, ToolSpec


class NoInput(ToolInput):
    pass


class SessionIdInput(ToolInput):
    sessionId: str = Field(description="Session id (from USER_SESSION_LIST)", max_length=64)  # noqa: N815  (camelCase like the other tools)


async def session_list(ctx: ToolContext, _args: NoInput) -> Any:
    sessions = await BrowserSessionService(ctx.session).list(ctx.principal.user_id)
    return {"items": [item.to_dict() for item in sessions]}


async def session_revoke(ctx: ToolContext, args: SessionIdInput) -> Any:
    await BrowserSessionService(ctx.session).revoke(ctx.principal.user_id, args.sessionId)
    return {"id": args.sessionId, "revoked": True}


SESSION_TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "USER_SESSION_LIST",
        "List the caller's own signed-in browser sessions (never their cookies).",
        NoInput,
        session_list,
        read_only=True,
    ),
    ToolSpec(
        "USER_SESSION_REVOKE",
        "End one of the caller's own browser sessions; that browser is signed out at once.",
        SessionIdInput,
        session_revoke,
    ),
]
