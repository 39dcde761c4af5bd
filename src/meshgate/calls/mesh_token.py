"""`x-mesh-token`: an EdDSA (Ed25519) JWT telling an upstream who called through meshgate, for 5 minutes.

Header `{"alg": "EdDSA", "typ": "mesh+jwt", "kid": …}`; the public keys are at `/.well-known/jwks.json`
(see `meshgate.calls.mesh_keys`). Tokens are cached per credential, grant and connection (everything
that feeds the claims is in the cache key) and reused until a minute before they expire, so the hot
path signs at most once per (credential, grant, connection) every four minutes.
"""

from __future__ import annotations

import secrets
from typing import Any

import jwt

from meshgate.access import WILDCARD, Principal
from meshgate.calls.mesh_keys import TOKEN_LIFETIME_S, MeshSigningKeys

LIFETIME_S = TOKEN_LIFETIME_S
JWT_TYPE = "mesh+jwt"  # the `typ` header (RFC 8725 3.11: explicit typing)
_REUSE_MARGIN_S = 60
_MAX_CACHED = 10_000

_CacheKey = tuple[str, str, str, str, str, str | None, str | None, str | None, tuple[str, ...]]


def allowed_tools(principal: Principal, resource: str) -> list[str]:
    """The tools a principal may call on one resource: ["*"] or the names every grant agrees on."""
    result: set[str] | None = None
    for grant in principal.grants:
        tools = set(grant.get(resource, ())) | set(grant.get(WILDCARD, ()))
        if WILDCARD in tools:
            continue
        result = tools if result is None else result & tools
    return [WILDCARD] if result is None else sorted(result)


def caller_type(principal: Principal) -> str:
    """`api_key`, `oauth` (an access token of an OAuth grant), `connection` (a connection acting for itself,
    e.g. meshgate delivering events to a subscription the connection made) or `user` (a browser session)."""
    if principal.connection_id is not None:
        return "connection"
    if principal.api_key_id is not None:
        return "api_key"
    return "oauth" if principal.grant_id is not None else "user"


class MeshTokenIssuer:
    def __init__(self, keys: MeshSigningKeys, issuer: str) -> None:
        self.keys = keys
        self._issuer = issuer
        self._cache: dict[_CacheKey, tuple[str, float]] = {}
        # The authenticator hands out one Principal object per credential until something changes, so a
        # second map by object identity answers a repeated caller without recomputing the claims' key. The
        # entry holds the principal itself: its id cannot be reused while the entry exists.
        self._by_principal: dict[tuple[int, str], tuple[Principal, str, float]] = {}

    def token(self, principal: Principal, connection_id: str) -> str:
        """The caller's token for one connection (synchronous: signs only when no fresh one is cached)."""
        now = self.keys.clock()
        seen = self._by_principal.get((id(principal), connection_id))
        if seen is not None and seen[0] is principal and seen[2] - now > _REUSE_MARGIN_S:
            return seen[1]
        token, expires = self._token(principal, connection_id, now)
        if len(self._by_principal) >= _MAX_CACHED:
            self._by_principal.clear()
        self._by_principal[(id(principal), connection_id)] = (principal, token, expires)
        return token

    def _token(self, principal: Principal, connection_id: str, now: float) -> tuple[str, float]:
        """A token from the cache keyed by everything that feeds the claims, or a new one."""
        permissions = allowed_tools(principal, connection_id)
        key: _CacheKey = (
            connection_id,
            principal.user_id,
            principal.organization_id,
            principal.organization_slug,
            principal.role,
            principal.api_key_id,
            principal.grant_id,
            principal.client_id,
            tuple(permissions),
        )
        cached = self._cache.get(key)
        if cached is not None and cached[1] - now > _REUSE_MARGIN_S:
            return cached
        token = self._sign(principal, connection_id, permissions, int(now))
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (token, int(now) + LIFETIME_S)
        return self._cache[key]

    def _sign(self, principal: Principal, connection_id: str, permissions: list[str], now: int) -> str:
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": connection_id,
            "sub": principal.user_id,
            "org": principal.organization_id,
            "org_slug": principal.organization_slug,
            "connection": connection_id,
            "caller": {"type": caller_type(principal), "key_id": principal.api_key_id},
            "grant_id": principal.grant_id,
            "client_id": principal.client_id,
            "role": principal.role,
            "permissions": permissions,
            "iat": now,
            "exp": now + LIFETIME_S,
            "jti": secrets.token_urlsafe(16),
        }
        signing = self.keys.signing_key()
        return jwt.encode(claims, signing.private, algorithm="EdDSA", headers={"kid": signing.kid, "typ": JWT_TYPE})

    def clear(self) -> None:
        """Forget every token (permissions may have changed)."""
        self._cache.clear()
        self._by_principal.clear()
