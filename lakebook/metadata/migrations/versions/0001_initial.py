"""Pipeline runs, job runs, the watermark ledger and DQ results.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("pipeline", sa.String(128), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Float, nullable=True),
        sa.Column("record_dir", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.String(64),
            sa.ForeignKey("pipeline_runs.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("pipeline", sa.String(128), nullable=False, index=True),
        sa.Column("job", sa.String(128), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("dataset", sa.String(160), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Float, nullable=True),
        sa.Column("rows_read", sa.Integer, nullable=True),
        sa.Column("rows_written", sa.Integer, nullable=True),
        sa.Column("quarantined_rows", sa.Integer, nullable=True),
        sa.Column("deduplicated_rows", sa.Integer, nullable=True),
        sa.Column("dropped_rows", sa.Integer, nullable=True),
        sa.Column("watermark_before", sa.Text, nullable=True),
        sa.Column("watermark_after", sa.Text, nullable=True),
        sa.Column("table_version", sa.Integer, nullable=True),
        sa.Column("notebook_path", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
    )
    op.create_table(
        "watermarks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(128), nullable=False, index=True),
        sa.Column("job", sa.String(128), nullable=False, index=True),
        sa.Column("run_id", sa.String(64), nullable=False, index=True),
        sa.Column("column", sa.String(128), nullable=False),
        sa.Column("value_before", sa.Text, nullable=True),
        sa.Column("value_after", sa.Text, nullable=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dq_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False, index=True),
        sa.Column("pipeline", sa.String(128), nullable=False, index=True),
        sa.Column("job", sa.String(128), nullable=False),
        sa.Column("dataset", sa.String(160), nullable=False, index=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("check_type", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("rows_checked", sa.Integer, nullable=False),
        sa.Column("rows_failing", sa.Integer, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dq_results")
    op.drop_table("watermarks")
    op.drop_table("job_runs")
    op.drop_table("pipeline_runs")
