"""Every credential the tests hand to a gateway; the test run ends by grepping gateway logs for them."""

from __future__ import annotations

SECRETS: set[str] = set()


def remember_secret(value: str) -> str:
    SECRETS.add(value)
    return value
