"""What every upstream session offers, whatever its transport: the seam `UpstreamClient` is built on.

Three implementations: `StreamableHttpSession` (handshake and stateless era), and `MultiplexedSession` over a
`Transport` (legacy HTTP+SSE, STDIO). A session is meshgate's side of one MCP session with the upstream;
callers' requests are multiplexed over it with ids of meshgate's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

# What meshgate's sessions offer the upstream: its requests during a call go to the caller, who answers
# (the proxy's bridged path, virtual MCPs); any it sends where no caller can answer get an error at once.
CLIENT_CAPABILITIES: Mapping[str, Any] = {"sampling": {}, "elicitation": {"form": {}, "url": {}}, "roots": {}}

Notification = Callable[[dict[str, Any]], None]
ServerRequestHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


class UpstreamSession(Protocol):
    """One MCP session with an upstream."""

    initialize_result: dict[str, Any] | None  # the upstream's initialize (or discover) result once open
    on_reopen: Callable[[], None] | None  # a new session replaced one (its subscriptions are gone)

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        on_progress: Notification | None = None,
        on_server_request: ServerRequestHandler | None = None,
    ) -> dict[str, Any]:
        """One JSON-RPC request; the response message (result or error) with meshgate's id.

        Progress for the request (and the caller's log messages) go to `on_progress`; a request the server
        sends the caller meanwhile goes to `on_server_request`, whose answer goes back (refused without one)."""
        ...

    async def upstream_info(self) -> dict[str, Any]:
        """The upstream's initialize result, opening the session when needed."""
        ...

    def watch(self, listener: Notification) -> None:
        """Hear what the upstream says to this session outside a call (list_changed, resources/updated ...)."""
        ...

    async def stream_ready(self) -> None:
        """Wait (briefly) until what the upstream sends outside a call is heard (an HTTP GET stream is read)."""
        ...

    async def close(self) -> None: ...
