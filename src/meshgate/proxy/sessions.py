"""Session ids meshgate hands out for Streamable HTTP upstreams: the upstream's own id, sealed.

The client never sees the upstream's `Mcp-Session-Id`. It gets `mgs1.<nonce+ciphertext>`: AES-GCM
under a key derived from `MESHGATE_SECRET`, holding the connection id, the credential that opened the
session and the upstream's id. Any meshgate process with the same secret opens it (no sticky routing,
nothing stored); a session id presented on another connection, or by another credential, or altered,
does not open and answers 404 like an unknown session. Revoking the credential or deleting the
connection ends the session with it (401 / 404 before the session is even looked at).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections import OrderedDict

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from meshgate.keys import KeyPurpose, derive_key

PREFIX = "mgs1."
_CACHE_SIZE = 4096
_MAX_LENGTH = 2048


class SessionIds:
    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(derive_key(secret, KeyPurpose.SESSION_ID))
        # Opening costs a few microseconds; the proxy sees the same ids again and again.
        self._opened: OrderedDict[str, tuple[str, str, str]] = OrderedDict()

    def seal(self, upstream_id: str, connection_id: str, caller: str) -> str:
        nonce = os.urandom(12)
        plain = orjson.dumps([connection_id, caller, upstream_id])
        sealed = self._aead.encrypt(nonce, plain, PREFIX.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, session_id: str, connection_id: str, caller: str) -> str | None:
        """The upstream's id, when this session id was sealed for this connection and caller."""
        found = self._opened.get(session_id)
        if found is None:
            found = self._decrypt(session_id)
            if found is None:
                return None
            self._opened[session_id] = found
            if len(self._opened) > _CACHE_SIZE:
                self._opened.popitem(last=False)
        sealed_for, sealed_by, upstream_id = found
        if not hmac.compare_digest(sealed_for, connection_id) or not hmac.compare_digest(sealed_by, caller):
            return None
        return upstream_id

    def _decrypt(self, session_id: str) -> tuple[str, str, str] | None:
        if not session_id.startswith(PREFIX) or len(session_id) > _MAX_LENGTH:
            return None
        text = session_id[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            plain = self._aead.decrypt(raw[:12], raw[12:], PREFIX.encode())
            values = orjson.loads(plain)
        except (binascii.Error, ValueError, InvalidTag, orjson.JSONDecodeError):
            return None
        if not isinstance(values, list) or len(values) != 3 or not all(isinstance(v, str) for v in values):  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
            return None
        return str(values[0]), str(values[1]), str(values[2])  # pyright: ignore[reportUnknownArgumentType]
