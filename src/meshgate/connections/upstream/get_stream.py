"""The GET stream of one Streamable HTTP session: what the upstream says to the session outside a call.

Opened once something watches the session, kept open while the upstream offers one (servers that do not
answer 405 and are not asked again), reconnected with backoff. The SDK's server also sends requests that
name no call (roots/list) here, so a session whose callers answer such requests reads it while they call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from meshgate.connections.upstream.http11 import HttpError, Pool
from meshgate.connections.upstream.sse import EventReader, messages
from meshgate.errors import UpstreamError

log = logging.getLogger(__name__)

# What the upstream sends before the stream is read is lost: callers wait this long for it to open.
STREAM_WAIT_S = 3.0


class GetStream:
    """meshgate's reader of one session's GET stream."""

    def __init__(  # noqa: PLR0917  (the session's parts the stream needs)
        self,
        title: str,
        pool: Pool,
        headers: Callable[[], dict[str, str]],
        ensure_session: Callable[[], Awaitable[None]],
        forget_session: Callable[[], Awaitable[None]],
        heard: Callable[[list[dict[str, Any]], int], None],
        *,
        head_timeout: float,
    ) -> None:
        self._title = title
        self._pool = pool
        self._headers = headers
        self._ensure_session = ensure_session
        self._forget_session = forget_session
        self._heard = heard
        self._head_timeout = head_timeout
        self._task: asyncio.Task[None] | None = None
        self.open = asyncio.Event()  # the stream is being read now
        self.refused = False  # the upstream offers no GET stream

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def ready(self) -> None:
        """Wait (at most `STREAM_WAIT_S`) until the stream is read, unless it is not wanted or not offered."""
        if self._task is None or self.refused or self.open.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STREAM_WAIT_S):
                await self.open.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        delay = 1.0
        while True:
            try:
                await self._ensure_session()
                if not await self._read():
                    return
                delay = 1.0
            except (UpstreamError, HttpError, ValueError) as error:
                log.info("notification stream of upstream %s broke off: %s", self._title, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def _read(self) -> bool:
        """Read one GET stream to its end; False when the upstream does not offer one."""
        response = await self._pool.request("GET", self._headers(), None, head_timeout=self._head_timeout)
        try:
            if response.status == 404:
                await self._forget_session()
                return True
            if response.status != 200:
                self.refused = True
                return False
            self.open.set()
            reader = EventReader()
            async for chunk in response.iter_chunks(None):
                for event in reader.feed(chunk):
                    data = event.data.encode()
                    self._heard(list(messages(data, "application/json")), len(data))
            return True
        finally:
            self.open.clear()
            response.release()
