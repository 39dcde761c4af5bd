"""Ed25519 keys that sign x-mesh-token, published at /.well-known/jwks.json

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshgate.db.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mesh_signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("private_key", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("activates_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("kid", name="pk_mesh_signing_keys"),
        sa.UniqueConstraint("generation", name="uq_mesh_signing_keys_generation"),
    )


def downgrade() -> None:
    op.drop_table("mesh_signing_keys")
