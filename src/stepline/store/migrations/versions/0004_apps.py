"""apps: the registry's apps, Python and SDK (Inngest protocol) alike

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("sdk", sa.String(length=64), nullable=True),
        sa.Column("framework", sa.String(length=64), nullable=True),
        sa.Column("app_version", sa.String(length=255), nullable=True),
        sa.Column("checksum", sa.String(length=64), nullable=True),
        sa.Column("synced_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apps")),
    )
    # Every app that registered functions before apps were recorded is a Python app.
    op.execute(
        "INSERT INTO apps (id, kind, synced_at) "
        "SELECT app_id, 'python', MAX(updated_at) FROM functions GROUP BY app_id"
    )


def downgrade() -> None:
    op.drop_table("apps")
