"""Automations: a tool called when an event matches or a cron fires, their triggers and their runs

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshgate.db.tables import UTCDateTime

revision = "0012"
down_revision = "0011"
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


def _automation(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["automation_id"], ["automations.id"], name=f"fk_{table}_automation_id_automations", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "automations",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("connection_id", ID, nullable=False),
        sa.Column("tool_name", sa.String(200), nullable=False),
        sa.Column("arguments", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_automations"),
        _organization("automations"),
    )
    op.create_index("ix_automations_organization_id_name", "automations", ["organization_id", "name"])
    op.create_table(
        "automation_triggers",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("automation_id", ID, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("subscription_id", ID, nullable=False),
        sa.Column("recurring_event_id", ID, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_automation_triggers"),
        _organization("automation_triggers"),
        _automation("automation_triggers"),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["event_subscriptions.id"],
            name="fk_automation_triggers_subscription_id_event_subscriptions",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("subscription_id", name="uq_automation_triggers_subscription_id"),
    )
    op.create_index("ix_automation_triggers_automation_id", "automation_triggers", ["automation_id"])
    op.create_table(
        "automation_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("automation_id", ID, nullable=False),
        sa.Column("trigger_id", ID, nullable=True),
        sa.Column("event_id", ID, nullable=True),
        sa.Column("event_type", sa.String(200), nullable=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_automation_runs"),
        _organization("automation_runs"),
        _automation("automation_runs"),
    )
    op.create_index("ix_automation_runs_automation_id_started_at", "automation_runs", ["automation_id", "started_at"])


def downgrade() -> None:
    op.drop_table("automation_runs")
    op.drop_table("automation_triggers")
    op.drop_table("automations")
