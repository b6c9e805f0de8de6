"""ORM rows of the metadata database. API and CLI models live elsewhere; these are storage."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores datetimes as UTC and reads them back timezone-aware, SQLite included."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the metadata DB; use UTC-aware datetimes")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class RunStatus(str, enum.Enum):
    """Status of a pipeline run or a job run."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


class Base(DeclarativeBase):
    """Declarative base of every metadata table."""


class PipelineRun(Base):
    """One run of a pipeline."""

    __tablename__ = "pipeline_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    trigger: Mapped[str] = mapped_column(String(32), default="manual")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    record_dir: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class JobRun(Base):
    """One job's execution inside a pipeline run (ingest and dataset jobs alike)."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True
    )
    pipeline: Mapped[str] = mapped_column(String(128), index=True)
    job: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    dataset: Mapped[str] = mapped_column(String(160), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    rows_read: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rows_written: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quarantined_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deduplicated_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dropped_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    watermark_before: Mapped[str | None] = mapped_column(Text, nullable=True)
    watermark_after: Mapped[str | None] = mapped_column(Text, nullable=True)
    table_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    notebook_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)


class WatermarkEntry(Base):
    """The watermark ledger: one row per successful incremental commit."""

    __tablename__ = "watermarks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(128), index=True)
    job: Mapped[str] = mapped_column(String(128), index=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    column: Mapped[str] = mapped_column(String(128))
    value_before: Mapped[str | None] = mapped_column(Text, nullable=True)
    value_after: Mapped[str | None] = mapped_column(Text, nullable=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    committed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DQResult(Base):
    """The outcome of one data-quality rule in one job run; history is never overwritten."""

    __tablename__ = "dq_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    pipeline: Mapped[str] = mapped_column(String(128), index=True)
    job: Mapped[str] = mapped_column(String(128))
    dataset: Mapped[str] = mapped_column(String(160), index=True)
    rule: Mapped[str] = mapped_column(String(128))
    check_type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    rows_checked: Mapped[int] = mapped_column(Integer)
    rows_failing: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool]
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Added in 0003; null on rows recorded before it.
    failure_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    observed_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    rows_fixed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action_taken: Mapped[str | None] = mapped_column(String(16), nullable=True)
    committed: Mapped[bool | None] = mapped_column(nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_dq_results_dataset_rule", "dataset", "rule"),)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every column (timestamps as ISO text)."""
        return row_dict(self)


class IncidentStatus(str, enum.Enum):
    """Life cycle of a data-quality incident: open → acknowledged → resolved."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    def __str__(self) -> str:
        return self.value


class DQIncident(Base):
    """A rule violation at severity warn or above, followed until someone resolves it.

    Repeated violations of the same (pipeline, job, rule) update the one unresolved incident;
    resolved incidents stay as history and a later violation opens a new one.
    """

    __tablename__ = "dq_incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(128))
    job: Mapped[str] = mapped_column(String(128))
    dataset: Mapped[str] = mapped_column(String(160), index=True)
    rule: Mapped[str] = mapped_column(String(128))
    check_type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    opened_run_id: Mapped[str] = mapped_column(String(64))
    last_run_id: Mapped[str] = mapped_column(String(64))
    occurrences: Mapped[int] = mapped_column(Integer)
    rows_failing: Mapped[int] = mapped_column(Integer)
    failure_rate: Mapped[float] = mapped_column(Float)
    action_taken: Mapped[str] = mapped_column(String(16))
    sample: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    notification: Mapped[str | None] = mapped_column(String(128), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_dq_incidents_rule", "pipeline", "job", "rule", "status"),)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every column (timestamps as ISO text)."""
        return row_dict(self)


def row_dict(row: Base) -> dict[str, Any]:
    """A JSON-ready dict of an ORM row's columns (timestamps as ISO text), for dashboards."""
    data: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        data[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return data


class IngestFile(Base):
    """The file manifest: each source object an ingest job committed, so reruns skip it."""

    __tablename__ = "ingest_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(128), index=True)
    job: Mapped[str] = mapped_column(String(128), index=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    uri: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
