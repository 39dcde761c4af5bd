"""Credential vault: AES-256-GCM with a random 96-bit nonce per value and the key id stored alongside.

Stored form: ``v1:<key id>:<base64url(nonce || ciphertext+tag)>``. The key id is the first 16 hex digits
of SHA-256 over the key, so a value says which key sealed it without revealing the key.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from meshgate.errors import ConfigurationError

_PREFIX = "v1"
_NONCE_BYTES = 12
KEY_CHECK_PLAINTEXT = b"meshgate vault key check"


class VaultError(ConfigurationError):
    """A stored value cannot be opened with the configured key."""


def key_id(key: bytes) -> str:
    """The public identifier of a vault key."""
    return hashlib.sha256(key).hexdigest()[:16]


class Vault:
    """Seals and opens secrets with one current key (older keys may be added for reading)."""

    def __init__(self, key: bytes, *, previous: tuple[bytes, ...] = ()) -> None:
        self._current_id = key_id(key)
        self._ciphers = {key_id(k): AESGCM(k) for k in (*previous, key)}

    @property
    def current_key_id(self) -> str:
        return self._current_id

    def seal(self, plaintext: bytes, *, context: bytes = b"") -> str:
        """Encrypt `plaintext`; `context` (associated data) must be given again to open it."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._ciphers[self._current_id].encrypt(nonce, plaintext, context)
        body = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{_PREFIX}:{self._current_id}:{body}"

    def open(self, stored: str, *, context: bytes = b"") -> bytes:
        """Decrypt a value produced by `seal`."""
        try:
            prefix, kid, body = stored.split(":", 2)
        except ValueError as exc:
            raise VaultError("stored secret is not in vault format") from exc
        cipher = self._ciphers.get(kid)
        if prefix != _PREFIX or cipher is None:
            raise VaultError(f"stored secret was sealed with key {kid}, which is not configured")
        raw = base64.urlsafe_b64decode(body)
        try:
            return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context)
        except InvalidTag as exc:
            raise VaultError("stored secret does not decrypt with the configured key") from exc
