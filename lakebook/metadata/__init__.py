"""The metadata database: runs, job runs, watermarks and DQ results (SQLAlchemy 2 + Alembic)."""

from __future__ import annotations

from lakebook.metadata.models import (
    DQResult,
    IngestFile,
    JobRun,
    PipelineRun,
    RunStatus,
    WatermarkEntry,
)
from lakebook.metadata.store import MetadataStore

__all__ = [
    "DQResult",
    "IngestFile",
    "JobRun",
    "MetadataStore",
    "PipelineRun",
    "RunStatus",
    "WatermarkEntry",
]
