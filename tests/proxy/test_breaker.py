"""The circuit breaker's states."""

from __future__ import annotations

import pytest

from meshgate.connections.upstream.breaker import CircuitBreaker
from meshgate.errors import UpstreamUnavailable


def test_opens_after_threshold_and_lets_one_probe_through_after_cool_down() -> None:
    breaker = CircuitBreaker("up", threshold=3, cool_down_s=0.0)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "half_open"  # cool-down of 0 s has already passed
    breaker.before_call()  # the probe
    with pytest.raises(UpstreamUnavailable):
        breaker.before_call()  # only one probe at a time
    breaker.record_success()
    assert breaker.state == "closed"


def test_a_failed_probe_reopens() -> None:
    breaker = CircuitBreaker("up", threshold=1, cool_down_s=3600)
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(UpstreamUnavailable, match="stopped sending to it"):
        breaker.before_call()
