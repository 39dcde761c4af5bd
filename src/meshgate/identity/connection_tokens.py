"""Connection credentials: a short-lived token with which an upstream calls `/mcp` as its own connection.

meshgate sends it to the upstream with every call (header `x-mesh-connection-token`); the upstream presents it
as `Authorization: Bearer …` and acts as that connection, with the event tools only (see
`meshgate.access.connection_principal`). The token is `mgc_<payload>.<mac>`: base64url of
`{"o": organization, "c": connection, "e": expiry}` and its HMAC-SHA256 under a key derived for this purpose
alone, so it verifies as nothing else (not an access token, not a session id) and nothing else verifies as it.

Signing is off the hot path: one token per connection is cached and reused until a third of its lifetime is
left, so an upstream always holds one that is good for a while, and meshgate signs at most once per connection
every two thirds of the lifetime.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from meshgate.errors import Unauthenticated
from meshgate.keys import KeyPurpose, derive_key

HEADER = "x-mesh-connection-token"
PREFIX = "mgc_"  # API keys start with mg_, access tokens with eyJ
_MAX_CACHED = 10_000
_MAX_LENGTH = 400


@dataclass(frozen=True, slots=True)
class ConnectionClaims:
    """What a genuine connection token says: which connection of which organization, until when."""

    organization_id: str
    connection_id: str
    expires_at: int  # epoch seconds


class ConnectionTokens:
    """Signs (cached per connection) and verifies connection tokens; `clock` is injectable for expiry tests."""

    def __init__(self, secret: bytes, lifetime_s: int, clock: Callable[[], float] = time.time) -> None:
        self._key = derive_key(secret, KeyPurpose.CONNECTION_TOKEN)
        self.lifetime_s = lifetime_s
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}

    def token(self, organization_id: str, connection_id: str) -> str:
        """The connection's current token (synchronous; signs only when the cached one is past two thirds)."""
        now = self.clock()
        key = (organization_id, connection_id)
        cached = self._cache.get(key)
        if cached is not None and cached[1] - now > self.lifetime_s / 3:
            return cached[0]
        expires = int(now) + self.lifetime_s
        token = self._sign(organization_id, connection_id, expires)
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (token, expires)
        return token

    @staticmethod
    def recognises(token: str) -> bool:
        """Whether the bearer value has the shape of a connection token (no verification)."""
        return token.startswith(PREFIX)

    def verify(self, token: str) -> ConnectionClaims:
        """The claims of a genuine, unexpired token; `Unauthenticated` for anything else."""
        payload, _, mac = token.removeprefix(PREFIX).partition(".")
        if len(token) > _MAX_LENGTH or not hmac.compare_digest(_encode(self._mac(payload)), mac):
            raise Unauthenticated("the connection token is not valid")
        try:
            claims = orjson.loads(_decode(payload))
            found = ConnectionClaims(str(claims["o"]), str(claims["c"]), int(claims["e"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise Unauthenticated("the connection token is not valid") from exc
        if found.expires_at <= self.clock():
            raise Unauthenticated("the connection token has expired; use the one meshgate sent with its latest call")
        return found

    def _sign(self, organization_id: str, connection_id: str, expires: int) -> str:
        payload = _encode(orjson.dumps({"o": organization_id, "c": connection_id, "e": expires}))
        return f"{PREFIX}{payload}.{_encode(self._mac(payload))}"

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._key, (PREFIX + payload).encode(), hashlib.sha256).digest()


def _encode(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def _decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
