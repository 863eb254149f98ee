"""the step in flight: which step a leased run is executing, and since when

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("step_started_at", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue", schema=None) as batch_op:
        batch_op.drop_column("step_started_at")
        batch_op.drop_column("step_id")
