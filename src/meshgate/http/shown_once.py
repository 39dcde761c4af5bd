"""A secret shown once after post/redirect/get, carried from the POST to the page in a sealed cookie.

A form that creates an API key or an invitation link answers with a redirect, so reloading the page
creates nothing; but the key or link exists only in the POST's answer. It crosses the redirect in a
cookie that is AES-GCM sealed under a key derived from `MESHGATE_SECRET` and bound to what it is for
(the visitor, the organization, the page), expires after `LIFETIME_S` (inside the seal, not only as
`Max-Age`), is `HttpOnly`, `SameSite=Strict`, `Secure` on https and limited to the page's path. The
page that opens it clears it in the same answer, and every page is `Cache-Control: no-store`, so a
reload shows the page without the secret. Nothing is stored on the server; no URL or log holds the value.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Callable, Mapping

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response

from meshgate.jsonvalues import as_dict
from meshgate.keys import KeyPurpose, derive_key

COOKIE = "meshgate_once"
PREFIX = "mgo1."
LIFETIME_S = 60
# Browsers keep at least 4096 bytes of name and value per cookie; what does not fit is not carried.
MAX_VALUE_LENGTH = 3800
_NONCE_BYTES = 12


class ShownOnce:
    """Seals a few strings for one page, opens them there, and clears the cookie that carried them."""

    def __init__(self, secret: bytes, *, secure: bool, clock: Callable[[], float] = time.time) -> None:
        self._aead = AESGCM(derive_key(secret, KeyPurpose.SHOWN_ONCE))
        self._secure = secure
        self._clock = clock

    def seal(self, shown: Mapping[str, str], binding: str) -> str | None:
        """The cookie value carrying `shown` to the page `binding` names; None when it would not fit a cookie."""
        nonce = os.urandom(_NONCE_BYTES)
        plain = orjson.dumps({"until": self._clock() + LIFETIME_S, "shown": dict(shown)})
        sealed = self._aead.encrypt(nonce, plain, (PREFIX + binding).encode())
        value = PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return value if len(value) <= MAX_VALUE_LENGTH else None

    def open(self, value: str | None, binding: str) -> dict[str, str] | None:
        """What `seal` carried for `binding`; None when absent, altered, sealed for another page, or expired."""
        if value is None or not value.startswith(PREFIX) or len(value) > MAX_VALUE_LENGTH:
            return None
        text = value[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], (PREFIX + binding).encode())
            opened = as_dict(orjson.loads(plain))
        except (binascii.Error, ValueError, InvalidTag, orjson.JSONDecodeError):
            return None
        until, shown = opened.get("until"), opened.get("shown")
        if not isinstance(until, int | float) or until < self._clock() or not isinstance(shown, dict):
            return None
        return {str(k): str(v) for k, v in as_dict(shown).items()}

    def hand_over(self, response: Response, path: str, binding: str, shown: Mapping[str, str]) -> bool:
        """Set the cookie carrying `shown` to the page at `path` on `response`; False when it does not fit."""
        value = self.seal(shown, binding)
        if value is None:
            return False
        response.set_cookie(
            COOKIE, value, max_age=LIFETIME_S, path=path, httponly=True, samesite="strict", secure=self._secure
        )
        return True

    def take(self, request: Request, binding: str) -> dict[str, str] | None:
        """What the request's cookie carries for `binding` (clear it on the answer with `clear`)."""
        return self.open(request.cookies.get(COOKIE), binding)

    def clear(self, request: Request, response: Response, path: str) -> None:
        """Expire the cookie on `response` when the request carried one (opened or not)."""
        if COOKIE in request.cookies:
            response.delete_cookie(COOKIE, path=path, httponly=True, samesite="strict", secure=self._secure)
