"""Virtual MCPs: several connections behind one endpoint

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshgate.db.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "virtual_mcps",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("instructions", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_virtual_mcps"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_virtual_mcps_organization_id_organizations",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_virtual_mcps_organization_id", "virtual_mcps", ["organization_id"])
    op.create_table(
        "virtual_mcp_connections",
        sa.Column("virtual_mcp_id", ID, nullable=False),
        sa.Column("connection_id", ID, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("selected_tools", sa.JSON, nullable=True),
        sa.Column("selected_resources", sa.JSON, nullable=True),
        sa.Column("selected_prompts", sa.JSON, nullable=True),
        sa.Column("tool_overrides", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("virtual_mcp_id", "connection_id", name="pk_virtual_mcp_connections"),
        sa.ForeignKeyConstraint(
            ["virtual_mcp_id"],
            ["virtual_mcps.id"],
            name="fk_virtual_mcp_connections_virtual_mcp_id_virtual_mcps",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name="fk_virtual_mcp_connections_connection_id_connections",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_virtual_mcp_connections_connection_id", "virtual_mcp_connections", ["connection_id"])


def downgrade() -> None:
    op.drop_table("virtual_mcp_connections")
    op.drop_table("virtual_mcps")
