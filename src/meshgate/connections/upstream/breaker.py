"""A circuit breaker per upstream: after repeated failures of different calls, stop sending for a while, then
probe.

A call is the task that makes it (one proxied request, one REST call, one background listener), or the
`one_call()` scope around it when it fans out into several tasks (the virtual MCP catalog lists tools,
resources and prompts in parallel): however many attempts one call makes, it counts as one failure, so a
single caller retrying, or meshgate's own listener reconnecting, never opens the circuit by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Callable, Generator

from meshgate.errors import UpstreamUnavailable

Clock = Callable[[], float]

_CALL: contextvars.ContextVar[object | None] = contextvars.ContextVar("meshgate_upstream_call", default=None)


@contextlib.contextmanager
def one_call() -> Generator[None]:
    """Count every upstream failure inside this block (and the tasks it starts) as one call's."""
    token = _CALL.set(object())
    try:
        yield
    finally:
        _CALL.reset(token)


def _current_call() -> object | None:
    call = _CALL.get()
    if call is not None:
        return call
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


class CircuitBreaker:
    """closed → (`threshold` consecutive failed calls) → open → (cool-down) → half-open: one probe decides.

    A failed probe opens the circuit again for twice the cool-down (up to `max_cool_down_s`); a success
    closes it and resets the cool-down. A probe whose caller went away without an outcome holds the door
    for one cool-down at most.
    """

    def __init__(
        self,
        name: str,
        *,
        threshold: int = 5,
        cool_down_s: float = 5.0,
        max_cool_down_s: float = 30.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._name = name
        self._threshold = threshold
        self._base_cool_down = cool_down_s
        self._max_cool_down = max(max_cool_down_s, cool_down_s)
        self._cool_down = cool_down_s
        self._clock = clock
        self._failed_calls: list[object | None] = []  # the distinct calls of the current run of failures
        self._opened_at: float | None = None
        self._probe_since: float | None = None
        self.last_error: str | None = None  # why the last call failed; None once one succeeds
        self.reachable: bool | None = None  # whether the last call reached the upstream (None: no call yet)

    @property
    def failures(self) -> int:
        """Consecutive failed calls (distinct calls) since the last success."""
        return len(self._failed_calls)

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self._cool_down else "open"

    def before_call(self) -> bool:
        """Raise while open; let one probe at a time through once the cool-down has passed (True for it)."""
        if self._opened_at is None:
            return False
        now = self._clock()
        remaining = self._cool_down - (now - self._opened_at)
        probing = self._probe_since is not None and now - self._probe_since < self._cool_down
        if remaining > 0 or probing:
            wait = max(remaining, 0.0)
            raise UpstreamUnavailable(
                f"upstream {self._name} is failing ({self.last_error or 'no answer'}); "
                f"meshgate stopped sending to it for {wait:.0f} s more"
            )
        self._probe_since = now
        return True

    def record_success(self) -> None:
        self._failed_calls.clear()
        self._opened_at = None
        self._probe_since = None
        self._cool_down = self._base_cool_down
        self.last_error = None
        self.reachable = True

    def record_failure(self, reason: str | None = None) -> None:
        """A call failed to reach the upstream (refused, reset, timed out, 5xx)."""
        self.last_error = reason or self.last_error or "no answer"
        self.reachable = False
        if self._probe_since is not None:  # the probe failed: stay open, longer
            self._probe_since = None
            self._cool_down = min(self._cool_down * 2, self._max_cool_down)
            self._opened_at = self._clock()
            return
        call = _current_call()
        if len(self._failed_calls) < self._threshold and (call is None or call not in self._failed_calls):
            self._failed_calls.append(call)
        if self._opened_at is None and len(self._failed_calls) >= self._threshold:
            self._opened_at = self._clock()

    def abandon(self, probe: bool) -> None:
        """A call let through ended without an outcome (its caller went away): a probe frees its place."""
        if probe:
            self._probe_since = None
