"""SDK server middleware."""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR
from pydantic import ValidationError

log = logging.getLogger(__name__)


async def hide_internal_errors(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """An unexpected exception is logged with its traceback; the client sees only 'Internal error'.

    (In the handshake era the SDK would otherwise send the exception's text to the client.)
    """
    try:
        return await call_next(ctx)
    except (MCPError, ValidationError):
        raise
    except Exception:
        log.exception("management request %s failed", ctx.method)
        raise MCPError(code=INTERNAL_ERROR, message="Internal error") from None
