"""Access tokens: short-lived JWTs (RFC 9068 shape) signed with a key derived from `MESHGATE_SECRET`.

A token names its user, organization, grant, audience (the MCP endpoint it was issued for, RFC 8707)
and scope. Verifying the signature needs no database; whether the grant is still alive and what the
user's role allows now is looked up once per token by the authenticator and cached until any identity
change (revoking a grant is one).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt

from meshgate.errors import Unauthenticated
from meshgate.identity.authentication import AccessClaims
from meshgate.keys import KeyPurpose, derive_key

_ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"  # noqa: S105  (the RFC 9068 media type, not a secret)


class AccessTokens:
    """Signs and verifies meshgate's OAuth access tokens (the authenticator's `AccessTokenVerifier`)."""

    def __init__(self, secret: bytes, issuer: str, lifetime_s: int, *, clock: Callable[[], float] = time.time) -> None:
        self._key = derive_key(secret, KeyPurpose.ACCESS_TOKEN)
        self.issuer = issuer
        self.lifetime_s = lifetime_s
        self.clock = clock  # epoch seconds; the whole OAuth server (codes, refresh tokens) reads time from here

    def issue(self, *, user_id: str, organization_id: str, grant_id: str, audience: str, scope: str | None) -> str:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user_id,
            "org": organization_id,
            "gid": grant_id,
            "aud": audience,
            "iat": now,
            "exp": now + self.lifetime_s,
            "jti": secrets.token_urlsafe(12),
        }
        if scope:
            claims["scope"] = scope
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM, headers={"typ": TOKEN_TYPE})

    def recognises(self, token: str) -> bool:
        """JWTs start with a base64url JSON header; API keys start with `mg_`."""
        return token.startswith("eyJ")

    def verify(self, token: str) -> AccessClaims:
        """The claims of a token this gateway issued; `Unauthenticated` for anything else."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != TOKEN_TYPE:
                raise Unauthenticated("the access token is not valid")
            # Times are checked below on this service's clock, not PyJWT's.
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=self.issuer,
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "sub", "aud", "iss"],
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the access token is not valid") from exc
        if not isinstance(claims["exp"], int) or claims["exp"] <= self.clock():
            raise Unauthenticated("the access token has expired; refresh it or log in again")
        return AccessClaims(
            user_id=str(claims["sub"]),
            organization_id=str(claims["org"]),
            grant_id=str(claims["gid"]),
            audience=str(claims["aud"]),
            scope=claims.get("scope"),
            expires_at=int(claims["exp"]),
        )

    def grant_of(self, token: str) -> str | None:
        """The grant of a token this gateway signed, even an expired one (for revocation)."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=self.issuer,
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        grant = claims.get("gid")
        return grant if isinstance(grant, str) else None
