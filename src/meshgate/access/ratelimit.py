"""Rate limits per API key and per organization: token buckets in memory, sliced across replicas.

Every process keeps its own buckets (no database on the request path). To share a limit across the
processes that serve one database, each process takes 1/N of it, N being the replicas that reported a
heartbeat recently (see `meshgate.db.replicas`); with a load balancer spreading requests evenly the
sum is the configured limit.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from meshgate.errors import ConfigurationError, RateLimited

_SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*(?:,\s*burst\s*=\s*(\d+))?\s*$")
_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_MAX_BUCKETS = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    burst: float

    @classmethod
    def parse(cls, text: str, variable: str) -> Rate:
        """`100/s`, `6000/min`, `10/s,burst=50` (the burst defaults to one second's worth, at least 1)."""
        match = _SPEC.match(text)
        if match is None:
            raise ConfigurationError(f"{variable}={text!r} is not a rate; use e.g. 100/s, 6000/min or 10/s,burst=50")
        per_second = float(match.group(1)) / _SECONDS[match.group(2)]
        burst = float(match.group(3)) if match.group(3) else max(1.0, per_second)
        if per_second <= 0:
            raise ConfigurationError(f"{variable} must be above 0")
        return cls(per_second, burst)


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.updated = now


class TokenBuckets:
    """Named token buckets, refilled continuously on an injectable clock.

    At most 100,000 are kept; past that all are forgotten at once (memory stays bounded)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, name: str, rate: Rate, share: float = 1.0) -> float | None:
        """Take one token: None when there was one, else the seconds until there is (nothing is taken)."""
        per_second = rate.per_second * share
        burst = max(1.0, rate.burst * share)
        now = self._clock()
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._buckets.clear()
            bucket = self._buckets[name] = _Bucket(burst, now)
        else:
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * per_second)
            bucket.updated = now
        if bucket.tokens < 1:
            return (1 - bucket.tokens) / per_second
        bucket.tokens -= 1
        return None

    def give_back(self, name: str, rate: Rate) -> None:
        """Return a token taken earlier (the attempt it paid for turned out not to count)."""
        bucket = self._buckets.get(name)
        if bucket is not None:
            bucket.tokens = min(max(1.0, rate.burst), bucket.tokens + 1)


class RateLimiter:
    """Token buckets for keys and organizations; `check` raises `RateLimited` with a retry delay."""

    def __init__(
        self, per_key: Rate | None, per_organization: Rate | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_key = per_key
        self._per_org = per_organization
        self._buckets = TokenBuckets(clock)
        self.share = 1.0  # this process's slice of every limit (1/N for N live replicas)

    @property
    def enabled(self) -> bool:
        return self._per_key is not None or self._per_org is not None

    def check(self, organization_id: str, key_id: str | None) -> None:
        if self._per_org is not None:
            self._take(f"o:{organization_id}", self._per_org, "organization")
        if self._per_key is not None and key_id is not None:
            self._take(f"k:{key_id}", self._per_key, "API key")

    def _take(self, name: str, rate: Rate, what: str) -> None:
        wait = self._buckets.take(name, rate, self.share)
        if wait is not None:
            raise RateLimited(f"rate limit of this {what} reached; retry in {wait:.1f} s", retry_after=wait)
