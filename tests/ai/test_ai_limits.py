"""AI token budgets and request rates on an injected clock, and the price table."""

from __future__ import annotations

import pytest

from meshgate.access import Principal
from meshgate.access.ratelimit import Rate
from meshgate.ai.prices import cost_usd
from meshgate.ai.usage import AiLimits, AiLimitSettings
from meshgate.errors import ConfigurationError, RateLimited, TokenBudgetExhausted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def caller(key: str | None = "key-1", org: str = "org-1") -> Principal:
    return Principal(user_id="u", organization_id=org, organization_slug="o", role="owner", grants=(), api_key_id=key)


def test_a_budget_in_debt_refuses_until_it_has_refilled() -> None:
    clock = Clock()
    limits = AiLimits(AiLimitSettings(tokens_per_key=Rate.parse_budget("3600/h", "X")), clock)
    limits.admit(caller())
    limits.spend(caller(), 4000)  # 400 tokens of debt: refilled at one a second
    with pytest.raises(TokenBudgetExhausted) as refused:
        limits.admit(caller())
    assert refused.value.retry_after == pytest.approx(401)
    limits.admit(caller("key-2"))  # another key has its own budget
    clock.now += 400
    with pytest.raises(TokenBudgetExhausted):
        limits.admit(caller())
    clock.now += 1
    limits.admit(caller())


def test_a_debt_is_bounded_by_one_budget() -> None:
    clock = Clock()
    limits = AiLimits(AiLimitSettings(tokens_per_organization=Rate.parse_budget("100/s,burst=100", "X")), clock)
    limits.spend(caller(), 1_000_000)  # one huge answer costs at most one more period: 100 below zero
    clock.now += 1.0
    with pytest.raises(TokenBudgetExhausted):
        limits.admit(caller())
    clock.now += 0.05
    limits.admit(caller())


def test_a_request_refused_by_the_key_rate_gives_the_organization_its_token_back() -> None:
    clock = Clock()
    settings = AiLimitSettings(rate_per_key=Rate(1, 1), rate_per_organization=Rate(1, 2))
    limits = AiLimits(settings, clock)
    limits.admit(caller())
    with pytest.raises(RateLimited, match="of this credential"):
        limits.admit(caller())
    limits.admit(caller("key-2"))  # the organization still had its second token
    with pytest.raises(RateLimited, match="of this organization"):
        limits.admit(caller("key-3"))


def test_a_budget_without_a_burst_can_be_used_at_once() -> None:
    assert Rate.parse_budget("1000000/day", "X") == Rate(1000000 / 86400, 1000000)
    assert Rate.parse_budget("10/s,burst=50", "X") == Rate(10, 50)
    with pytest.raises(ConfigurationError, match="100000/day"):
        Rate.parse_budget("lots", "MESHGATE_AI_TOKEN_BUDGET_KEY")


def test_prices_cover_dated_snapshots_and_know_nothing_of_unlisted_models() -> None:
    assert cost_usd("gpt-4o-2024-08-06", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert cost_usd("claude-sonnet-4-20250514", 1000, 0) == pytest.approx(0.003)
    assert cost_usd("openai/gpt-4o-mini", 0, 1_000_000) == pytest.approx(0.6)  # OpenRouter's vendor prefix
    assert cost_usd("llama3.2", 10, 10) is None
    assert cost_usd("gpt-4o", None, None) is None
