"""AI usage in the audit log: tokens in and out and the cost of each AI call

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitoring_logs") as batch:
        batch.add_column(sa.Column("tokens_in", sa.Integer, nullable=True))
        batch.add_column(sa.Column("tokens_out", sa.Integer, nullable=True))
        batch.add_column(sa.Column("cost_usd", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("monitoring_logs") as batch:
        batch.drop_column("cost_usd")
        batch.drop_column("tokens_out")
        batch.drop_column("tokens_in")
