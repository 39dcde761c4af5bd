"""A circuit breaker per upstream: after repeated failures, stop sending for a while, then probe."""

from __future__ import annotations

import time

from meshgate.errors import UpstreamUnavailable


class CircuitBreaker:
    """closed → (threshold consecutive failures) → open → (cool-down) → half-open: one probe decides."""

    def __init__(self, name: str, *, threshold: int = 5, cool_down_s: float = 30.0) -> None:
        self._name = name
        self._threshold = threshold
        self._cool_down = cool_down_s
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def failures(self) -> int:
        return self._failures

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if time.monotonic() - self._opened_at >= self._cool_down else "open"

    def before_call(self) -> None:
        """Raise while open; let exactly one probe through once the cool-down has passed."""
        if self._opened_at is None:
            return
        remaining = self._cool_down - (time.monotonic() - self._opened_at)
        if remaining > 0 or self._probing:
            wait = max(remaining, 0.0)
            raise UpstreamUnavailable(
                f"upstream {self._name} is failing; meshgate stopped sending to it for {wait:.0f} s more"
            )
        self._probing = True

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self._threshold:
            self._opened_at = time.monotonic()
        self._probing = False
