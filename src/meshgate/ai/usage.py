"""AI usage: request rates and token budgets per credential and per organization (token buckets in memory, as
`meshgate.access.ratelimit`), and one audit record per AI call through the audit writer's queue (model,
caller, tokens in and out, latency, cost; never the answer, and the prompt only for an organization that set
`ai_keep_prompts`, redacted by the writer). Nothing here waits on the database."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from meshgate.access import Principal
from meshgate.access.ratelimit import Rate, TokenBuckets
from meshgate.ai.prices import cost_usd
from meshgate.errors import MeshgateError, RateLimited, TokenBudgetExhausted
from meshgate.monitoring.models import AuditEntry
from meshgate.monitoring.writer import AuditWriter

CHAT, EMBEDDINGS = "ai/chat.completions", "ai/embeddings"  # the audit's `method` of AI calls
_CUT_SHORT = "the client closed the stream before its end"


@dataclass(slots=True)
class Tokens:
    """What the provider counted for one call; filled in as its answer (or its stream) is read."""

    tokens_in: int | None = None
    tokens_out: int | None = None

    def read(self, usage: Any) -> None:
        """From OpenAI's `usage` object (`prompt_tokens`, `completion_tokens`)."""
        if isinstance(usage, dict):
            given: dict[str, Any] = usage  # pyright: ignore[reportUnknownVariableType]
            prompt, completion = given.get("prompt_tokens"), given.get("completion_tokens")
            if isinstance(prompt, int):
                self.tokens_in = prompt
            if isinstance(completion, int):
                self.tokens_out = completion

    @property
    def total(self) -> int:
        return (self.tokens_in or 0) + (self.tokens_out or 0)


@dataclass(frozen=True, slots=True)
class AiLimitSettings:
    rate_per_key: Rate | None = None
    rate_per_organization: Rate | None = None
    tokens_per_key: Rate | None = None
    tokens_per_organization: Rate | None = None


class AiLimits:
    """Checked before an AI call reaches its provider; the tokens it used are taken from the budgets after it
    (a budget may then go into debt and refuses until it has refilled)."""

    def __init__(self, limits: AiLimitSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._buckets = TokenBuckets(clock)
        self.share = 1.0  # this process's slice of every limit (1/N for N live replicas)

    def admit(self, principal: Principal) -> None:
        limits, share, key = self._limits, self.share, principal.credential_id
        org = principal.organization_id
        rates: list[tuple[str, Rate]] = []
        if limits.rate_per_organization is not None:
            rates.append((f"ro:{org}", limits.rate_per_organization))
        if limits.rate_per_key is not None and key is not None:
            rates.append((f"rk:{key}", limits.rate_per_key))
        if limits.tokens_per_organization is not None:
            wait = self._buckets.wait(f"to:{org}", limits.tokens_per_organization, share)
            if wait is not None:
                _refuse_tokens("organization", limits.tokens_per_organization, wait)
        if limits.tokens_per_key is not None and key is not None:
            wait = self._buckets.wait(f"tk:{key}", limits.tokens_per_key, share)
            if wait is not None:
                _refuse_tokens("credential", limits.tokens_per_key, wait)
        if rates and (refused := self._buckets.take_all(rates, share)) is not None:
            position, wait = refused
            what = "organization" if rates[position][0].startswith("ro:") else "credential"
            raise RateLimited(f"AI request rate limit of this {what} reached; retry in {wait:.1f} s", retry_after=wait)

    def spend(self, principal: Principal, tokens: int) -> None:
        limits, share, key = self._limits, self.share, principal.credential_id
        if tokens <= 0:
            return
        if limits.tokens_per_organization is not None:
            self._buckets.spend(f"to:{principal.organization_id}", limits.tokens_per_organization, tokens, share)
        if limits.tokens_per_key is not None and key is not None:
            self._buckets.spend(f"tk:{key}", limits.tokens_per_key, tokens, share)


def _refuse_tokens(what: str, budget: Rate, wait: float) -> None:
    raise TokenBudgetExhausted(
        f"the AI token budget of this {what} is used up ({budget.burst:g} tokens, refilled at"
        f" {budget.per_second * 3600:g} per hour); retry in {wait:.1f} s",
        retry_after=wait,
    )


@dataclass(slots=True)
class AiCall:
    """One AI call under way: who, which model, since when; `finish` audits it and takes its tokens."""

    meter: AiMeter
    principal: Principal
    method: str
    user_agent: str | None
    request_id: str | None
    started: float = field(default_factory=time.perf_counter)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    tokens: Tokens = field(default_factory=Tokens)
    model: str | None = None  # as the caller wrote it (`openai/gpt-4o`)
    provider_model: str | None = None  # the provider's own name, which prices are kept by
    prompt: Any = None  # what was sent, only for an organization that keeps prompts (redacted when written)
    finished: bool = False

    def finish(self, error: MeshgateError | None = None, *, cut_short: bool = False) -> None:
        """Audit the call (once) and take its tokens from the budgets; `cut_short`: a stream the client left."""
        if not self.finished:
            self.finished = True
            self.meter.finish(self, error, cut_short=cut_short)


class AiMeter:
    """Limits AI calls and audits each one."""

    def __init__(self, audit: AuditWriter, limits: AiLimits) -> None:
        self._audit = audit
        self.limits = limits

    def start(self, principal: Principal, method: str, user_agent: str | None, request_id: str | None) -> AiCall:
        return AiCall(self, principal, method, user_agent, request_id)

    def admit(self, call: AiCall) -> None:
        """The limits' check; a call they refuse is not audited (a flood of refusals would fill the audit log)."""
        try:
            self.limits.admit(call.principal)
        except RateLimited:
            call.finished = True
            raise

    def finish(self, call: AiCall, error: MeshgateError | None, *, cut_short: bool = False) -> None:
        tokens = call.tokens
        principal = call.principal
        self.limits.spend(principal, tokens.total)
        price = (
            None if call.provider_model is None else cost_usd(call.provider_model, tokens.tokens_in, tokens.tokens_out)
        )
        self._audit.record(
            AuditEntry(
                organization_id=principal.organization_id,
                connection_id=None,
                method=call.method,
                tool_name=call.model,
                user_id=principal.user_id,
                api_key_id=principal.api_key_id,
                user_agent=call.user_agent,
                request_id=call.request_id,
                protocol_version=None,
                params=call.prompt,  # None unless the organization keeps prompts
                message_id=None,
                started_at=call.started_at,
                duration_ms=(time.perf_counter() - call.started) * 1000,
                is_error=error is not None or cut_short,
                error_message=f"{error.code}: {error.message}"
                if error is not None
                else _CUT_SHORT
                if cut_short
                else None,
                client_id=principal.client_id,
                by_connection=principal.connection_id is not None,
                announced=False,
                tokens_in=tokens.tokens_in,
                tokens_out=tokens.tokens_out,
                cost_usd=price,
            )
        )
