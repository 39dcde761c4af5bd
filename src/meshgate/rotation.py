"""`meshgate rotate-key`: re-seal every stored secret under the current vault key.

Rotation without downtime for reads: first give every gateway the new key as `ENCRYPTION_KEY` and the
old one in `ENCRYPTION_KEYS_PREVIOUS` (they read both, write with the new one), then run
`meshgate rotate-key`, then drop the old key. Rows are re-sealed in small transactions, so readers
are never blocked for long and an interrupted run can simply be started again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Table, func, select, update

from meshgate.db.database import Database
from meshgate.db.tables import connection_oauth, connections, mesh_signing_keys, meta, oauth_upstream_flows
from meshgate.vault import KEY_CHECK_PLAINTEXT, Vault

BATCH = 100
_KEY_CHECK = "vault_key_check"


def _key_id_of(sealed: str) -> str | None:
    parts = sealed.split(":", 2)
    return parts[1] if len(parts) == 3 else None


@dataclass(frozen=True, slots=True)
class _Sealed:
    """A column of sealed values: its table, key column, the column its vault context names, the prefix."""

    table: Table
    key: str
    column: str
    context_column: str
    context_prefix: str


SEALED = (
    _Sealed(connections, "id", "secrets", "id", "connection"),
    _Sealed(connection_oauth, "connection_id", "sealed", "connection_id", "connection-oauth"),
    _Sealed(oauth_upstream_flows, "state_hash", "sealed", "connection_id", "connection-oauth-flow"),
    _Sealed(mesh_signing_keys, "kid", "private_key", "kid", "mesh-signing-key"),
)


async def rotate_secrets(db: Database, vault: Vault, progress: Callable[[int, int], None]) -> int:
    """Re-seal rows not sealed with the current key; returns how many were re-sealed."""
    total = 0
    async with db.transaction() as session:
        for sealed in SEALED:
            column = sealed.table.c[sealed.column]
            total += int(
                await session.scalar(select(func.count()).select_from(sealed.table).where(column.is_not(None))) or 0
            )
    done = resealed = 0
    for sealed in SEALED:
        rows_done, rows_resealed = await _rotate_column(db, vault, sealed, partial(_report, progress, done, total))
        done += rows_done
        resealed += rows_resealed

    async with db.transaction() as session:
        await session.execute(
            update(meta).where(meta.c.name == _KEY_CHECK).values(value=vault.seal(KEY_CHECK_PLAINTEXT))
        )
    return resealed


def _report(progress: Callable[[int, int], None], before: int, total: int, done: int) -> None:
    progress(before + done, total)


async def _rotate_column(
    db: Database, vault: Vault, sealed: _Sealed, progress: Callable[[int], None]
) -> tuple[int, int]:
    key, column, context_of = (sealed.table.c[name] for name in (sealed.key, sealed.column, sealed.context_column))
    current = vault.current_key_id
    done = resealed = 0
    last = ""
    while True:
        async with db.transaction() as session:
            rows = (
                await session.execute(
                    select(key, column, context_of).where(column.is_not(None), key > last).order_by(key).limit(BATCH)
                )
            ).all()
            for row_key, value, context_value in rows:
                if _key_id_of(value) != current:
                    context = f"{sealed.context_prefix}:{context_value}".encode()
                    plaintext = vault.open(value, context=context)
                    await session.execute(
                        update(sealed.table)
                        .where(key == row_key)
                        .values({sealed.column: vault.seal(plaintext, context=context)})
                    )
                    resealed += 1
        if not rows:
            return done, resealed
        last = rows[-1][0]
        done += len(rows)
        progress(done)
