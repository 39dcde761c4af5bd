"""Rate limits per API key and per organization: token buckets in memory, sliced across replicas.

Every process keeps its own buckets (no database on the request path). To share a limit across the
processes that serve one database, each process takes 1/N of it, N being the replicas that reported a
heartbeat recently (see `meshgate.db.replicas`); with a load balancer spreading requests evenly the
sum is the configured limit.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from meshgate.errors import ConfigurationError, RateLimited

_SPEC = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*(?:,\s*burst\s*=\s*(\d+))?\s*$"
)
_SECONDS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_MAX_BUCKETS = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    burst: float

    @classmethod
    def parse(cls, text: str, variable: str) -> Rate:
        """`100/s`, `6000/min`, `10/s,burst=50`, `9000/day` (the burst defaults to one second's worth, at least 1)."""
        match = _SPEC.match(text)
        if match is None:
            raise ConfigurationError(
                f"{variable}={text!r} is not a rate; use e.g. 100/s, 6000/min, 10/s,burst=50 or 100000/day"
            )
        per_second = float(match.group(1)) / _SECONDS[match.group(2)]
        burst = float(match.group(3)) if match.group(3) else max(1.0, per_second)
        if per_second <= 0:
            raise ConfigurationError(f"{variable} must be above 0")
        return cls(per_second, burst)

    @classmethod
    def parse_budget(cls, text: str, variable: str) -> Rate:
        """A budget such as `100000/h` or `1000000/day`: unless a burst is given, a whole period's worth can be
        used at once (a rate's default burst of one second would refuse any long answer)."""
        rate = cls.parse(text, variable)
        if "burst" in text:
            return rate
        return cls(rate.per_second, float(text.split("/", 1)[0]))


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
        bucket = self._refilled(name, rate, share)
        if bucket.tokens < 1:
            return (1 - bucket.tokens) / (rate.per_second * share)
        bucket.tokens -= 1
        return None

    def wait(self, name: str, rate: Rate, share: float = 1.0) -> float | None:
        """None when the bucket holds a token, else the seconds until it does; nothing is taken."""
        bucket = self._refilled(name, rate, share)
        return None if bucket.tokens >= 1 else (1 - bucket.tokens) / (rate.per_second * share)

    def spend(self, name: str, rate: Rate, amount: float, share: float = 1.0) -> None:
        """Take `amount` tokens known only afterwards (an AI call's tokens): the bucket may go into debt, down to
        one burst below zero, and `wait` refuses until it has refilled."""
        bucket = self._refilled(name, rate, share)
        bucket.tokens = max(-max(1.0, rate.burst * share), bucket.tokens - amount)

    def _refilled(self, name: str, rate: Rate, share: float) -> _Bucket:
        burst = max(1.0, rate.burst * share)
        now = self._clock()
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._buckets.clear()
            bucket = self._buckets[name] = _Bucket(burst, now)
        else:
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate.per_second * share)
            bucket.updated = now
        return bucket

    def take_all(self, budgets: Sequence[tuple[str, Rate]], share: float = 1.0) -> tuple[int, float] | None:
        """Take one token from each bucket, or from none: None when all had one, else the position of the
        first empty bucket and the seconds until it has one (tokens taken before it are given back, so a
        refused attempt costs no budget, and one caller over its own limit cannot drain a shared one)."""
        for position, (name, rate) in enumerate(budgets):
            wait = self.take(name, rate, share)
            if wait is not None:
                for taken, taken_rate in budgets[:position]:
                    self.give_back(taken, taken_rate, share)
                return position, wait
        return None

    def give_back(self, name: str, rate: Rate, share: float = 1.0) -> None:
        """Return a token taken earlier (the attempt it paid for turned out not to count)."""
        bucket = self._buckets.get(name)
        if bucket is not None:
            bucket.tokens = min(max(1.0, rate.burst * share), bucket.tokens + 1)


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
        # take_all's rule, written out: this runs on every proxied call and builds no lists
        per_org, per_key, share = self._per_org, self._per_key, self.share
        org = f"o:{organization_id}"
        if per_org is not None and (wait := self._buckets.take(org, per_org, share)) is not None:
            self._refuse("organization", wait)
        if per_key is not None and key_id is not None:
            wait = self._buckets.take(f"k:{key_id}", per_key, share)
            if wait is not None:
                if per_org is not None:  # a key over its own limit does not drain its organization's budget
                    self._buckets.give_back(org, per_org, share)
                self._refuse("API key", wait)

    @staticmethod
    def _refuse(what: str, wait: float) -> NoReturn:
        raise RateLimited(f"rate limit of this {what} reached; retry in {wait:.1f} s", retry_after=wait)
