"""Checks on identity input that give a person an actionable message."""

from __future__ import annotations

import re
import unicodedata

from meshgate.errors import InvalidInput

MAX_NAME = 100
MAX_DESCRIPTION = 2000
_ROLE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def clean_name(value: str, *, field: str = "name", limit: int = MAX_NAME) -> str:
    name = value.strip()
    if not name:
        raise InvalidInput(f"{field} must not be empty")
    if len(name) > limit:
        raise InvalidInput(f"{field} is {len(name)} characters long; at most {limit} are allowed")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidInput(f"{field} must not contain control characters")
    return name


def clean_description(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_DESCRIPTION:
        raise InvalidInput(f"description is {len(value)} characters long; at most {MAX_DESCRIPTION} are allowed")
    return value


def clean_role_name(value: str) -> str:
    if not _ROLE_NAME.match(value):
        raise InvalidInput(
            f"role name {value[:80]!r} is not allowed: use 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:60] or "org"
