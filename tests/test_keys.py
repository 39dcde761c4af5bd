"""Internal keys come from MESHGATE_SECRET through HKDF with one label per purpose (security review 6)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from meshgate.errors import Unauthenticated
from meshgate.http.csrf import Csrf
from meshgate.identity.connection_tokens import ConnectionTokens
from meshgate.keys import KeyPurpose, derive_key
from meshgate.oauth.access_tokens import TOKEN_TYPE, AccessTokens
from meshgate.proxy.sessions import SessionIds

SECRET = secrets.token_bytes(32)
ISSUER = "http://127.0.0.1:3000"


def _hkdf(label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(SECRET)


def _access_token(key: bytes) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u1", "org": "o1", "gid": "g1", "aud": f"{ISSUER}/mcp", "iat": now, "exp": now + 60}
    return jwt.encode(claims, key, algorithm="HS256", headers={"typ": TOKEN_TYPE})


@pytest.mark.finding(6)
def test_an_access_token_verifies_only_under_the_hkdf_key_of_its_own_purpose() -> None:
    tokens = AccessTokens(SECRET, ISSUER, 60)
    assert tokens.verify(_access_token(_hkdf("meshgate oauth access token v2"))).grant_id == "g1"
    for other in ("meshgate consent request v2", "meshgate csrf v2", "meshgate mcp session id v2"):
        with pytest.raises(Unauthenticated):
            tokens.verify(_access_token(_hkdf(other)))
    with pytest.raises(Unauthenticated):
        tokens.verify(_access_token(SECRET))  # nor under the root secret itself


@pytest.mark.finding(6)
def test_a_csrf_token_is_the_hmac_under_its_own_hkdf_key_and_no_other() -> None:
    csrf = Csrf(SECRET)
    cookie = Csrf.new_cookie()

    def token(key: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(key, cookie.encode(), hashlib.sha256).digest()).decode().rstrip("=")

    assert csrf.valid(cookie, token(_hkdf("meshgate csrf v2")))
    assert not csrf.valid(cookie, token(_hkdf("meshgate consent request v2")))
    assert not csrf.valid(cookie, token(SECRET))


@pytest.mark.finding(6)
def test_a_session_id_sealed_under_another_purpose_does_not_open() -> None:
    sessions = SessionIds(SECRET)
    sealed = sessions.seal("up-1", "c1", "k1")
    assert sessions.open(sealed, "c1", "k1") == "up-1"
    assert derive_key(SECRET, KeyPurpose.SESSION_ID) == _hkdf("meshgate mcp session id v2")
    assert len({derive_key(SECRET, purpose) for purpose in KeyPurpose}) == len(KeyPurpose)


def _connection_token(key: bytes, expires: int) -> str:
    payload = base64.urlsafe_b64encode(b'{"o":"o1","c":"c1","e":%d}' % expires).decode().rstrip("=")
    mac = hmac.new(key, f"mgc_{payload}".encode(), hashlib.sha256).digest()
    return f"mgc_{payload}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def test_a_connection_token_verifies_only_under_the_hkdf_key_of_its_own_purpose() -> None:
    tokens = ConnectionTokens(SECRET, 900)
    later = int(time.time()) + 60
    claims = tokens.verify(_connection_token(_hkdf("meshgate connection token v1"), later))
    assert (claims.organization_id, claims.connection_id) == ("o1", "c1")
    for other in ("meshgate oauth access token v2", "meshgate mcp session id v2"):
        with pytest.raises(Unauthenticated):
            tokens.verify(_connection_token(_hkdf(other), later))
    with pytest.raises(Unauthenticated):
        tokens.verify(_connection_token(SECRET, later))  # nor under the root secret itself
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.verify(_connection_token(_hkdf("meshgate connection token v1"), int(time.time())))
    assert not AccessTokens(SECRET, ISSUER, 60).recognises(tokens.token("o1", "c1"))
