"""The event bus: events, subscriptions and deliveries

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshgate.db.tables import LongText, UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.String(36)


def _organization(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id"],
        ["organizations.id"],
        name=f"fk_{table}_organization_id_organizations",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(1024), nullable=True),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("datacontenttype", sa.String(100), nullable=False),
        sa.Column("data", LongText, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=True),
        sa.Column("cron", sa.String(120), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("recurring_key", sa.String(64), nullable=True),
        sa.Column("recurrence_of", ID, nullable=True),
        sa.Column("published_by", ID, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        _organization("events"),
        sa.UniqueConstraint("organization_id", "recurring_key", name="uq_events_organization_id_recurring_key"),
    )
    op.create_index("ix_events_organization_id_time", "events", ["organization_id", "time"])
    op.create_index("ix_events_status_due_at", "events", ["status", "due_at"])
    op.create_table(
        "event_subscriptions",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("connection_id", ID, nullable=True),
        sa.Column("webhook_url", sa.String(2048), nullable=True),
        sa.Column("webhook_secret", sa.Text, nullable=True),
        sa.Column("event_type", sa.String(202), nullable=False),
        sa.Column("publisher", sa.String(200), nullable=True),
        sa.Column("filter", sa.JSON, nullable=True),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_subscriptions"),
        _organization("event_subscriptions"),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name="fk_event_subscriptions_connection_id_connections",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_event_subscriptions_organization_id_connection_id",
        "event_subscriptions",
        ["organization_id", "connection_id"],
    )
    op.create_index(
        "ix_event_subscriptions_organization_id_event_type", "event_subscriptions", ["organization_id", "event_type"]
    )
    op.create_table(
        "event_deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("subscription_id", ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_deliveries"),
        _organization("event_deliveries"),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name="fk_event_deliveries_event_id_events", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["event_subscriptions.id"],
            name="fk_event_deliveries_subscription_id_event_subscriptions",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("event_id", "subscription_id", name="uq_event_deliveries_event_id_subscription_id"),
    )
    op.create_index("ix_event_deliveries_status_next_attempt_at", "event_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_event_deliveries_subscription_id_status", "event_deliveries", ["subscription_id", "status"])


def downgrade() -> None:
    op.drop_table("event_deliveries")
    op.drop_table("event_subscriptions")
    op.drop_table("events")
