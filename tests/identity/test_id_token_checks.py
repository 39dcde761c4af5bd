"""`validate_id_token` on tokens signed by joserfc (independent of the PyJWT that checks them), with the time
given by the caller: each rule of OpenID Connect Core §3.1.3.7 that the provider process cannot break."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey, RSAKey

from meshgate.sso.oidc import ProviderMetadata, SignInRefused, validate_id_token

ISSUER = "https://idp.example"
CLIENT = "client-1"
NONCE = "nonce-1"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
PROVIDER = ProviderMetadata(ISSUER, f"{ISSUER}/a", f"{ISSUER}/t", f"{ISSUER}/jwks", ("RS256",), basic_auth=True)
KEYS = jwt.PyJWKSet.from_dict({"keys": [KEY.as_dict(private=False)]})
NOW = 2_000_000_000.0  # far from the real time: only the given clock can make these tokens current


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "s-1",
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "nonce": NONCE,
        "email": "a@example.com",
        "email_verified": True,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(claims: dict[str, Any], header: dict[str, Any] | None = None, key: Any = KEY) -> str:
    return jose_jwt.encode(header or {"alg": "RS256", "kid": "k1"}, claims, key)


def _check(token: str, now: float = NOW) -> Any:
    return validate_id_token(token, KEYS, PROVIDER, client_id=CLIENT, nonce=NONCE, now=now)


def test_a_good_token_gives_the_confirmed_identity_at_the_given_time_not_the_real_one() -> None:
    identity = _check(_token(_claims(name="Ada")))
    assert (identity.issuer, identity.subject, identity.email, identity.name) == (ISSUER, "s-1", "a@example.com", "Ada")
    assert time.time() < NOW  # the real clock would call this token not issued yet


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (_claims(exp=int(NOW) - 61), "has expired"),
        (_claims(iat=int(NOW) + 61), "issued in the future"),
        (_claims(nbf=int(NOW) + 120), "not valid yet"),
        (_claims(aud=[CLIENT, "other"]), "azp does not match"),
        (_claims(aud=[CLIENT, "other"], azp="other"), "azp does not match"),
        (_claims(nonce=None), "nonce does not match"),
        (_claims(email_verified=False), "has not confirmed the address"),
        (_claims(email_verified=None), "has not confirmed the address"),
        (_claims(email=None), "gave no email address"),
        (_claims(sub=None), "lacks the sub claim"),
        (_claims(exp=None), "lacks the exp claim"),
    ],
)
def test_a_token_breaking_a_rule_is_refused_naming_it(claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(SignInRefused, match=reason):
        _check(_token(claims))


def test_a_token_signed_with_a_shared_secret_or_an_unknown_key_is_refused() -> None:
    secret = OctKey.generate_key(256)
    with pytest.raises(SignInRefused, match="signed with 'HS256'"):
        _check(_token(_claims(), {"alg": "HS256", "kid": "k1"}, secret))
    with pytest.raises(SignInRefused, match="signing key the issuer does not publish"):
        _check(_token(_claims(), {"alg": "RS256", "kid": "k2"}))
    unsigned = jwt.encode(_claims(), key="", algorithm="none")  # pyright: ignore[reportArgumentType]
    with pytest.raises(SignInRefused, match="signed with 'none'"):
        _check(unsigned)
