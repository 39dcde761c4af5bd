"""The long-lived collaborators of one gateway process, created by `create_app` and shared by routes and tools."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily

from meshgate.access.ratelimit import RateLimiter
from meshgate.ai.directory import AiProviders
from meshgate.ai.usage import AiLimits, AiLimitSettings, AiMeter
from meshgate.ai.wire import ProviderHttp
from meshgate.calls.mesh_keys import MeshSigningKeys
from meshgate.calls.mesh_token import MeshTokenIssuer
from meshgate.calls.service import CallService
from meshgate.connections.addresses import AddressPolicy
from meshgate.connections.pool import UpstreamPool
from meshgate.connections.upstream.callers import SessionLimits
from meshgate.connections.upstream.stdio import StdioSupervisor
from meshgate.db.database import EVERYTHING, Database
from meshgate.db.replicas import ReplicaRegistry
from meshgate.events.notices import NoticePublisher
from meshgate.events.tool_calls import ToolCallAnnouncer
from meshgate.events.webhooks import WebhookSender
from meshgate.events.worker import DeliveryPolicy, EventWorker
from meshgate.http.stream_grants import StreamGrants
from meshgate.identity.authentication import Authenticator
from meshgate.identity.connection_tokens import ConnectionTokens
from meshgate.mail.outbox import Outbox
from meshgate.monitoring.writer import AuditWriter
from meshgate.oauth.access_tokens import AccessTokens
from meshgate.oauth.clients import ClientLimits, ClientRegistry
from meshgate.oauth.upstream import UpstreamOAuth
from meshgate.observability.metrics import CIRCUIT_STATES, CallbackCollector, GatewayMetrics
from meshgate.observability.tracing import Tracing, instrument_database
from meshgate.sandbox.service import SandboxService
from meshgate.settings import Settings
from meshgate.storage.stores import ObjectStores
from meshgate.vault import Vault
from meshgate.virtual.catalog import UpstreamCatalog
from meshgate.virtual.directory import VirtualDirectory


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    authenticator: Authenticator
    upstreams: UpstreamPool
    audit: AuditWriter
    mesh_tokens: MeshTokenIssuer
    tracing: Tracing
    metrics: GatewayMetrics | None
    limiter: RateLimiter
    replicas: ReplicaRegistry
    access_tokens: AccessTokens
    oauth_clients: ClientRegistry
    upstream_oauth: UpstreamOAuth
    virtual: VirtualDirectory
    streams: StreamGrants
    calls: CallService
    events: EventWorker
    connection_tokens: ConnectionTokens
    sandbox: SandboxService
    outbox: Outbox
    ai: AiProviders
    storage: ObjectStores
    ai_meter: AiMeter
    clock: Callable[[], float] = time.time  # epoch seconds; sign-in links and invitations expire by it

    def now(self) -> datetime:
        """The process's time as an aware UTC datetime (tests move `clock`, never the real time)."""
        return datetime.fromtimestamp(self.clock(), UTC)

    @classmethod
    def build(cls, settings: Settings, *, clock: Callable[[], float] = time.time) -> Runtime:
        """Every collaborator of one process; `clock` (epoch seconds) is when OAuth tokens and credentials
        expire, for the authorization server, the authenticator and meshgate's own upstream OAuth client."""
        db = Database(settings.database_url)
        vault = Vault(settings.encryption_key, previous=settings.previous_encryption_keys)
        addresses = AddressPolicy.for_gateway(
            settings.host, settings.port, settings.public_url, block_private=settings.block_private_networks
        )
        access_tokens = AccessTokens(
            settings.secret, settings.public_url, settings.oauth_access_token_seconds, clock=clock
        )
        metrics = GatewayMetrics() if settings.metrics_enabled else None
        upstreams = UpstreamPool(
            db,
            vault,
            addresses=addresses,
            stdio=StdioSupervisor(settings.stdio_max_processes, settings.stdio_idle_seconds)
            if settings.local_mode
            else None,
            sessions=SessionLimits(settings.upstream_sessions_max, settings.upstream_session_idle_seconds),
        )
        catalog = UpstreamCatalog(
            db,
            upstreams.get,
            ttl_s=settings.virtual_list_ttl_seconds,
            timeout_s=settings.virtual_list_timeout_seconds,
            metrics=metrics,
        )
        audit = AuditWriter(db, on_written=ToolCallAnnouncer(db))
        limiter = RateLimiter(settings.rate_limit_key, settings.rate_limit_organization)
        ai_limits = AiLimits(
            AiLimitSettings(
                rate_per_key=settings.ai_rate_limit_key,
                rate_per_organization=settings.ai_rate_limit_organization,
                tokens_per_key=settings.ai_token_budget_key,
                tokens_per_organization=settings.ai_token_budget_organization,
            )
        )

        def share(count: int) -> None:  # each of N live replicas takes 1/N of every limit
            limiter.share = ai_limits.share = 1 / count

        mesh_tokens = MeshTokenIssuer(MeshSigningKeys(db, vault), settings.public_url)
        upstream_oauth = UpstreamOAuth(db, vault, addresses, settings.public_url, clock=clock)
        connection_tokens = ConnectionTokens(settings.secret, settings.connection_token_seconds)
        authenticator = Authenticator(
            db,
            usage_flush_seconds=settings.key_usage_flush_seconds,
            access_tokens=access_tokens,
            connection_tokens=connection_tokens,
            clock=clock,
        )
        runtime = cls(
            settings=settings,
            db=db,
            vault=vault,
            authenticator=authenticator,
            upstreams=upstreams,
            audit=audit,
            mesh_tokens=mesh_tokens,
            tracing=(
                tracing := Tracing(
                    enabled=settings.tracing_enabled,
                    sampler=settings.otel_sampler,
                    sampler_arg=settings.otel_sampler_arg,
                    otlp_endpoint=settings.otlp_traces_endpoint,
                    otlp_headers=dict(settings.otlp_headers),
                    service_name=settings.otel_service_name,
                )
            ),
            metrics=metrics,
            limiter=limiter,
            replicas=ReplicaRegistry(db, share, interval_s=settings.replica_heartbeat_seconds),
            access_tokens=access_tokens,
            oauth_clients=ClientRegistry(
                addresses,
                ClientLimits(
                    document_rate=settings.oauth_document_rate,
                    register_rate=settings.oauth_register_rate,
                    registrations_per_day=settings.oauth_register_per_day,
                ),
            ),
            upstream_oauth=upstream_oauth,
            virtual=VirtualDirectory(db, catalog),
            streams=StreamGrants(db, authenticator.authenticate),
            calls=(
                calls := CallService(
                    upstreams, mesh_tokens, audit, upstream_oauth, metrics, connection_tokens=connection_tokens
                )
            ),
            events=EventWorker(
                db,
                calls,
                DeliveryPolicy(
                    batch_size=settings.event_batch_size,
                    lease_s=settings.event_lease_seconds,
                    poll_s=settings.event_poll_seconds,
                    first_retry_s=settings.event_retry_first_seconds,
                    max_retry_s=settings.event_retry_max_seconds,
                    max_attempts=settings.event_max_attempts,
                ),
                metrics=metrics,
                vault=vault,
                webhooks=WebhookSender(addresses),
                tracer=tracing.tracer,
            ),
            connection_tokens=connection_tokens,
            sandbox=SandboxService(settings.sandbox),
            outbox=Outbox.from_config(settings.auth_config),
            ai=AiProviders(
                db,
                vault,
                ProviderHttp(addresses, settings.ai_timeout_seconds),
                models_ttl_s=settings.ai_models_ttl_seconds,
            ),
            storage=ObjectStores(
                settings.data_dir / "objects",
                settings.secret,
                settings.public_url,
                addresses,
                max_object_bytes=settings.storage_max_object_bytes,
                clock=clock,
            ),
            ai_meter=AiMeter(audit, ai_limits),
            clock=clock,
        )
        db.subscribe(runtime._on_change)
        db.on_notices(NoticePublisher(lambda: runtime.events.clock(), metrics, tracing.tracer))  # noqa: PLW0108  (the clock tests set later)
        instrument_database(runtime.tracing, db.engine)
        if runtime.metrics is not None:
            runtime.metrics.instrument_database(db.engine)
            runtime.metrics.add_collector(CallbackCollector(runtime._gauges))
            runtime.metrics.add_collector(CallbackCollector(runtime.outbox.families))
        return runtime

    def _gauges(self) -> list[GaugeMetricFamily]:
        """Values read at scrape time."""
        queue = GaugeMetricFamily("meshgate_audit_queue_depth", "Audit records waiting to be written")
        queue.add_metric([], self.audit.depth)
        dropped = GaugeMetricFamily("meshgate_audit_dropped", "Audit records dropped because the queue was full")
        dropped.add_metric([], self.audit.dropped)
        written = GaugeMetricFamily("meshgate_audit_written", "Audit records written since start")
        written.add_metric([], self.audit.written)
        circuit = GaugeMetricFamily(
            "meshgate_upstream_circuit_state",
            "Circuit breaker per upstream connection: 0 closed, 1 half-open, 2 open",
            labels=["organization", "connection"],
        )
        failures = GaugeMetricFamily(
            "meshgate_upstream_consecutive_failures",
            "Consecutive failed calls per upstream connection (0 = healthy)",
            labels=["organization", "connection"],
        )
        processes = GaugeMetricFamily("meshgate_stdio_processes", "Local STDIO server processes running")
        processes.add_metric([], 0 if self.upstreams.stdio is None else self.upstreams.stdio.running)
        replica_count = GaugeMetricFamily("meshgate_replicas", "Gateway processes alive on this database")
        replica_count.add_metric([], self.replicas.count)
        clients = GaugeMetricFamily("meshgate_upstream_clients", "Upstream connections with a pooled client")
        pooled = self.upstreams.clients()
        clients.add_metric([], len(pooled))
        for client in pooled:
            labels = [client.config.organization_id, client.config.id]
            circuit.add_metric(labels, CIRCUIT_STATES[client.breaker.state])
            failures.add_metric(labels, client.breaker.failures)
        return [queue, dropped, written, circuit, failures, clients, replica_count, processes]

    def _on_change(self, topic: str) -> None:
        if topic in ("identity", EVERYTHING):
            self.mesh_tokens.clear()

    async def start(self) -> None:
        await self.db.start_listening()
        await self.mesh_tokens.keys.start()
        self.authenticator.start()
        self.audit.start()
        await self.replicas.beat()
        self.replicas.start()
        self.virtual.catalog.start()
        if self.settings.event_delivery:
            self.events.start()
        self.outbox.start()

    async def stop(self) -> None:
        """Drain the audit queue and key-usage times, close upstream clients and the database, flush spans."""
        await self.events.stop()
        await self.sandbox.close()
        await self.outbox.close()
        await self.audit.stop()
        await self.authenticator.stop()
        await self.replicas.stop()
        await self.mesh_tokens.keys.stop()
        await self.virtual.stop()
        await self.upstreams.close()
        self.ai.close()
        await self.db.close()
        self.tracing.shutdown()
