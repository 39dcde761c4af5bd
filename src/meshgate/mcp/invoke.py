"""Running one management tool for a principal: the one path shared by `/mcp` and the dashboard."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from meshgate.access import SELF, Principal
from meshgate.errors import Conflict, PermissionDenied
from meshgate.mcp.registry import ToolContext, ToolSpec
from meshgate.runtime import Runtime


def refusal(name: str) -> PermissionDenied:
    """Unknown and forbidden tools answer alike, as tools/list shows neither."""
    return PermissionDenied(f"tool {name[:80]!r} is not available: it needs self:{name[:80]}")


async def run_tool(
    runtime: Runtime, principal: Principal, spec: ToolSpec[Any], arguments: dict[str, Any] | None
) -> Any:
    """Check the permission, validate the arguments, run the handler in one transaction."""
    if not principal.allows(SELF, spec.name):
        raise refusal(spec.name)
    parsed = spec.parse(arguments)
    try:
        async with runtime.db.transaction() as session:
            return await spec.handler(ToolContext(principal=principal, session=session, runtime=runtime), parsed)
    except IntegrityError as exc:
        # A concurrent change won a uniqueness race the service had checked for.
        raise Conflict("the change conflicts with a concurrent change; try again") from exc
