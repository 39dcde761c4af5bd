"""connections registry and the audit log

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshgate.db.tables import LongText, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("icon", sa.String(2048), nullable=True),
        sa.Column("connection_type", sa.String(8), nullable=False),
        sa.Column("connection_url", sa.String(2048), nullable=True),
        sa.Column("secrets", LongText, nullable=True),
        sa.Column("secret_summary", sa.JSON, nullable=True),
        sa.Column("configuration_scopes", sa.JSON, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("server_info", sa.JSON, nullable=True),
        sa.Column("instructions", sa.Text, nullable=True),
        sa.Column("tools", sa.JSON, nullable=True),
        sa.Column("connect_timeout_ms", sa.Integer, nullable=False),
        sa.Column("call_timeout_ms", sa.Integer, nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_connections"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_connections_organization_id_organizations",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_connections_organization_id", "connections", ["organization_id"])
    op.create_table(
        "monitoring_logs",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("connection_id", ID, nullable=True),
        sa.Column("virtual_mcp_id", ID, nullable=True),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("tool_name", sa.String(255), nullable=True),
        sa.Column("caller_type", sa.String(16), nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("api_key_id", ID, nullable=True),
        sa.Column("client_id", sa.String(255), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("protocol_version", sa.String(32), nullable=True),
        sa.Column("input", LongText, nullable=True),
        sa.Column("output", LongText, nullable=True),
        sa.Column("is_error", sa.Boolean, nullable=False),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitoring_logs"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_monitoring_logs_organization_id_organizations",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_monitoring_logs_organization_id_created_at", "monitoring_logs", ["organization_id", "created_at"]
    )
    op.create_index(
        "ix_monitoring_logs_organization_id_connection_id_created_at",
        "monitoring_logs",
        ["organization_id", "connection_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("monitoring_logs")
    op.drop_table("connections")
