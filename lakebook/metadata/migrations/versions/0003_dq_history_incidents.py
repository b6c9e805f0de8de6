"""DQ result metrics for every run, and data-quality incidents.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NEW_RESULT_COLUMNS = (
    "failure_rate",
    "duration_ms",
    "observed_value",
    "rows_fixed",
    "action_taken",
    "committed",
    "message",
)


def upgrade() -> None:
    with op.batch_alter_table("dq_results") as batch:
        batch.add_column(sa.Column("failure_rate", sa.Float, nullable=True))
        batch.add_column(sa.Column("duration_ms", sa.Float, nullable=True))
        batch.add_column(sa.Column("observed_value", sa.Float, nullable=True))
        batch.add_column(sa.Column("rows_fixed", sa.Integer, nullable=True))
        batch.add_column(sa.Column("action_taken", sa.String(16), nullable=True))
        batch.add_column(sa.Column("committed", sa.Boolean, nullable=True))
        batch.add_column(sa.Column("message", sa.Text, nullable=True))
        batch.create_index("ix_dq_results_dataset_rule", ["dataset", "rule"])
    op.create_table(
        "dq_incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("job", sa.String(128), nullable=False),
        sa.Column("dataset", sa.String(160), nullable=False, index=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("check_type", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("opened_run_id", sa.String(64), nullable=False),
        sa.Column("last_run_id", sa.String(64), nullable=False),
        sa.Column("occurrences", sa.Integer, nullable=False),
        sa.Column("rows_failing", sa.Integer, nullable=False),
        sa.Column("failure_rate", sa.Float, nullable=False),
        sa.Column("action_taken", sa.String(16), nullable=False),
        sa.Column("sample", sa.JSON, nullable=True),
        sa.Column("notification", sa.String(128), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_dq_incidents_rule", "dq_incidents", ["pipeline", "job", "rule", "status"])


def downgrade() -> None:
    op.drop_index("ix_dq_incidents_rule", table_name="dq_incidents")
    op.drop_table("dq_incidents")
    with op.batch_alter_table("dq_results") as batch:
        batch.drop_index("ix_dq_results_dataset_rule")
        for name in reversed(NEW_RESULT_COLUMNS):
            batch.drop_column(name)
