"""`x-mesh-token`: a signed JWT (HS256, 5 minutes) telling an upstream who called through meshgate.

Tokens are cached per caller and connection and reused until a minute before they expire, so the hot
path signs at most once per caller and connection every four minutes.
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from meshgate.access import WILDCARD, Principal

LIFETIME_S = 300
_REUSE_MARGIN_S = 60
_MAX_CACHED = 10_000


def allowed_tools(principal: Principal, resource: str) -> list[str]:
    """The tools a principal may call on one resource: ["*"] or the names every grant agrees on."""
    result: set[str] | None = None
    for grant in principal.grants:
        tools = set(grant.get(resource, ())) | set(grant.get(WILDCARD, ()))
        if WILDCARD in tools:
            continue
        result = tools if result is None else result & tools
    return [WILDCARD] if result is None else sorted(result)


class MeshTokenIssuer:
    def __init__(self, secret: bytes, issuer: str) -> None:
        self._secret = secret
        self._issuer = issuer
        self._cache: dict[tuple[str, str | None, str, str], tuple[str, float]] = {}

    def token(self, principal: Principal, connection_id: str) -> str:
        key = (principal.user_id, principal.api_key_id, principal.organization_id, connection_id)
        now = time.time()
        cached = self._cache.get(key)
        if cached is not None and cached[1] - now > _REUSE_MARGIN_S:
            return cached[0]
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": connection_id,
            "sub": principal.user_id,
            "org": principal.organization_id,
            "org_slug": principal.organization_slug,
            "connection": connection_id,
            "caller": {"type": "api_key" if principal.api_key_id else "user", "key_id": principal.api_key_id},
            "role": principal.role,
            "permissions": allowed_tools(principal, connection_id),
            "iat": int(now),
            "exp": int(now) + LIFETIME_S,
        }
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (token, now + LIFETIME_S)
        return token

    def clear(self) -> None:
        """Forget every token (permissions may have changed)."""
        self._cache.clear()
