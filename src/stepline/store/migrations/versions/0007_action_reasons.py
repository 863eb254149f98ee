"""who cancelled a run by request and why, the reason given for a replay, and a pause's record

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancel_requested_by", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("cancel_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("trigger_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("functions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("paused_by", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("pause_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("functions", schema=None) as batch_op:
        batch_op.drop_column("pause_reason")
        batch_op.drop_column("paused_by")
        batch_op.drop_column("paused_at")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("trigger_reason")
        batch_op.drop_column("cancel_reason")
        batch_op.drop_column("cancel_requested_by")
