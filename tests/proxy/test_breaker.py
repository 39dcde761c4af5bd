"""The circuit breaker's states, on an injected clock (no sleeping)."""

from __future__ import annotations

import asyncio

import pytest

from meshgate.connections.upstream.breaker import CircuitBreaker, one_call
from meshgate.errors import UpstreamUnavailable

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _failed_call(breaker: CircuitBreaker, reason: str = "unreachable: refused") -> None:
    """One call in its own task, as each proxied request is."""

    async def call() -> None:
        breaker.before_call()
        breaker.record_failure(reason)

    await asyncio.get_running_loop().create_task(call())


async def _opened(clock: Clock, *, threshold: int = 3, cool_down_s: float = 5.0) -> CircuitBreaker:
    breaker = CircuitBreaker("up", threshold=threshold, cool_down_s=cool_down_s, max_cool_down_s=20.0, clock=clock)
    for _ in range(threshold):
        await _failed_call(breaker)
    assert breaker.state == "open"
    return breaker


async def test_one_call_failing_again_and_again_does_not_open_the_circuit() -> None:
    breaker = CircuitBreaker("up", threshold=3, clock=Clock())
    for _ in range(10):
        breaker.before_call()
        breaker.record_failure("unreachable: refused")  # retries of one call, in one task
    assert breaker.state == "closed"
    assert breaker.failures == 1
    breaker.before_call()


async def test_failures_of_different_calls_open_the_circuit_at_the_threshold() -> None:
    breaker = CircuitBreaker("up", threshold=3, clock=Clock())
    for _ in range(2):
        await _failed_call(breaker)
    assert breaker.state == "closed"
    await _failed_call(breaker, "unreachable: connection refused")
    assert breaker.state == "open"
    with pytest.raises(UpstreamUnavailable, match=r"is failing \(unreachable: connection refused\).*5 s more"):
        breaker.before_call()


async def test_the_parallel_tasks_of_one_call_count_once() -> None:
    breaker = CircuitBreaker("up", threshold=3, clock=Clock())

    async def part() -> None:
        breaker.before_call()
        breaker.record_failure("unreachable: refused")

    with one_call():
        await asyncio.gather(*(part() for _ in range(4)))
    assert breaker.failures == 1
    assert breaker.state == "closed"


async def test_a_success_between_failures_starts_the_count_again() -> None:
    breaker = CircuitBreaker("up", threshold=3, clock=Clock())
    for _ in range(2):
        await _failed_call(breaker)
    breaker.record_success()
    for _ in range(2):
        await _failed_call(breaker)
    assert breaker.state == "closed"
    assert breaker.last_error == "unreachable: refused"


async def test_one_probe_goes_through_as_soon_as_the_cool_down_has_passed() -> None:
    clock = Clock()
    breaker = await _opened(clock)
    clock.now += 4.9
    with pytest.raises(UpstreamUnavailable):
        breaker.before_call()
    clock.now += 0.1
    assert breaker.state == "half_open"
    assert breaker.before_call() is True  # the probe
    with pytest.raises(UpstreamUnavailable):
        breaker.before_call()  # one probe at a time


async def test_a_successful_probe_closes_the_circuit() -> None:
    clock = Clock()
    breaker = await _opened(clock)
    clock.now += 5
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.failures == 0
    assert breaker.last_error is None
    assert breaker.before_call() is False


async def test_a_failed_probe_reopens_for_twice_the_cool_down_up_to_the_maximum() -> None:
    clock = Clock()
    breaker = await _opened(clock)
    for expected in (10.0, 20.0, 20.0):
        clock.now += 100
        breaker.before_call()
        breaker.record_failure("unreachable: refused")
        assert breaker.state == "open"
        clock.now += expected - 0.1
        with pytest.raises(UpstreamUnavailable):
            breaker.before_call()
        clock.now += 0.1
        assert breaker.state == "half_open"
    breaker.before_call()
    breaker.record_success()
    clock.now += 100
    for _ in range(3):
        await _failed_call(breaker)
    clock.now += 5  # a success reset the cool-down to its base
    assert breaker.state == "half_open"


async def test_a_probe_that_never_reports_frees_its_place_after_one_cool_down() -> None:
    clock = Clock()
    breaker = await _opened(clock)
    clock.now += 5
    breaker.before_call()  # a probe whose caller vanished without an outcome
    clock.now += 4.9
    with pytest.raises(UpstreamUnavailable):
        breaker.before_call()
    clock.now += 0.1
    assert breaker.before_call() is True


async def test_an_abandoned_probe_lets_the_next_call_probe_at_once() -> None:
    clock = Clock()
    breaker = await _opened(clock)
    clock.now += 5
    probe = breaker.before_call()
    breaker.abandon(probe)  # cancelled
    assert breaker.before_call() is True
