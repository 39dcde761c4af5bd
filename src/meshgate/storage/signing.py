"""Signed URLs for the local directory store, which meshgate serves itself (`/api/storage/objects/{token}`).

A token is `base64url(JSON grant) . base64url(HMAC-SHA256(grant))`, the HMAC key derived from `MESHGATE_SECRET`.
The grant names the method, the full key, the content type an upload must carry, and the expiry (epoch
seconds, checked against the injected clock). Nothing is stored: any replica that shares the secret (and the
directory) serves the URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from meshgate.errors import PermissionDenied

URL_PATH = "/api/storage/objects/"
_PURPOSE = b"meshgate object storage URLs v1"


@dataclass(frozen=True, slots=True)
class UrlGrant:
    method: str  # GET or PUT
    key: str  # the full key, the organization's prefix included
    expires_at: int  # epoch seconds
    content_type: str | None  # PUT: the Content-Type the upload must carry; None: any


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UrlSigner:
    """Signs and checks local object URLs; `clock` is epoch seconds (tests move it, never the real time)."""

    def __init__(self, secret: bytes, public_url: str, clock: Callable[[], float]) -> None:
        self._key = hmac.new(secret, _PURPOSE, hashlib.sha256).digest()
        self._base = public_url.rstrip("/") + URL_PATH
        self.clock = clock

    def url(self, method: str, key: str, expires_in: int, content_type: str | None = None) -> str:
        grant: dict[str, Any] = {"m": method, "k": key, "e": int(self.clock()) + expires_in, "t": content_type}
        payload = _b64(orjson.dumps(grant))
        return f"{self._base}{payload}.{self._mac(payload)}"

    def check(self, token: str, method: str) -> UrlGrant:
        """The grant of a token for `method`; PermissionDenied when it is forged, for another method or expired."""
        payload, _, mac = token.partition(".")
        if not mac or len(token) > 8192 or not hmac.compare_digest(mac, self._mac(payload)):
            raise PermissionDenied("the storage URL's signature does not match; ask for a new URL")
        try:
            fields = orjson.loads(_unb64(payload))
            grant = UrlGrant(str(fields["m"]), str(fields["k"]), int(fields["e"]), fields["t"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PermissionDenied("the storage URL is malformed; ask for a new URL") from exc
        signed_for = "GET" if method == "HEAD" else method
        if grant.method != signed_for:
            raise PermissionDenied(f"this storage URL is signed for {grant.method}, not {method}")
        if self.clock() >= grant.expires_at:
            raise PermissionDenied(
                "this storage URL has expired; ask for a new one with GET_PRESIGNED_URL or PUT_PRESIGNED_URL"
            )
        return grant

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
