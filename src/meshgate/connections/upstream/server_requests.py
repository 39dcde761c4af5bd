"""Requests an upstream sends meshgate's session outside the flow of a call's answer (security review 15).

Such requests (sampling, elicitation, roots) are answered by a task each, since the answer may wait for a
caller. An upstream could send thousands at once; each session therefore answers at most `MAX_IN_FLIGHT` at a
time and none over `MAX_REQUEST_BYTES`. The rest are refused at once with a JSON-RPC error, sent by one task
per session through a bounded queue; when even that queue is full they are dropped (the upstream's own
timeout ends them), so a flood grows neither memory nor the number of tasks, and the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from meshgate.jsonrpc import INTERNAL_ERROR, rpc_error

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 16
MAX_REQUEST_BYTES = 4 * 1024 * 1024
_REFUSALS_WAITING = 4096  # about 1 MB of error answers at most

Send = Callable[[dict[str, Any]], Awaitable[None]]


class ServerRequests:
    """One session's answering of its upstream's requests (see the module docstring)."""

    def __init__(
        self,
        title: str,
        send: Send,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self._title = title
        self._send = send  # sends one message to the upstream, never raising for the upstream's failures
        self._max_in_flight = max_in_flight
        self._max_bytes = max_bytes
        self._answering: set[asyncio.Task[None]] = set()
        self._refusals: deque[dict[str, Any]] = deque()
        self._refusing: asyncio.Task[None] | None = None
        self._dropped = 0

    def take(self, request: dict[str, Any], size: int, answer: Callable[[], Awaitable[None]]) -> None:
        """Answer `request` with `answer()` in a task of its own, or refuse it at once."""
        if size > self._max_bytes:
            self._refuse(request, f"meshgate refuses server-to-client requests over {self._max_bytes} bytes")
        elif len(self._answering) >= self._max_in_flight:
            self._refuse(request, f"meshgate answers at most {self._max_in_flight} server-to-client requests at a time")
        else:
            task = asyncio.get_running_loop().create_task(_awaited(answer))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    def _refuse(self, request: dict[str, Any], reason: str) -> None:
        if len(self._refusals) >= _REFUSALS_WAITING:
            if self._dropped == 0:
                log.warning("upstream %s floods meshgate with requests; dropping some unanswered", self._title)
            self._dropped += 1
            return
        self._refusals.append(rpc_error(request.get("id"), INTERNAL_ERROR, reason))
        if self._refusing is None or self._refusing.done():
            self._refusing = asyncio.get_running_loop().create_task(self._send_refusals())

    async def _send_refusals(self) -> None:
        while self._refusals:
            await self._send(self._refusals.popleft())
        self._dropped = 0

    async def close(self) -> None:
        tasks = [*self._answering, *([self._refusing] if self._refusing is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._refusals.clear()


async def _awaited(answer: Callable[[], Awaitable[None]]) -> None:
    await answer()
