"""flow control, cancellation and composition

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SLOT_KEYS = ("slot_key_1", "slot_key_2")


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("cancelled_by", sa.String(length=26), nullable=True))
        batch_op.add_column(sa.Column("parent_run_id", sa.String(length=26), nullable=True))
        batch_op.add_column(sa.Column("parent_step", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("start_by", sa.Double(), nullable=True))
        batch_op.create_index(batch_op.f("ix_runs_parent_run_id"), ["parent_run_id"])
    with op.batch_alter_table("queue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slot_key_1", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("slot_limit_1", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("slot_key_2", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("slot_limit_2", sa.Integer(), nullable=True))
        batch_op.drop_index("ix_queue_ready")
        batch_op.create_index(
            "ix_queue_ready",
            [sa.text("(available_at - priority)")],
            sqlite_where=sa.text("lease_owner IS NULL"),
            postgresql_where=sa.text("lease_owner IS NULL"),
        )
        for column in _SLOT_KEYS:
            batch_op.create_index(
                f"ix_queue_held_{column}",
                [column],
                sqlite_where=sa.text(f"{column} IS NOT NULL AND lease_owner IS NOT NULL"),
                postgresql_where=sa.text(f"{column} IS NOT NULL AND lease_owner IS NOT NULL"),
            )
    op.create_table(
        "flow_buckets",
        sa.Column("key", sa.String(length=600), nullable=False),
        sa.Column("tat", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_flow_buckets")),
    )
    op.create_index(op.f("ix_flow_buckets_expires_at"), "flow_buckets", ["expires_at"])
    op.create_table(
        "singletons",
        sa.Column("key", sa.String(length=600), nullable=False),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_singletons")),
    )
    op.create_table(
        "pending_runs",
        sa.Column("key", sa.String(length=600), nullable=False),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_pending_runs")),
    )
    op.create_table(
        "batch_members",
        sa.Column("event_id", sa.String(length=26), nullable=False),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "run_id", name=op.f("pk_batch_members")),
    )
    op.create_table(
        "cancel_listeners",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("event_name", sa.String(length=512), nullable=False),
        sa.Column("expression", sa.Text(), nullable=True),
        sa.Column("match_path", sa.String(length=255), nullable=True),
        sa.Column("match_value", sa.String(length=600), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_cancel_listeners")),
    )
    op.create_index(
        op.f("ix_cancel_listeners_event_name_match_path_match_value"),
        "cancel_listeners",
        ["event_name", "match_path", "match_value"],
    )
    op.create_index(op.f("ix_cancel_listeners_run_id"), "cancel_listeners", ["run_id"])


def downgrade() -> None:
    op.drop_table("cancel_listeners")
    op.drop_table("batch_members")
    op.drop_table("pending_runs")
    op.drop_table("singletons")
    op.drop_table("flow_buckets")
    with op.batch_alter_table("queue", schema=None) as batch_op:
        for column in _SLOT_KEYS:
            batch_op.drop_index(f"ix_queue_held_{column}")
        batch_op.drop_index("ix_queue_ready")
        batch_op.create_index(
            "ix_queue_ready",
            [sa.text("priority DESC"), "available_at"],
            sqlite_where=sa.text("lease_owner IS NULL"),
            postgresql_where=sa.text("lease_owner IS NULL"),
        )
        for column in ("slot_limit_2", "slot_key_2", "slot_limit_1", "slot_key_1"):
            batch_op.drop_column(column)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_parent_run_id"))
        for column in ("start_by", "parent_step", "parent_run_id", "cancelled_by", "reason"):
            batch_op.drop_column(column)
