""" "Try it": call a connection's tool as the logged-in person, through the one call pipeline.

The permission decision, OAuth credentials, the mesh token and the audit record are those of any other
call (`CallService.call_tool`); the person's rate limits apply as on the REST route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshgate.access import Principal
from meshgate.access.ratelimit import RateLimiter
from meshgate.calls.models import CallContext, Target
from meshgate.calls.service import CallService
from meshgate.errors import MeshgateError


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What a tool call answered: the result (content, structuredContent, isError) or a gateway error."""

    status: int
    result: dict[str, Any] | None
    error: dict[str, Any] | None

    @property
    def is_error(self) -> bool:
        return self.error is not None or bool(self.result and self.result.get("isError"))


class ToolCaller:
    def __init__(self, calls: CallService, limiter: RateLimiter) -> None:
        self._calls = calls
        self._limiter = limiter if limiter.enabled else None

    async def call(self, principal: Principal, connection_id: str, tool: str, arguments: dict[str, Any]) -> CallOutcome:
        context = CallContext(user_agent="meshgate dashboard")
        try:
            if self._limiter is not None:
                self._limiter.check(principal.organization_id, principal.credential_id)
            result = await self._calls.call_tool(principal, Target(connection_id), tool, arguments, context)
        except MeshgateError as error:
            return CallOutcome(error.http_status, None, error.to_dict())
        return CallOutcome(200, result, None)
