"""The Ed25519 keys that sign `x-mesh-token`, shared by every replica through the database.

A key's life, on the injectable clock:

    created ─ published ─ activates_at: signs ─ successor activates: stops signing
            ─ successor's activates_at + token lifetime + margin: leaves the JWKS, its row is deleted

A successor is created `publish_ahead_s` before it activates. Every replica reloads the set every
`refresh_s` (much shorter), so each one publishes a key well before any replica signs with it, and
every replica switches to it at the same moment without talking to the others. Private keys are
sealed by the vault; they are opened when the set is loaded, never on the request path.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from meshgate.db.database import Database
from meshgate.db.tables import mesh_signing_keys
from meshgate.errors import ConfigurationError
from meshgate.vault import Vault

log = logging.getLogger(__name__)

TOKEN_LIFETIME_S = 300
ROTATE_EVERY_S = 24 * 3600
PUBLISH_AHEAD_S = 3600
REFRESH_S = 60.0
RETIRE_MARGIN_S = 300  # clock skew between replicas, on top of the token lifetime

Clock = Callable[[], float]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def thumbprint(x: str) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256) of an Ed25519 public key (`x`, base64url): its `kid`."""
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}'
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _sealing_context(kid: str) -> bytes:
    return f"mesh-signing-key:{kid}".encode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    generation: int
    activates_at: float
    private: Ed25519PrivateKey
    x: str  # the public key, base64url

    @classmethod
    def of(cls, private: Ed25519PrivateKey, generation: int, activates_at: float) -> SigningKey:
        x = _b64url(_raw_public(private.public_key()))
        return cls(thumbprint(x), generation, activates_at, private, x)

    def jwk(self) -> dict[str, str]:
        """The public half as an RFC 8037 OKP JWK."""
        return {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "use": "sig", "alg": "EdDSA"}


@dataclass(frozen=True, slots=True)
class KeyTimes:
    """How long keys sign and stay published (seconds)."""

    rotate_every_s: float = ROTATE_EVERY_S
    publish_ahead_s: float = PUBLISH_AHEAD_S
    token_lifetime_s: float = TOKEN_LIFETIME_S
    retire_margin_s: float = RETIRE_MARGIN_S

    def retired(self, keys: Sequence[SigningKey], key: SigningKey, now: float) -> bool:
        """Whether every token `key` signed has expired (its successor signs since long enough)."""
        later = [k.activates_at for k in keys if k.generation > key.generation]
        return bool(later) and now >= min(later) + self.token_lifetime_s + self.retire_margin_s

    def successor_due(self, latest: SigningKey, now: float) -> bool:
        return now >= latest.activates_at + self.rotate_every_s - self.publish_ahead_s

    def successor_activates_at(self, latest: SigningKey, now: float) -> float:
        return max(latest.activates_at + self.rotate_every_s, now + self.publish_ahead_s)


class MeshSigningKeys:
    """The key set of this replica: loaded and rotated in the background, read synchronously when signing."""

    def __init__(
        self,
        db: Database,
        vault: Vault,
        *,
        clock: Clock = time.time,
        times: KeyTimes | None = None,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self._db = db
        self._vault = vault
        self.clock = clock
        self.times = times or KeyTimes()
        self._refresh_s = refresh_s
        self._keys: tuple[SigningKey, ...] = ()
        self._task: asyncio.Task[None] | None = None

    def signing_key(self) -> SigningKey:
        """The key that signs now: the newest active one (or, before any is active here, the oldest)."""
        if not self._keys:
            raise ConfigurationError("x-mesh-token signing keys are not loaded: the gateway has not started")
        now = self.clock()
        active = [key for key in self._keys if key.activates_at <= now]
        return active[-1] if active else self._keys[0]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The RFC 7517 JWK Set of every key that is, or will be, or recently was signing."""
        now = self.clock()
        return {"keys": [key.jwk() for key in self._keys if not self.times.retired(self._keys, key, now)]}

    async def refresh(self) -> None:
        """Load the shared set, create the successor when it is due, delete keys whose tokens all expired."""
        keys = await self._load()
        now = self.clock()
        if not keys or self.times.successor_due(keys[-1], now):
            keys = await self._create_next(keys, now)
        retired = [key.kid for key in keys if self.times.retired(keys, key, now)]
        if retired:
            async with self._db.transaction() as session:
                await session.execute(delete(mesh_signing_keys).where(mesh_signing_keys.c.kid.in_(retired)))
        self._keys = tuple(key for key in keys if key.kid not in retired)

    async def start(self) -> None:
        """Load (creating the first key on a new database), then keep refreshing in the background."""
        await self.refresh()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001  (a background task's boundary: keep the loaded keys, retry)
                log.warning("could not reload the x-mesh-token signing keys; keeping %d loaded", len(self._keys))

    async def _load(self) -> list[SigningKey]:
        async with self._db.transaction() as session:
            rows = (await session.execute(select(mesh_signing_keys).order_by(mesh_signing_keys.c.generation))).all()
        return [self._open(row) for row in rows]

    def _open(self, row: Any) -> SigningKey:
        raw = self._vault.open(row.private_key, context=_sealing_context(row.kid))
        key = SigningKey.of(Ed25519PrivateKey.from_private_bytes(raw), row.generation, row.activates_at.timestamp())
        if (key.kid, key.x) != (row.kid, row.public_key):
            raise ConfigurationError(f"x-mesh-token signing key {row.kid} does not match its stored public key")
        return key

    async def _create_next(self, keys: list[SigningKey], now: float) -> list[SigningKey]:
        """Add the successor of the newest key (the first key signs at once); a replica that loses the race
        to create the same generation takes the winner's key."""
        generation = keys[-1].generation + 1 if keys else 1
        activates_at = self.times.successor_activates_at(keys[-1], now) if keys else now
        # Stored with microseconds: the value every replica, this one included, reads back.
        activates_at = datetime.fromtimestamp(activates_at, UTC).timestamp()
        key = SigningKey.of(Ed25519PrivateKey.generate(), generation, activates_at)
        raw = key.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        try:
            async with self._db.transaction() as session:
                await session.execute(
                    insert(mesh_signing_keys).values(
                        kid=key.kid,
                        generation=generation,
                        public_key=key.x,
                        private_key=self._vault.seal(raw, context=_sealing_context(key.kid)),
                        created_at=datetime.fromtimestamp(now, UTC),
                        activates_at=datetime.fromtimestamp(activates_at, UTC),
                    )
                )
        except IntegrityError:
            return await self._load()
        log.info("created x-mesh-token signing key %s (generation %d)", key.kid, generation)
        return [*keys, key]
