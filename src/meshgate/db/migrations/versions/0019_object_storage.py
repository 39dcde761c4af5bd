"""Object storage: an organization's S3-compatible store (the secret key sealed in the vault)

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshgate.db.tables import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

ID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "object_storage_settings",
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("access_key_id", sa.String(128), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("path_style", sa.Boolean(), nullable=False),
        sa.Column("updated_by", ID, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", name="pk_object_storage_settings"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_object_storage_settings_organization_id_organizations",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("object_storage_settings")
