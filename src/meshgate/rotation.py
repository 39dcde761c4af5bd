"""`meshgate rotate-key`: re-seal every stored secret under the current vault key.

Rotation without downtime for reads: first give every gateway the new key as `ENCRYPTION_KEY` and the
old one in `ENCRYPTION_KEYS_PREVIOUS` (they read both, write with the new one), then run
`meshgate rotate-key`, then drop the old key. Rows are re-sealed in small transactions, so readers
are never blocked for long and an interrupted run can simply be started again.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select, update

from meshgate.db.database import Database
from meshgate.db.tables import connections, meta
from meshgate.vault import KEY_CHECK_PLAINTEXT, Vault

BATCH = 100
_KEY_CHECK = "vault_key_check"


def _key_id_of(sealed: str) -> str | None:
    parts = sealed.split(":", 2)
    return parts[1] if len(parts) == 3 else None


async def rotate_secrets(db: Database, vault: Vault, progress: Callable[[int, int], None]) -> int:
    """Re-seal rows not sealed with the current key; returns how many were re-sealed."""
    current = vault.current_key_id
    async with db.transaction() as session:
        total = int(
            await session.scalar(
                select(func.count()).select_from(connections).where(connections.c.secrets.is_not(None))
            )
            or 0
        )
    done = 0
    resealed = 0
    last_id = ""
    while True:
        async with db.transaction() as session:
            rows = (
                await session.execute(
                    select(connections.c.id, connections.c.secrets)
                    .where(connections.c.secrets.is_not(None), connections.c.id > last_id)
                    .order_by(connections.c.id)
                    .limit(BATCH)
                )
            ).all()
            for row in rows:
                if _key_id_of(row.secrets) != current:
                    context = f"connection:{row.id}".encode()
                    plaintext = vault.open(row.secrets, context=context)
                    await session.execute(
                        update(connections)
                        .where(connections.c.id == row.id)
                        .values(secrets=vault.seal(plaintext, context=context))
                    )
                    resealed += 1
        if not rows:
            break
        last_id = rows[-1].id
        done += len(rows)
        progress(done, total)
    async with db.transaction() as session:
        await session.execute(
            update(meta).where(meta.c.name == _KEY_CHECK).values(value=vault.seal(KEY_CHECK_PLAINTEXT))
        )
    return resealed
