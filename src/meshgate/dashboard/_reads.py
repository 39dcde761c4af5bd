"""A connection's resources, resource templates and prompts, asked as the logged-in person through the one
call pipeline.

As for "Try it" (`_calls.py`): `CallService` decides (anything but a tool call needs a grant on the
connection, see `meshgate.calls.service.authorize`), sends with meshgate's credentials over the person's own
upstream session and audits `resources/read` and `prompts/get`; the person's rate limits apply. Nothing is
cached here: the lists are asked on each page view, within the connection's call timeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from meshgate.access import Principal
from meshgate.access.ratelimit import RateLimiter
from meshgate.calls.models import CallContext, Target
from meshgate.calls.service import CallService
from meshgate.errors import MeshgateError, UpstreamRpcError
from meshgate.jsonrpc import request
from meshgate.jsonvalues import as_dict, as_list

MAX_ITEMS = 500  # per list; the page says when the server has more
MAX_PAGES = 50
METHOD_NOT_FOUND = -32601
_LISTS = (
    ("resources", "resources/list", "resources"),
    ("templates", "resources/templates/list", "resourceTemplates"),
    ("prompts", "prompts/list", "prompts"),
)


@dataclass(frozen=True, slots=True)
class Listing:
    """One list as the page shows it: `more` when the server has more than `MAX_ITEMS`; `error` when it failed."""

    items: tuple[dict[str, Any], ...] = ()
    more: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Offers:
    """What a connection offers besides tools. A list is None when the server does not offer it; `error` says
    why the server could not be asked at all."""

    resources: Listing | None = None
    templates: Listing | None = None
    prompts: Listing | None = None
    error: str | None = None


class UpstreamReader:
    def __init__(self, calls: CallService, limiter: RateLimiter) -> None:
        self._calls = calls
        self._limiter = limiter if limiter.enabled else None

    async def offers(self, principal: Principal, connection_id: str, timeout_s: float) -> Offers:
        """The lists the server's capabilities announce, all within `timeout_s`; failures become messages."""
        target = Target(connection_id)
        try:
            async with asyncio.timeout(timeout_s):
                self._check(principal)
                info = await self._calls.upstream_info(principal, target, _context())
                capabilities = as_dict(info.get("capabilities"))
                wanted = [entry for entry in _LISTS if entry[1].split("/")[0] in capabilities]
                found = await asyncio.gather(
                    *(self._listing(principal, target, method, key) for _, method, key in wanted)
                )
        except TimeoutError:
            return Offers(error=f"the server did not answer within {timeout_s:g} s")
        except MeshgateError as error:
            return Offers(error=error.message)
        lists = {name: listing for (name, _, _), listing in zip(wanted, found, strict=True)}
        return Offers(lists.get("resources"), lists.get("templates"), lists.get("prompts"))

    async def prompts(self, principal: Principal, connection_id: str) -> Listing:
        """The prompts the server lists (raises when it cannot be asked)."""
        self._check(principal)
        listing = await self._listing(principal, Target(connection_id), "prompts/list", "prompts", quiet=False)
        return listing or Listing()

    async def read(self, principal: Principal, connection_id: str, uri: str) -> dict[str, Any]:
        """`resources/read` of `uri`: the result (`contents`); a refusal or an upstream error raises."""
        return await self._ask(principal, connection_id, "resources/read", {"uri": uri}, uri)

    async def prompt(
        self, principal: Principal, connection_id: str, name: str, arguments: dict[str, str]
    ) -> dict[str, Any]:
        """`prompts/get`: the result (`description`, `messages`); a refusal or an upstream error raises."""
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        return await self._ask(principal, connection_id, "prompts/get", params, name)

    async def _ask(
        self, principal: Principal, connection_id: str, method: str, params: dict[str, Any], what: str
    ) -> dict[str, Any]:
        self._check(principal)
        message = await self._calls.request(principal, Target(connection_id), request(method, params), _context())
        if "error" in message:
            error = as_dict(message["error"])
            raise UpstreamRpcError(f"the upstream answered {what[:200]} with an error: {error.get('message')}", error)
        return as_dict(message.get("result"))

    async def _listing(
        self, principal: Principal, target: Target, method: str, key: str, *, quiet: bool = True
    ) -> Listing | None:
        """Every page of one list up to `MAX_ITEMS`. None when the server answers that it has no such method;
        with `quiet`, a failure is the listing's `error`, else it raises."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            for _ in range(MAX_PAGES):
                envelope = request(method, {"cursor": cursor} if cursor else {})
                message = await self._calls.request(principal, target, envelope, _context())
                if "error" in message:
                    error = as_dict(message["error"])
                    if error.get("code") == METHOD_NOT_FOUND:
                        return None
                    raise UpstreamRpcError(f"{method} failed: {error.get('message', '')}", error)
                result = as_dict(message.get("result"))
                items.extend(as_dict(item) for item in as_list(result.get(key)) if isinstance(item, dict))
                next_cursor = result.get("nextCursor")
                cursor = next_cursor if isinstance(next_cursor, str) and next_cursor else None
                if cursor is None or len(items) >= MAX_ITEMS:
                    break
        except MeshgateError as error:
            if not quiet:
                raise
            return Listing(error=error.message)
        return Listing(tuple(items[:MAX_ITEMS]), more=cursor is not None or len(items) > MAX_ITEMS)

    def _check(self, principal: Principal) -> None:
        if self._limiter is not None:
            self._limiter.check(principal.organization_id, principal.credential_id)


def _context() -> CallContext:
    return CallContext(user_agent="meshgate dashboard")
