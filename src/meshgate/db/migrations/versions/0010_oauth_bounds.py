"""API keys remember the OAuth grant that created them; dynamic clients remember the address they came from

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Keys made before this migration have no grant: nothing recorded which credential created them.
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("grant_id", sa.String(36), nullable=True))
        batch.create_foreign_key(
            "fk_api_keys_grant_id_oauth_grants", "oauth_grants", ["grant_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_api_keys_grant_id", ["grant_id"])
    with op.batch_alter_table("oauth_clients") as batch:
        batch.add_column(sa.Column("registered_from", sa.String(64), nullable=True))
        batch.create_index("ix_oauth_clients_registered_from_created_at", ["registered_from", "created_at"])
    op.create_index("ix_oauth_grants_client_id", "oauth_grants", ["client_id"])


def downgrade() -> None:
    op.drop_index("ix_oauth_grants_client_id", "oauth_grants")
    with op.batch_alter_table("oauth_clients") as batch:
        batch.drop_index("ix_oauth_clients_registered_from_created_at")
        batch.drop_column("registered_from")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_grant_id")
        batch.drop_constraint("fk_api_keys_grant_id_oauth_grants", type_="foreignkey")
        batch.drop_column("grant_id")
