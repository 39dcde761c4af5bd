"""Table definitions (SQLAlchemy Core). Alembic migrations are the source of truth for the schema;
these definitions must match them, which `tests/db/test_migrations.py` checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import DateTime, TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _mysql() -> Any:
    """The MySQL dialect's types, loaded only for a MySQL or MariaDB database (50 ms of start otherwise)."""
    from sqlalchemy.dialects import mysql  # noqa: PLC0415  (see above)

    return mysql


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (portable across SQLite, PostgreSQL and MySQL), returns aware UTC."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(_mysql().DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use datetime.now(UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


ID = String(36)

meta = Table(
    "meshgate_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("email_verified_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("slug", String(100), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("settings", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

roles = Table(
    "roles",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=True),
    Column("permissions", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("organization_id", "name"),
)

members = Table(
    "members",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("organization_id", "user_id"),
    Index(None, "user_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("permissions", JSON, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The OAuth grant whose access token created the key: the key dies with the grant (security review 26).
    Column("grant_id", ID, ForeignKey("oauth_grants.id", ondelete="CASCADE"), nullable=True),
    Index(None, "organization_id"),
    Index(None, "grant_id"),
)


replicas = Table(
    "meshgate_replicas",
    metadata,
    Column("id", ID, primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
)


class LongText(TypeDecorator[str]):
    """MySQL's TEXT holds 65,535 bytes; audit payloads are cut at 64 KiB, so they need MEDIUMTEXT there."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(_mysql().MEDIUMTEXT())
        return dialect.type_descriptor(Text())


connections = Table(
    "connections",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("icon", String(2048), nullable=True),
    Column("connection_type", String(8), nullable=False),
    Column("connection_url", String(2048), nullable=True),
    Column("secrets", LongText, nullable=True),
    Column("secret_summary", JSON, nullable=True),
    Column("configuration_scopes", JSON, nullable=True),
    Column("metadata", JSON, nullable=True),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("server_info", JSON, nullable=True),
    Column("instructions", Text, nullable=True),
    Column("tools", JSON, nullable=True),
    Column("connect_timeout_ms", Integer, nullable=False),
    Column("call_timeout_ms", Integer, nullable=False),
    Column("created_by", ID, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "organization_id"),
)

monitoring_logs = Table(
    "monitoring_logs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("connection_id", ID, nullable=True),
    Column("virtual_mcp_id", ID, nullable=True),
    Column("method", String(64), nullable=False),
    Column("tool_name", String(255), nullable=True),
    Column("caller_type", String(16), nullable=False),
    Column("user_id", ID, nullable=True),
    Column("api_key_id", ID, nullable=True),
    Column("client_id", String(255), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("request_id", String(200), nullable=True),
    Column("protocol_version", String(32), nullable=True),
    Column("input", LongText, nullable=True),
    Column("output", LongText, nullable=True),
    Column("is_error", Boolean, nullable=False),
    Column("error_message", Text, nullable=True),
    Column("duration_ms", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # AI calls (method `ai/…`, tool_name the model id): tokens the provider counted and their price
    Column("tokens_in", Integer, nullable=True),
    Column("tokens_out", Integer, nullable=True),
    Column("cost_usd", Float, nullable=True),
    Index(None, "organization_id", "created_at"),
    Index(None, "organization_id", "connection_id", "created_at"),
)

# --- OAuth 2.1: meshgate as authorization server (for MCP clients) --------------------------------------------

browser_sessions = Table(
    "browser_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index(None, "user_id"),
)

account_tokens = Table(
    "account_tokens",
    metadata,
    # One-time links sent by mail (password reset, email verification): only the SHA-256 of the token is kept.
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("email", String(320), nullable=False),  # the address the link was sent to; a change voids it
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    # Magic links only: SHA-256 of the cookie set in the browser that asked; the link works only there.
    Column("browser_hash", String(64), nullable=True),
    Index(None, "user_id"),
)

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("id", ID, primary_key=True),
    Column("client_id", String(512), nullable=False, unique=True),
    Column("client_secret_hash", String(64), nullable=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("redirect_uris", JSON, nullable=False),
    Column("token_endpoint_auth_method", String(32), nullable=False),
    Column("details", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The address a dynamic registration came from: registrations are counted per address (security review 21).
    Column("registered_from", String(64), nullable=True),
    Index(None, "registered_from", "created_at"),
)

oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("client_id", String(512), nullable=False),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("resource", String(2048), nullable=False),
    Column("scope", Text, nullable=True),
    Column("permissions", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Index(None, "user_id"),
    Index(None, "client_id"),
)

oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("grant_id", ID, ForeignKey("oauth_grants.id", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Index(None, "grant_id"),
)

oauth_refresh_tokens = Table(
    "oauth_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("grant_id", ID, ForeignKey("oauth_grants.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Index(None, "grant_id"),
)

# --- OAuth 2.1: meshgate as client of OAuth-protected upstream servers -----------------------------------------

connection_oauth = Table(
    "connection_oauth",
    metadata,
    Column("connection_id", ID, ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True),
    Column("issuer", String(2048), nullable=False),
    Column("sealed", LongText, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

oauth_upstream_flows = Table(
    "oauth_upstream_flows",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("connection_id", ID, ForeignKey("connections.id", ondelete="CASCADE"), nullable=False),
    Column("organization_id", ID, nullable=False),
    Column("sealed", LongText, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)


virtual_mcps = Table(
    "virtual_mcps",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("instructions", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_by", ID, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "organization_id"),
)

virtual_mcp_connections = Table(
    "virtual_mcp_connections",
    metadata,
    Column("virtual_mcp_id", ID, ForeignKey("virtual_mcps.id", ondelete="CASCADE"), primary_key=True),
    Column("connection_id", ID, ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("selected_tools", JSON, nullable=True),
    Column("selected_resources", JSON, nullable=True),
    Column("selected_prompts", JSON, nullable=True),
    Column("tool_overrides", JSON, nullable=True),
    Index(None, "connection_id"),
)

# --- invitations (dashboard links that add a person to an organization) ------------------------------------

invitations = Table(
    "invitations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(64), nullable=False),
    Column("email", String(320), nullable=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    # When the current link was mailed to `email` (it was then never shown to anyone); null: shown to the inviter.
    Column("emailed_at", UTCDateTime, nullable=True),
    Index(None, "organization_id"),
)

# --- x-mesh-token signing keys (Ed25519, shared by every replica; see meshgate.calls.mesh_keys) ----------

mesh_signing_keys = Table(
    "mesh_signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),  # RFC 7638 thumbprint of the public key
    Column("generation", Integer, nullable=False, unique=True),  # one successor per key, even under races
    Column("public_key", String(64), nullable=False),  # base64url of the 32-byte Ed25519 public key
    Column("private_key", Text, nullable=False),  # sealed by the vault, context "mesh-signing-key:<kid>"
    Column("created_at", UTCDateTime, nullable=False),
    Column("activates_at", UTCDateTime, nullable=False),  # signs from then; published from creation
)

# --- the event bus (CloudEvents, subscriptions, at-least-once deliveries; see meshgate.events) ---------------

connection_keys = Table(  # long-lived credentials with which an upstream acts as its connection (issue 16)
    "connection_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("connection_id", ID, ForeignKey("connections.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_by", ID, nullable=False),  # the owner or admin who created it
    Column("expires_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "organization_id", "connection_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(200), nullable=False),
    Column("source", String(200), nullable=False),
    Column("subject", String(1024), nullable=True),
    Column("time", UTCDateTime, nullable=False),
    Column("datacontenttype", String(100), nullable=False),
    Column("data", LongText, nullable=True),  # JSON text
    Column("status", String(16), nullable=False),  # published | scheduled | recurring | cancelled
    Column("due_at", UTCDateTime, nullable=True),  # scheduled: when it is published; recurring: next firing
    Column("cron", String(120), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("recurring_key", String(64), nullable=True),  # sha256(source, type) of a recurring event: one each
    Column("recurrence_of", ID, nullable=True),  # the recurring event an occurrence came from
    Column("published_by", ID, nullable=True),  # the user behind the credential that published it
    Column("traceparent", String(55), nullable=True),  # W3C trace context of the span that published it
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("organization_id", "recurring_key"),
    Index(None, "organization_id", "time"),
    Index(None, "status", "due_at"),
)

event_subscriptions = Table(
    "event_subscriptions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("connection_id", ID, ForeignKey("connections.id", ondelete="CASCADE"), nullable=True),
    Column("webhook_url", String(2048), nullable=True),  # instead of a connection: an https endpoint
    Column("webhook_secret", Text, nullable=True),  # sealed by the vault (context "webhook-secret:<id>")
    Column("event_type", String(202), nullable=False),  # a type or `prefix.*`
    Column("publisher", String(200), nullable=True),  # only events of this source
    Column("filter", JSON, nullable=True),
    Column("created_by", ID, nullable=False),  # deliveries run with this user's permissions at the time
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "organization_id", "connection_id"),
    Index(None, "organization_id", "event_type"),
)

event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", ID, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("subscription_id", ID, ForeignKey("event_subscriptions.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | dead | cancelled
    Column("attempts", Integer, nullable=False),  # failed attempts so far (a subscriber's retryAfter is not one)
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_owner", String(64), nullable=True),  # the worker delivering it now ...
    Column("lease_until", UTCDateTime, nullable=True),  # ... until then; afterwards any worker takes it over
    Column("last_error", String(500), nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("event_id", "subscription_id"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "subscription_id", "status"),
)

# --- automations (a tool called when an event matches or a cron fires; see meshgate.events.automations) -----

automations = Table(
    "automations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", String(1000), nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("owner_id", ID, nullable=False),  # runs call the tool with this user's permissions at the time
    Column("connection_id", ID, nullable=False),  # no foreign key: runs and history outlive a removed connection
    Column("tool_name", String(200), nullable=False),
    Column("arguments", JSON, nullable=False),  # the arguments template (see meshgate.events.templates)
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "organization_id", "name"),
)

automation_triggers = Table(
    "automation_triggers",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("automation_id", ID, ForeignKey("automations.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(8), nullable=False),  # event | cron
    # The subscription that brings the trigger's events (a cron trigger's: its own recurring event's firings).
    Column("subscription_id", ID, ForeignKey("event_subscriptions.id", ondelete="CASCADE"), nullable=False),
    Column("recurring_event_id", ID, nullable=True),  # cron: the recurring event that fires it
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("subscription_id"),
    Index(None, "automation_id"),
)

automation_runs = Table(
    "automation_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("automation_id", ID, ForeignKey("automations.id", ondelete="CASCADE"), nullable=False),
    Column("trigger_id", ID, nullable=True),  # none for AUTOMATION_RUN; kept after the trigger is removed
    Column("event_id", ID, nullable=True),
    Column("event_type", String(200), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # ok | error | refused
    Column("result", Text, nullable=True),  # the tool's result as JSON, cut to 4 KiB
    Column("error", String(500), nullable=True),
    Index(None, "automation_id", "started_at"),
)

# --- AI providers (keys sealed by the vault; see meshgate.ai) -------------------------------------------------

ai_provider_keys = Table(
    "ai_provider_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(40), nullable=False),  # the prefix of its model ids: `<name>/<model>`
    Column("provider", String(32), nullable=False),  # openai | anthropic | gemini | openrouter | openai-compatible
    Column("base_url", String(2048), nullable=True),  # none: the provider's own API
    Column("secret", Text, nullable=True),  # sealed by the vault (context "ai-provider-key:<id>"); none: no key
    Column("hint", String(16), nullable=True),  # the key's last four characters, for people to recognise it
    Column("created_by", ID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("organization_id", "name"),
)

# An organization's own S3-compatible store; no row: the local directory under the data dir (the default).
object_storage_settings = Table(
    "object_storage_settings",
    metadata,
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("endpoint", String(2048), nullable=False),  # http(s)://host[:port], no credentials
    Column("bucket", String(63), nullable=False),
    Column("region", String(64), nullable=False),
    Column("access_key_id", String(128), nullable=False),
    Column("secret", Text, nullable=False),  # sealed by the vault (context "object-storage:<organization id>")
    Column("path_style", Boolean, nullable=False),  # https://endpoint/bucket/key rather than bucket.endpoint
    Column("updated_by", ID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# --- Single sign-on per organization (OpenID Connect; see meshgate.sso) ------------------------------------------

organization_sso = Table(
    "organization_sso",
    metadata,
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("provider", String(16), nullable=False),  # oidc | google (an OIDC preset) | github (its OAuth)
    Column("issuer", String(2048), nullable=False),
    Column("client_id", String(500), nullable=False),
    Column("client_secret", Text, nullable=True),  # sealed by the vault (context "sso-client-secret:<org id>")
    Column("scopes", String(500), nullable=False),
    Column("default_role", String(64), nullable=False),  # what people who join by their domain become; never owner
    Column("sso_required", Boolean, nullable=False),  # members may not use passwords or sign-in links
    Column("updated_by", ID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

organization_domains = Table(
    "organization_domains",
    metadata,
    Column("domain", String(253), primary_key=True),  # one organization per domain on the whole instance
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("created_by", ID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "organization_id"),
)

sso_identities = Table(
    "sso_identities",
    metadata,
    # An identity at an organization's identity provider (issuer + subject), and the account it signs in to.
    Column("id", ID, primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("issuer", String(2048), nullable=False),
    Column("subject_hash", String(64), nullable=False),  # SHA-256 of issuer and `sub`
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime, nullable=False),
    UniqueConstraint("organization_id", "subject_hash"),
    Index(None, "user_id"),
)

sso_flows = Table(
    "sso_flows",
    metadata,
    # A sign-in sent to an identity provider and not back yet: PKCE verifier and nonce sealed, bound to the browser.
    Column("state_hash", String(64), primary_key=True),
    Column("organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("browser_hash", String(64), nullable=False),
    Column("sealed", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
