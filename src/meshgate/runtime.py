"""The long-lived collaborators of one gateway process, created by `create_app` and shared by routes and tools."""

from __future__ import annotations

from dataclasses import dataclass

from meshgate.connections.pool import UpstreamPool
from meshgate.db.database import Database
from meshgate.identity.authentication import Authenticator
from meshgate.monitoring.writer import AuditWriter
from meshgate.proxy.mesh_token import MeshTokenIssuer
from meshgate.settings import Settings
from meshgate.vault import Vault


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    authenticator: Authenticator
    upstreams: UpstreamPool
    audit: AuditWriter
    mesh_tokens: MeshTokenIssuer

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        db = Database(settings.database_url)
        vault = Vault(settings.encryption_key, previous=settings.previous_encryption_keys)
        runtime = cls(
            settings=settings,
            db=db,
            vault=vault,
            authenticator=Authenticator(db, usage_flush_seconds=settings.key_usage_flush_seconds),
            upstreams=UpstreamPool(db, vault),
            audit=AuditWriter(db),
            mesh_tokens=MeshTokenIssuer(settings.secret, settings.public_url),
        )
        db.subscribe(runtime._on_change)
        return runtime

    def _on_change(self, topic: str) -> None:
        if topic == "identity":
            self.mesh_tokens.clear()

    async def start(self) -> None:
        await self.db.start_listening()
        self.authenticator.start()
        self.audit.start()

    async def stop(self) -> None:
        """Drain the audit queue and key-usage times, close upstream clients and the database."""
        await self.audit.stop()
        await self.authenticator.stop()
        await self.upstreams.close()
        await self.db.close()
