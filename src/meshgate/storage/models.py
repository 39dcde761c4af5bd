"""Object keys, their rules, and what the object tools answer with.

A key is what a caller names (`reports/2026/q4.pdf`); the store holds it under the organization's prefix
(`<organization id>/reports/2026/q4.pdf`), which callers never see and cannot leave.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshgate.errors import InvalidInput

MAX_KEY_BYTES = 960  # S3 allows 1024 bytes; the organization's prefix (37 bytes) takes part of the rest
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MIN_EXPIRES_S, MAX_EXPIRES_S, DEFAULT_EXPIRES_S = 1, 3600, 300
MAX_DELETE_KEYS = 1000  # S3's DeleteObjects takes at most 1000 keys
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}(\s*;\s*[\x20-\x7e]{1,200})?$")
_KEY_RULES = (
    "a key is 1-960 bytes of UTF-8 text in '/'-separated segments, not starting with '/', with no empty, '.' or"
    " '..' segment, no backslash and no control character"
)


def _problem(text: str) -> str | None:
    """What is wrong with `text` as a path of segments (shared by keys and prefixes), or None."""
    if len(text.encode()) > MAX_KEY_BYTES:
        return f"it is longer than {MAX_KEY_BYTES} bytes"
    if text.startswith("/"):
        return "it is absolute (starts with '/')"
    if "\\" in text:
        return "it contains a backslash"
    if any(unicodedata.category(ch) in ("Cc", "Cs") or ch in "\u2028\u2029" for ch in text):
        return "it contains a control character"
    return None


def checked_key(key: str) -> str:
    """`key` if it names an object inside the organization's prefix; else InvalidInput saying why."""
    problem = _problem(key) or (None if key else "it is empty")
    segments = key.split("/")
    if problem is None and any(segment in ("", ".", "..") for segment in segments):
        problem = "it has an empty, '.' or '..' segment"
    if problem is not None:
        raise InvalidInput(f"key {key[:100]!r} is refused: {problem}; {_KEY_RULES}")
    return key


def checked_keys(keys: list[str]) -> list[str]:
    """1..1000 distinct keys, each `checked_key`."""
    if not 1 <= len(keys) <= MAX_DELETE_KEYS:
        raise InvalidInput(f"keys must list 1 to {MAX_DELETE_KEYS} keys; it lists {len(keys)}")
    return list(dict.fromkeys(checked_key(key) for key in keys))


def checked_prefix(prefix: str | None) -> str:
    """A listing prefix: empty, or the start of a key (it may end with '/'; no '.' or '..' segment)."""
    if not prefix:
        return ""
    problem = _problem(prefix)
    inner = prefix.split("/")
    if problem is None and (any(segment in ("", ".", "..") for segment in inner[:-1]) or inner[-1] in (".", "..")):
        problem = "it has an empty, '.' or '..' segment"
    if problem is not None:
        raise InvalidInput(f"prefix {prefix[:100]!r} is refused: {problem}; {_KEY_RULES}")
    return prefix


def checked_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit is {limit}; it must be between 1 and {MAX_LIMIT} (default {DEFAULT_LIMIT})")
    return limit


def checked_expires_in(expires_in: int | None) -> int:
    if expires_in is None:
        return DEFAULT_EXPIRES_S
    if not MIN_EXPIRES_S <= expires_in <= MAX_EXPIRES_S:
        raise InvalidInput(
            f"expiresIn is {expires_in}; it must be between {MIN_EXPIRES_S} and {MAX_EXPIRES_S} seconds"
            f" (default {DEFAULT_EXPIRES_S})"
        )
    return expires_in


def checked_content_type(content_type: str | None) -> str | None:
    if content_type is None or content_type == "":
        return None
    if not _CONTENT_TYPE.match(content_type):
        raise InvalidInput(
            f"contentType {content_type[:100]!r} is not a media type such as 'application/pdf' or"
            " 'text/plain; charset=utf-8' (printable ASCII, at most 455 characters)"
        )
    return content_type


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One stored object as a store reports it; `key` is the store's full key until the service strips it."""

    key: str
    size: int
    last_modified: datetime
    etag: str | None
    content_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "size": self.size,
            "lastModified": self.last_modified.isoformat().replace("+00:00", "Z"),
            "etag": self.etag,
            "contentType": self.content_type,
        }


@dataclass(frozen=True, slots=True)
class ObjectPage:
    """Objects in key order; `next_cursor` is the last key when more follow (pass it back as `cursor`)."""

    items: list[ObjectInfo]
    next_cursor: str | None
