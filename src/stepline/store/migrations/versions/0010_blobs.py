"""blobs: large step and run outputs kept outside their rows, and which runs refer to them

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("written_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blobs")),
    )
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blobs_written_at"), ["written_at"], unique=False)
    op.create_table(
        "blob_chunks",
        sa.Column("blob_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("blob_id", "seq", name=op.f("pk_blob_chunks")),
    )
    op.create_table(
        "blob_refs",
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("blob_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "blob_id", name=op.f("pk_blob_refs")),
    )
    with op.batch_alter_table("blob_refs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blob_refs_blob_id"), ["blob_id"], unique=False)


def downgrade() -> None:
    op.drop_table("blob_refs")
    op.drop_table("blob_chunks")
    op.drop_table("blobs")
