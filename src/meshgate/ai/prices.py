"""What AI calls cost: list prices in US dollars per million tokens (input, output), by the provider's own model
name. A model not listed here (local models, new ones) has no cost in the audit, not a guessed one.

Prices are the providers' published list prices for standard, non-batch use, checked 2025; a cached-input
discount or a negotiated price is not known to meshgate."""

from __future__ import annotations

import re

PER_MILLION: dict[str, tuple[float, float]] = {
    # OpenAI (openai.com/api/pricing)
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    # Anthropic (anthropic.com/pricing)
    "claude-opus-4": (15.00, 75.00),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    # Google Gemini (ai.google.dev/pricing, prompts up to 200k tokens)
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.0-flash": (0.10, 0.40),
}
# A dated snapshot costs what its model costs: `gpt-4o-2024-08-06`, `claude-sonnet-4-20250514`.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def cost_usd(model: str, tokens_in: int | None, tokens_out: int | None) -> float | None:
    """The price of one call of `model` (the provider's name for it; an OpenRouter-style `vendor/` prefix is
    ignored), or None when the model or its token counts are unknown."""
    if tokens_in is None and tokens_out is None:
        return None
    name = _SNAPSHOT.sub("", model.rsplit("/", 1)[-1].lower())
    price = PER_MILLION.get(name)
    if price is None:
        return None
    return round(((tokens_in or 0) * price[0] + (tokens_out or 0) * price[1]) / 1_000_000, 8)
