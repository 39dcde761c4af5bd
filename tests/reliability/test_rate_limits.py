"""Rate limits per key and per organization: 429 with Retry-After, sliced across replicas."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from meshgate.access.ratelimit import Rate, RateLimiter
from meshgate.errors import ConfigurationError, RateLimited
from support.databases import fresh_database
from support.gateway import Gateway, Upstream, create_connection, free_port, start_gateway


def test_rates_parse_and_refuse_nonsense() -> None:
    assert Rate.parse("100/s", "X") == Rate(100, 100)
    assert Rate.parse("600/min", "X") == Rate(10, 10)
    assert Rate.parse("2/s, burst=7", "X") == Rate(2, 7)
    with pytest.raises(ConfigurationError, match=r"use e\.g\. 100/s"):
        Rate.parse("fast", "MESHGATE_RATE_LIMIT_KEY")


def test_bucket_refuses_past_the_burst_and_says_when_to_retry() -> None:
    limiter = RateLimiter(Rate(1, 3), None)
    for _ in range(3):
        limiter.check("org", "key")
    with pytest.raises(RateLimited) as refused:
        limiter.check("org", "key")
    assert 0 < refused.value.retry_after <= 1
    limiter.check("org", "other-key")  # keys have their own buckets


def test_bucket_refills_at_its_rate_and_never_past_its_burst() -> None:
    now = [100.0]
    limiter = RateLimiter(Rate(2, 3), None, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("org", "key")
    with pytest.raises(RateLimited) as refused:
        limiter.check("org", "key")
    assert refused.value.retry_after == pytest.approx(0.5)
    now[0] += 0.4  # 0.8 of a token: still refused, and told how much longer
    with pytest.raises(RateLimited) as refused:
        limiter.check("org", "key")
    assert refused.value.retry_after == pytest.approx(0.1)
    now[0] += 0.1
    limiter.check("org", "key")
    now[0] += 3600  # an idle hour fills the bucket to its burst, not beyond
    for _ in range(3):
        limiter.check("org", "key")
    with pytest.raises(RateLimited):
        limiter.check("org", "key")


def test_organization_bucket_is_shared_by_its_keys_and_sliced_by_replicas() -> None:
    limiter = RateLimiter(None, Rate(1, 4))
    limiter.share = 0.5  # two replicas: this one takes half
    limiter.check("org", "a")
    limiter.check("org", "b")
    with pytest.raises(RateLimited, match="organization"):
        limiter.check("org", "c")


def test_a_key_over_its_own_limit_does_not_drain_its_organization() -> None:
    now = [100.0]
    limiter = RateLimiter(Rate(1, 2), Rate(1, 4), clock=lambda: now[0])
    limiter.check("org", "greedy")
    limiter.check("org", "greedy")
    for _ in range(10):  # refused by its own bucket: the organization's tokens are given back
        with pytest.raises(RateLimited, match="API key"):
            limiter.check("org", "greedy")
    limiter.check("org", "other")
    limiter.check("org", "other")
    with pytest.raises(RateLimited, match="organization"):
        limiter.check("org", "third")


def _call(url: str, key: str) -> httpx.Response:
    return httpx.post(f"{url}/call-tool/add", json={"a": 1, "b": 1}, headers={"authorization": f"Bearer {key}"})


def test_gateway_answers_429_with_retry_after_per_key(tmp_path: Path, upstream: Upstream) -> None:
    # One token a minute: the bucket cannot refill noticeably during the test, however slow the machine.
    # Refilling itself is shown on an injected clock above.
    with fresh_database("sqlite", tmp_path) as url:
        gw = start_gateway(url, tmp_path, MESHGATE_RATE_LIMIT_KEY="1/min,burst=5")
        try:
            owner = gw.bootstrap("rate@example.com")
            conn_url = create_connection(gw, owner.api_key, upstream)  # uses one token
            statuses = [_call(conn_url, owner.api_key).status_code for _ in range(5)]
            assert statuses == [200, 200, 200, 200, 429]
            refused = _call(conn_url, owner.api_key)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(refused.headers["retry-after"]) <= 60
            # The management endpoint shares the bucket (both go through the same admission checks).
            listed = httpx.post(
                gw.mcp_url,
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"authorization": f"Bearer {owner.api_key}", "accept": "application/json, text/event-stream"},
            )
            assert listed.status_code == 429
            assert 1 <= int(listed.headers["retry-after"]) <= 60
        finally:
            assert gw.stop() == 0


def test_organization_limit_is_shared_across_processes(tmp_path: Path, upstream: Upstream) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        first = start_gateway(
            url, tmp_path, "first", MESHGATE_RATE_LIMIT_ORG="1/min,burst=10", MESHGATE_REPLICA_HEARTBEAT_SECONDS="0.2"
        )
        second = Gateway(env=first.env, port=free_port()).start(tmp_path / "second.log")
        try:
            owner = first.bootstrap("shared@example.com")
            conn_url = create_connection(first, owner.api_key, upstream)  # one token on the first process
            path = conn_url.removeprefix(first.url)
            deadline = time.monotonic() + 30
            while not all("meshgate_replicas 2.0" in g.scrape() for g in (first, second)):
                assert time.monotonic() < deadline, "the replicas did not see each other"
                time.sleep(0.1)
            ok = 0
            for _ in range(10):
                for gateway in (first, second):
                    ok += int(_call(gateway.url + path, owner.api_key).status_code == 200)
            # burst 10 sliced in two: 5 per process, one of them already used for creating the connection
            assert ok == 9
        finally:
            assert second.stop() == 0
            assert first.stop() == 0
