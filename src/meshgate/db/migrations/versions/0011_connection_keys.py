"""Connection keys: long-lived credentials with which an upstream acts as its own connection

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshgate.db.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "connection_keys",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("connection_id", ID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_connection_keys"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_connection_keys_organization_id_organizations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name="fk_connection_keys_connection_id_connections",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("key_hash", name="uq_connection_keys_key_hash"),
    )
    op.create_index(
        "ix_connection_keys_organization_id_connection_id", "connection_keys", ["organization_id", "connection_id"]
    )


def downgrade() -> None:
    op.drop_table("connection_keys")
