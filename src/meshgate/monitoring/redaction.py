"""Redaction of audit payloads: secrets by key name, and credentials, keys, emails and card numbers by shape.

Runs in the audit writer's background task, never on a proxied call. One compiled alternation scans each
string once; rules that need more than a regex (Luhn, entropy) look only at what their pattern matched.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache
from typing import Any

import orjson

from meshgate.monitoring.models import MAX_PAYLOAD_BYTES

REDACTED = "[REDACTED]"
_TRUNCATED = "…[truncated]"
STRING_PREVIEW = 8 * 1024  # characters of one string kept in the audit log

# -- key names ------------------------------------------------------------------------------------------

# Substrings that make any key name secret ("x-api-key", "Authorization_header", "db_connectionString").
_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase|code)?|secret|token|api[-_]?key|authorization|cookie|credential|private[-_]?key"
    r"|access[-_]?key|client[-_]?secret|session[-_]?id|\bauth\b|^auth$|signature|conn(ection)?[-_]?string",
    re.IGNORECASE,
)
# Whole words of a name (split at `_`, `-`, `.`, spaces and camelCase) that make it secret; short words
# only as words, so `mapping`, `spin`, `monkey` and `keyboard_layout` stay readable.
_SECRET_WORDS = frozenset({"pwd", "pin", "otp", "totp", "hotp", "dsn", "passcode"})
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


@lru_cache(maxsize=4096)  # the same few key names come back in every payload
def secret_name(key: str) -> bool:
    """Whether a field called `key` holds a secret (its value is replaced whatever it looks like)."""
    if _SECRET_NAME.search(key):
        return True
    words = [word.lower() for word in _WORDS.findall(key)]
    if not words:
        return False
    if any(word in _SECRET_WORDS for word in words) or words[0] == "private":
        return True
    # `key`, `key_id`, `signing_key`, `hmacKey`; a public key is not a secret.
    return words[0] == "key" or (words[-1] == "key" and (len(words) == 1 or words[-2] != "public"))


# -- shapes in text -------------------------------------------------------------------------------------

# A field name before a value in free text: the keyword, then `_rest`, `-rest` or `CamelRest` of the name.
_NAME_TAIL = r"(?:[_A-Z-][A-Za-z0-9_-]{0,40}?)?"
# Where a keyword may start: not inside a word, except as the next word of camelCase (`dbPassword`).
_WORD_START = r"(?:(?<![A-Za-z])|(?<=[a-z])(?=[A-Z]))"
_SEPARATOR = r"[\"']?\s{0,10}[:=]\s{0,10}[\"']?"
_VALUE = r"[^\"'\s,}&]{1,4096}"
_PAIR_WORDS = (
    r"pass(?:word|wd|phrase|code)?|pwd|pin|otp|secret|token|api[-_]?key|access[-_]?key|private[-_]?key"
    r"|client[-_]?secret|credentials?|dsn|conn(?:ection)?[-_]?string|key"
)
_NAMED = r"(?i:" + _PAIR_WORDS + r")" + _NAME_TAIL + _SEPARATOR
_SAID = r"(?i:pass(?:word|wd|phrase|code)?|pwd|pin|otp)\s{1,10}(?i:is|was)\s{1,10}[\"']?"
_BASE64ISH = "A-Za-z0-9_=+/-"

# Bounded repeats keep every branch linear: an unbounded local part made a 200 kB string take minutes.
# Where two rules can start at the same place the first listed wins, so the specific ones come first.
_RULES = (
    # the whole PEM block, BEGIN to END (or to the end of its base64 when the END line was cut off)
    r"(?P<pem>-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----"
    r"(?:[\s\S]{0,16384}?-----END [A-Z0-9 ]{0,40}-----|[A-Za-z0-9+/=\s\\:,-]{0,16384}))",
    r"(?P<jwt>eyJ[A-Za-z0-9_-]{5,8192}\.[A-Za-z0-9_-]{5,65536}\.[A-Za-z0-9_-]{0,8192})",
    # `Authorization: <scheme> <credential>`: scheme and credential both (an upstream may echo the header)
    r"(?P<authz>" + _WORD_START + r"(?i:(?:proxy[-_])?authorization)" + _NAME_TAIL + _SEPARATOR + r")"
    r"(?:[A-Za-z][A-Za-z0-9._~+/=-]{0,40}[ \t]{1,10})?" + _VALUE,
    r"(?P<bearer>(?i:\bbearer)\s+[A-Za-z0-9._~+/=-]{8,4096})",
    # the password of `scheme://user:password@host` (anchored at `://`: a scheme before it costs a scan per word)
    r"(?P<userinfo>://[^\s:/@]{0,256}:)[^\s@/]{1,256}(?=@)",
    r"(?P<key>\bmg_[A-Za-z0-9_-]{20,200}|\b(?:sk|pk|rk)-(?:live-|test-|proj-)?[A-Za-z0-9_-]{16,200}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)",
    r"(?P<token>\bgh[pousr]_[A-Za-z0-9]{20,255}|\bxox[abprs]-[A-Za-z0-9-]{10,255})",
    r"(?P<email>[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24})",
    # key=value or "key": "value" inside free text (query strings, reprs, logs, DSNs); "my password is hunter2"
    rf"(?P<pair>{_WORD_START}(?:{_NAMED}|{_SAID}))" + _VALUE,
    r"(?P<card>(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-]))",
)
# Long random-looking runs: an AWS secret access key (40 characters of base64), or any other token of
# 32+ characters. Checked for entropy after matching; a run that is not random is scanned by the rules
# above instead, so nothing inside it escapes them.
_RANDOM_RULES = (
    rf"(?P<aws>(?<![{_BASE64ISH}])[A-Za-z0-9/+]{{40}}(?![{_BASE64ISH}]))",
    rf"(?P<random>(?<![{_BASE64ISH}])[A-Za-z0-9_-]{{32,512}}={{0,2}}(?![{_BASE64ISH}]))",
)
_SHAPES_NOT_RANDOM = re.compile("|".join(_RULES))
_BY_NAME = {rule.removeprefix("(?P<").split(">", 1)[0]: rule for rule in (*_RULES, *_RANDOM_RULES)}

# What each rule cannot match without: a substring (of the case-folded text for the rules that ignore case),
# found by one C-speed search each. A string runs only the rules whose hint it has, in the order above, so
# ordinary text (prose, JSON, a megabyte of base64) is not scanned by seventeen branches at every character.
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12}")
_TOKEN_RUN = re.compile(r"[A-Za-z0-9/+_-]{32}")
_PAIR_HINTS = ("pass", "pwd", "pin", "otp", "secret", "token", "key", "credential", "dsn", "conn")


# Every hint above in one search of the case-folded text (a superset of each case-sensitive hint): most
# strings an audit record holds (names, ids, prose) have none, and that costs one C-speed scan.
_ANY_HINT = re.compile(
    "|".join(
        (
            "-----begin|eyj|authorization|bearer|://|mg_|sk-|pk-|rk-|akia|asia|gh[pousr]_|xox|@",
            *_PAIR_HINTS,
            _DIGIT_RUN.pattern,
            _TOKEN_RUN.pattern,
        )
    )
)


def _rules_present(text: str, folded: str) -> tuple[str, ...]:
    present = (
        ("pem", "-----BEGIN" in text),
        ("jwt", "eyJ" in text),
        ("authz", "authorization" in folded),
        ("bearer", "bearer" in folded),
        ("userinfo", "://" in text),
        ("key", any(hint in text for hint in ("mg_", "sk-", "pk-", "rk-", "AKIA", "ASIA"))),
        ("token", any(hint in text for hint in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox"))),
        ("email", "@" in text),
        ("pair", any(hint in folded for hint in _PAIR_HINTS)),
        ("card", _DIGIT_RUN.search(text) is not None),
    )
    names = tuple(name for name, found in present if found)
    return (*names, "aws", "random") if _TOKEN_RUN.search(text) else names


@lru_cache(maxsize=512)
def _shapes(names: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(_BY_NAME[name] for name in names))


_REPLACEMENTS = {
    "pem": "[PRIVATE_KEY]",
    "jwt": "[JWT]",
    "bearer": "Bearer [TOKEN]",
    "key": "[API_KEY]",
    "token": "[TOKEN]",
    "email": "[EMAIL]",
}
_PREFIXED = ("authz", "pair", "userinfo")  # the name stays, the value goes
_SHORTEST_SECRET = 6  # "a@b.cd"; anything shorter cannot match a shape
# Measured on random base62 strings of 32 characters: Shannon entropy at least 4.0 bits per character,
# and under half of the characters in word-like runs (`Name`, `name`); identifiers such as
# `getUserById_2024_v2_ExtraLongName` are mostly words.
_RANDOM_BITS = 4.0
_WORDLIKE = re.compile(r"[A-Z]?[a-z]{3,}")
_MOST_WORDLIKE = 0.5


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


def random_looking(text: str) -> bool:
    """Whether a run of token characters looks generated: upper, lower and digits mixed, high entropy, few words.

    Hex (digests, commit ids, UUIDs) does not mix upper and lower case, so ids stay readable."""
    if not (any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)):
        return False
    length = len(text)
    if sum(len(word) for word in _WORDLIKE.findall(text)) >= _MOST_WORDLIKE * length:
        return False
    bits = -sum(n / length * math.log2(n / length) for n in Counter(text).values())
    return bits >= _RANDOM_BITS


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup or ""
    if kind in _PREFIXED:
        return f"{match.group(kind)}{REDACTED}"
    if kind == "card":
        digits = match.group(0).replace(" ", "").replace("-", "")
        return "[CARD]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)
    if kind in {"aws", "random"}:
        text = match.group(0)
        return "[SECRET]" if random_looking(text.rstrip("=")) else _SHAPES_NOT_RANDOM.sub(_replace, text)
    return _REPLACEMENTS[kind]


def redact_text(text: str) -> str:
    """`text` with secret-shaped parts masked."""
    if len(text) < _SHORTEST_SECRET:
        return text
    folded = text.casefold()
    if _ANY_HINT.search(folded) is None:
        return text
    names = _rules_present(text, folded)
    return _shapes(names).sub(_replace, text) if names else text


class _Budget:
    """Characters of text still worth redacting: what comes after 64 KiB is cut from the stored payload."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_PAYLOAD_BYTES


def redact(value: Any, depth: int = 0, budget: _Budget | None = None) -> Any:
    """A copy of a JSON value with secret-named fields replaced and secret-shaped strings masked.

    A string keeps its first 8 KiB (`STRING_PREVIEW`), and once 64 KiB of text has been kept the rest is
    dropped: the stored payload is cut there anyway, and redacting what is not stored only costs time (a
    1 MB result used to cost the audit writer tens of milliseconds of regex work per call)."""
    budget = budget or _Budget()
    if depth > 64:
        return REDACTED
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and secret_name(key) else redact(item, depth + 1, budget)
            for key, item in value.items()  # pyright: ignore[reportUnknownVariableType]
        }
    if isinstance(value, list):
        return [redact(item, depth + 1, budget) for item in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, str):
        if budget.left <= 0:
            return _TRUNCATED
        kept = value if len(value) <= STRING_PREVIEW else value[:STRING_PREVIEW]
        budget.left -= len(kept)
        redacted = redact_text(kept)
        return redacted if kept is value else redacted + _TRUNCATED
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
