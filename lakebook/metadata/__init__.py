"""The metadata database: runs, job runs, watermarks, DQ results and incidents (SQLAlchemy 2 + Alembic)."""

from __future__ import annotations

from lakebook.metadata.models import (
    DQIncident,
    DQResult,
    IncidentStatus,
    IngestFile,
    JobRun,
    PipelineRun,
    RunStatus,
    WatermarkEntry,
)
from lakebook.metadata.store import MetadataStore

__all__ = [
    "DQIncident",
    "DQResult",
    "IncidentStatus",
    "IngestFile",
    "JobRun",
    "MetadataStore",
    "PipelineRun",
    "RunStatus",
    "WatermarkEntry",
]
