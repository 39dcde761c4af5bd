"""The signing keys of identity providers, kept for a while so that a sign-in does not fetch them every time.

Keys are cached per issuer for `LIFETIME_S` of the injected clock. An `id_token` naming a `kid` the cached set
lacks means the provider rotated its keys: the set is fetched again, once (a set fetched by this very call is
never fetched a second time), and a `kid` still unknown is refused by the validation.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from meshgate.sso.oidc import OidcClient, ProviderMetadata

LIFETIME_S = 600.0
MAX_ISSUERS = 1000


@dataclass(frozen=True, slots=True)
class _Entry:
    jwks_uri: str
    keys: jwt.PyJWKSet
    expires: float


def _kids(keys: jwt.PyJWKSet) -> set[str | None]:
    return {key.key_id for key in keys.keys}


class JwksCache:
    """The JWKS of each issuer, fetched through `client`, for `lifetime_s` of `clock`."""

    def __init__(
        self, client: OidcClient, *, clock: Callable[[], float] = time.time, lifetime_s: float = LIFETIME_S
    ) -> None:
        self._client = client
        self._clock = clock
        self._lifetime = lifetime_s
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    async def keys(self, provider: ProviderMetadata, kid: str | None) -> jwt.PyJWKSet:
        """The issuer's keys, holding `kid` if the issuer publishes it; at most one fetch per call."""
        entry = self._entries.get(provider.issuer)
        fresh = entry is not None and entry.jwks_uri == provider.jwks_uri and entry.expires > self._clock()
        if entry is not None and fresh and (kid is None or kid in _kids(entry.keys)):
            return entry.keys
        keys = await self._client.keys(provider)
        self._entries[provider.issuer] = _Entry(provider.jwks_uri, keys, self._clock() + self._lifetime)
        self._entries.move_to_end(provider.issuer)
        while len(self._entries) > MAX_ISSUERS:
            self._entries.popitem(last=False)
        return keys

    def forget(self, issuer: str) -> None:
        self._entries.pop(issuer, None)
