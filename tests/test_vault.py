"""AES-256-GCM vault."""

from __future__ import annotations

import secrets

import pytest

from meshgate.vault import Vault, VaultError, key_id


def test_seal_and_open_round_trip_with_a_fresh_nonce_each_time() -> None:
    vault = Vault(secrets.token_bytes(32))
    first, second = vault.seal(b"token-123"), vault.seal(b"token-123")
    assert first != second
    assert b"token-123" not in first.encode()
    assert vault.open(first) == vault.open(second) == b"token-123"
    assert first.split(":")[1] == vault.current_key_id


def test_a_different_key_or_context_cannot_open_it() -> None:
    key = secrets.token_bytes(32)
    sealed = Vault(key).seal(b"secret", context=b"conn-1")
    with pytest.raises(VaultError, match="not configured"):
        Vault(secrets.token_bytes(32)).open(sealed, context=b"conn-1")
    with pytest.raises(VaultError, match="does not decrypt"):
        Vault(key).open(sealed, context=b"conn-2")


def test_previous_keys_still_open_old_values() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    sealed = Vault(old).seal(b"v")
    rotated = Vault(new, previous=(old,))
    assert rotated.open(sealed) == b"v"
    assert rotated.seal(b"v").split(":")[1] == key_id(new)


def test_tampering_is_detected() -> None:
    vault = Vault(secrets.token_bytes(32))
    sealed = vault.seal(b"value")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(VaultError):
        vault.open(tampered)
