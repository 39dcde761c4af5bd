"""Names clients see on a virtual MCP: `<connection slug>_<name>`, always a valid MCP tool name.

A name that already starts with its connection's slug (`git_status` on connection `git`, or `git` itself)
keeps it once instead of repeating it (`git_status`, not `git_git_status`).

Valid means `[A-Za-z0-9_.-]`, 1-64 characters. A name that is too long, or that two different
upstream names would share after cleaning, gets a short hash of its connection and upstream name
instead of its tail: the same inputs always give the same name, and no two exposed names collide.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

MAX_NAME = 64
_INVALID = re.compile(r"[^A-Za-z0-9_.\-]+")
_SLUG_INVALID = re.compile(r"[^a-z0-9]+")
_HASH_LENGTH = 8
MAX_SLUG = 24


def slug(title: str, connection_id: str) -> str:
    """A short lowercase prefix from a connection's title (its id when the title has no letters)."""
    cleaned = _SLUG_INVALID.sub("_", title.lower()).strip("_")[:MAX_SLUG].strip("_")
    return cleaned or "c" + connection_id.replace("-", "")[:8]


def slugs(members: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Connection id → slug for (id, title) pairs, made distinct in the given order (`_2`, `_3` ...)."""
    taken: set[str] = set()
    result: dict[str, str] = {}
    for connection_id, title in members:
        base = slug(title, connection_id)
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate)
        result[connection_id] = candidate
    return result


def candidate_name(prefix: str, name: str) -> str:
    """The generated name before collisions and length are handled: `<prefix>_<name>`, cleaned, without
    repeating a prefix the name already carries (compared case-insensitively, followed by `_`, `.` or `-`)."""
    cleaned = _INVALID.sub("_", name)
    lowered = cleaned.lower()
    if lowered == prefix or (lowered.startswith(prefix) and lowered[len(prefix) : len(prefix) + 1] in ("_", ".", "-")):
        return cleaned
    return f"{prefix}_{cleaned}"


def _digest(connection_id: str, name: str) -> str:
    return hashlib.sha256(f"{connection_id}\x00{name}".encode()).hexdigest()


def _hashed(candidate: str, connection_id: str, name: str, length: int) -> str:
    suffix = _digest(connection_id, name)[:length]
    return f"{candidate[: MAX_NAME - length - 1]}_{suffix}"


def exposed_names(
    wanted: Iterable[tuple[str, str, str]], fixed: Mapping[tuple[str, str], str] | None = None
) -> dict[tuple[str, str], str]:
    """(connection id, upstream name) → exposed name, for (connection id, slug, upstream name) triples.

    `fixed` names (renames chosen by an administrator) are taken as they are; generated names that
    would be too long or would clash with any other name get a hash suffix.
    """
    fixed = fixed or {}
    result: dict[tuple[str, str], str] = dict(fixed)
    taken = set(fixed.values())
    groups: dict[str, list[tuple[str, str]]] = {}
    for connection_id, prefix, name in wanted:
        key = (connection_id, name)
        if key in fixed:
            continue
        candidate = candidate_name(prefix, name)
        groups.setdefault(candidate, []).append(key)
    for candidate, keys in sorted(groups.items()):
        if len(keys) == 1 and len(candidate) <= MAX_NAME and candidate not in taken:
            result[keys[0]] = candidate
            taken.add(candidate)
            continue
        for connection_id, name in keys:
            length = _HASH_LENGTH
            exposed = _hashed(candidate, connection_id, name, length)
            while exposed in taken:  # 32 bits rarely clash; lengthen the hash when they do
                length += 4
                exposed = _hashed(candidate, connection_id, name, length)
            result[(connection_id, name)] = exposed
            taken.add(exposed)
    return result
