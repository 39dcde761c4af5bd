"""The vault key check value: a database refuses to start with a key it was not created with."""

from __future__ import annotations

from sqlalchemy import insert, select

from meshgate.db.database import Database
from meshgate.db.tables import meta
from meshgate.errors import ConfigurationError
from meshgate.vault import KEY_CHECK_PLAINTEXT, Vault, VaultError

_ROW = "vault_key_check"


async def verify_vault_key(db: Database, vault: Vault) -> None:
    """Store the check value on first start; afterwards refuse a key that does not open it."""
    async with db.transaction() as session:
        stored = await session.scalar(select(meta.c.value).where(meta.c.name == _ROW))
        if stored is None:
            await session.execute(insert(meta).values(name=_ROW, value=vault.seal(KEY_CHECK_PLAINTEXT)))
            return
    try:
        ok = vault.open(stored) == KEY_CHECK_PLAINTEXT
    except VaultError:
        ok = False
    if not ok:
        expected = stored.split(":")[1] if stored.count(":") >= 2 else "unknown"
        raise ConfigurationError(
            f"ENCRYPTION_KEY (key id {vault.current_key_id}) is not the key this database was created with "
            f"(key id {expected}); set ENCRYPTION_KEY to the original key or restore it to the data dir"
        )
