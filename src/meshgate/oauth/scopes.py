"""OAuth scopes are permission entries: `resource:tool` (`self:ORGANIZATION_LIST`, `<connection id>:*`, `*:*`).

A token requested without a scope carries no map of its own, so it may do what its user's role allows
(the intersection rule then has one member). `offline_access` is accepted and changes nothing: meshgate
always issues a refresh token with the authorization code grant.
"""

from __future__ import annotations

from meshgate.access import PermissionMap
from meshgate.access.permissions import parse_permission_map
from meshgate.errors import InvalidInput, OAuthError

MAX_SCOPES = 100
_IGNORED = frozenset({"offline_access", "openid"})


def permissions_for_scope(scope: str | None) -> dict[str, list[str]] | None:
    """The permission map a scope string grants, or None for "what the user's role allows"."""
    entries = [entry for entry in (scope or "").split() if entry not in _IGNORED]
    if not entries:
        return None
    if len(entries) > MAX_SCOPES:
        raise OAuthError("invalid_scope", f"{len(entries)} scopes requested; at most {MAX_SCOPES} are allowed")
    wanted: dict[str, list[str]] = {}
    for entry in entries:
        resource, sep, tool = entry.partition(":")
        if not sep or not resource or not tool:
            raise OAuthError(
                "invalid_scope",
                f"scope {entry[:80]!r} is not 'resource:tool' "
                "(for example self:ORGANIZATION_LIST or <connection id>:*)",
            )
        wanted.setdefault(resource, []).append(tool)
    try:
        return parse_permission_map(wanted, field="scope")
    except InvalidInput as exc:
        raise OAuthError("invalid_scope", exc.message) from exc


def normalize_scope(scope: str | None) -> str | None:
    """The scope string as stored and returned: entries sorted, duplicates dropped."""
    entries = sorted(set((scope or "").split()))
    return " ".join(entries) or None


def is_narrower(requested: str | None, granted: str | None) -> bool:
    """Whether a refresh request's scope stays within the original grant (RFC 6749 §6)."""
    if requested is None:
        return True
    return set(requested.split()) <= set((granted or "").split())


def describe(permissions: PermissionMap | None) -> list[str]:
    """One line per permission entry, for the consent page."""
    if permissions is None:
        return ["everything your role allows in this organization, except creating API keys"]
    lines: list[str] = []
    for resource, tools in sorted(permissions.items()):
        where = {"self": "meshgate administration", "*": "every connection"}.get(resource, f"connection {resource}")
        what = "all tools" if "*" in tools else ", ".join(tools)
        lines.append(f"{what} on {where}")
    return lines
