"""Sign-in links: magic links bound to the browser that asked; invitations sent by email

Revision ID: 0018
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshgate.db.tables import UTCDateTime

revision = "0018"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_tokens") as batch:
        batch.add_column(sa.Column("browser_hash", sa.String(64), nullable=True))
    with op.batch_alter_table("invitations") as batch:
        batch.add_column(sa.Column("emailed_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("emailed_at")
    with op.batch_alter_table("account_tokens") as batch:
        batch.drop_column("browser_hash")
