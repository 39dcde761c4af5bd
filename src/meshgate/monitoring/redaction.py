"""Redaction of audit payloads: secrets by key name, and emails, tokens, keys, JWTs and card numbers by shape."""

from __future__ import annotations

import re
from typing import Any

import orjson

from meshgate.monitoring.models import MAX_PAYLOAD_BYTES

REDACTED = "[REDACTED]"
_TRUNCATED = "…[truncated]"
_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|authorization|cookie|credential|private[-_]?key|access[-_]?key"
    r"|client[-_]?secret|session[-_]?id|\bauth\b|^auth$|signature",
    re.IGNORECASE,
)
# One alternation, scanned once per string (nine separate passes cost a third of the gateway's CPU).
# Bounded repeats keep every branch linear: an unbounded local part made a 200 kB string take minutes.
_SHAPES = re.compile(
    "|".join(
        (
            r"(?P<jwt>eyJ[A-Za-z0-9_-]{5,8192}\.[A-Za-z0-9_-]{5,65536}\.[A-Za-z0-9_-]{0,8192})",
            r"(?P<bearer>(?i:\bbearer)\s+[A-Za-z0-9._~+/=-]{8,4096})",
            r"(?P<key>\bmg_[A-Za-z0-9_-]{20,200}|\b(?:sk|pk|rk)-(?:live-|test-|proj-)?[A-Za-z0-9_-]{16,200}|\bAKIA[0-9A-Z]{16}\b)",
            r"(?P<token>\bgh[pousr]_[A-Za-z0-9]{20,255}|\bxox[abprs]-[A-Za-z0-9-]{10,255})",
            r"(?P<email>[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24})",
            # key=value or "key": "value" inside free text (query strings, reprs, logs)
            r"(?P<pair>(?i:pass(?:word|wd)?|secret|token|api[-_]?key|authorization|client[-_]?secret)[\"']?\s*[:=]\s*[\"']?)"
            r"[^\"'\s,}&]+",
            r"(?P<card>(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-]))",
        )
    )
)
_REPLACEMENTS = {"jwt": "[JWT]", "bearer": "Bearer [TOKEN]", "key": "[API_KEY]", "token": "[TOKEN]", "email": "[EMAIL]"}
_SHORTEST_SECRET = 6  # "a@b.cd"; anything shorter cannot match a shape


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup or ""
    if kind == "pair":
        return f"{match.group('pair')}[REDACTED]"
    if kind == "card":
        digits = match.group(0).replace(" ", "").replace("-", "")
        return "[CARD]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)
    return _REPLACEMENTS[kind]


def redact_text(text: str) -> str:
    """`text` with secret-shaped parts masked."""
    if len(text) < _SHORTEST_SECRET:
        return text
    return _SHAPES.sub(_replace, text)


def redact(value: Any, depth: int = 0) -> Any:
    """A copy of a JSON value with secret-named fields replaced and secret-shaped strings masked."""
    if depth > 64:
        return REDACTED
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and _SECRET_KEY.search(key) else redact(item, depth + 1)
            for key, item in value.items()  # pyright: ignore[reportUnknownVariableType]
        }
    if isinstance(value, list):
        return [redact(item, depth + 1) for item in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, str):
        # Stored payloads are cut at 64 KiB anyway; redacting more would only cost time.
        return redact_text(value if len(value) <= MAX_PAYLOAD_BYTES else cut(value))
    return value


def payload(value: Any) -> str | None:
    """Redacted JSON text of a value, cut at 64 KiB."""
    if value is None:
        return None
    text = orjson.dumps(redact(value), default=str).decode()
    return cut(text)


def cut(text: str) -> str:
    encoded = text.encode()
    if len(encoded) <= MAX_PAYLOAD_BYTES:
        return text
    room = MAX_PAYLOAD_BYTES - len(_TRUNCATED.encode())
    return encoded[:room].decode("utf-8", errors="ignore") + _TRUNCATED
