"""CSRF protection for server-rendered forms: a random cookie plus a form field holding its HMAC.

Another site can make a browser send the cookie but can neither read it nor compute the HMAC without
`MESHGATE_SECRET`, so a forged form post fails. The cookie is `SameSite=Strict` and `HttpOnly`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from meshgate.keys import KeyPurpose, derive_key

COOKIE = "meshgate_csrf"
FIELD = "csrf_token"


class Csrf:
    def __init__(self, secret: bytes) -> None:
        self._key = derive_key(secret, KeyPurpose.CSRF)

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(24)

    def token(self, cookie: str) -> str:
        digest = hmac.new(self._key, cookie.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def valid(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        return hmac.compare_digest(self.token(cookie), token)
