"""OAuth 2.1: browser sessions, clients, grants, codes, refresh tokens; tokens for OAuth-protected upstreams

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshgate.db.tables import LongText, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "browser_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_browser_sessions"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_browser_sessions_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_browser_sessions_user_id", "browser_sessions", ["user_id"])
    op.create_table(
        "oauth_clients",
        sa.Column("id", ID, nullable=False),
        sa.Column("client_id", sa.String(512), nullable=False),
        sa.Column("client_secret_hash", sa.String(64), nullable=True),
        sa.Column("organization_id", ID, nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("redirect_uris", sa.JSON, nullable=False),
        sa.Column("token_endpoint_auth_method", sa.String(32), nullable=False),
        sa.Column("details", sa.JSON, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_clients"),
        sa.UniqueConstraint("client_id", name="uq_oauth_clients_client_id"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_oauth_clients_organization_id_organizations",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "oauth_grants",
        sa.Column("id", ID, nullable=False),
        sa.Column("client_id", sa.String(512), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("resource", sa.String(2048), nullable=False),
        sa.Column("scope", sa.Text, nullable=True),
        sa.Column("permissions", sa.JSON, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_grants"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_oauth_grants_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_oauth_grants_organization_id_organizations",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_oauth_grants_user_id", "oauth_grants", ["user_id"])
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("grant_id", ID, nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_oauth_codes"),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["oauth_grants.id"], name="fk_oauth_codes_grant_id_oauth_grants", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_oauth_codes_grant_id", "oauth_codes", ["grant_id"])
    op.create_table(
        "oauth_refresh_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("grant_id", ID, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_oauth_refresh_tokens"),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["oauth_grants.id"],
            name="fk_oauth_refresh_tokens_grant_id_oauth_grants",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_oauth_refresh_tokens_grant_id", "oauth_refresh_tokens", ["grant_id"])
    op.create_table(
        "connection_oauth",
        sa.Column("connection_id", ID, nullable=False),
        sa.Column("issuer", sa.String(2048), nullable=False),
        sa.Column("sealed", LongText, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("connection_id", name="pk_connection_oauth"),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name="fk_connection_oauth_connection_id_connections",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "oauth_upstream_flows",
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("connection_id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("sealed", LongText, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name="pk_oauth_upstream_flows"),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name="fk_oauth_upstream_flows_connection_id_connections",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    for table in (
        "oauth_upstream_flows",
        "connection_oauth",
        "oauth_refresh_tokens",
        "oauth_codes",
        "oauth_grants",
        "oauth_clients",
        "browser_sessions",
    ):
        op.drop_table(table)
