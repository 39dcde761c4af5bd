"""Single sign-on per organization: OpenID Connect settings, domains that join, identities, flows in progress

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshgate.db.tables import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

ID = sa.String(36)


def _org_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id"], ["organizations.id"], name=f"fk_{table}_organization_id_organizations", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "organization_sso",
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("issuer", sa.String(2048), nullable=False),
        sa.Column("client_id", sa.String(500), nullable=False),
        sa.Column("client_secret", sa.Text(), nullable=True),
        sa.Column("scopes", sa.String(500), nullable=False),
        sa.Column("default_role", sa.String(64), nullable=False),
        sa.Column("sso_required", sa.Boolean(), nullable=False),
        sa.Column("updated_by", ID, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", name="pk_organization_sso"),
        _org_fk("organization_sso"),
    )
    op.create_table(
        "organization_domains",
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("domain", name="pk_organization_domains"),
        _org_fk("organization_domains"),
    )
    op.create_index("ix_organization_domains_organization_id", "organization_domains", ["organization_id"])
    op.create_table(
        "sso_identities",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("issuer", sa.String(2048), nullable=False),
        sa.Column("subject_hash", sa.String(64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_login_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sso_identities"),
        _org_fk("sso_identities"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_sso_identities_user_id_users", ondelete="CASCADE"),
        sa.UniqueConstraint("organization_id", "subject_hash", name="uq_sso_identities_organization_id_subject_hash"),
    )
    op.create_index("ix_sso_identities_user_id", "sso_identities", ["user_id"])
    op.create_table(
        "sso_flows",
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name="pk_sso_flows"),
        _org_fk("sso_flows"),
    )


def downgrade() -> None:
    op.drop_table("sso_flows")
    op.drop_index("ix_sso_identities_user_id", table_name="sso_identities")
    op.drop_table("sso_identities")
    op.drop_index("ix_organization_domains_organization_id", table_name="organization_domains")
    op.drop_table("organization_domains")
    op.drop_table("organization_sso")
