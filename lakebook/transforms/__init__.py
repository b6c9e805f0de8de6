"""Transform builders: one module per `transform_type`, found through `BUILDERS`.

A builder module has `build(con, job, run)`: the job's inputs are registered in `con` by name
(alias or table name), the dataset's current table (when it exists) as `__existing`, and DuckDB's
external access is already off. It must leave the job's result in the table `output`. A module may
also define `after_write(context, job, con)`, called after the Delta commit (e.g. to export files).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import date, datetime
from types import ModuleType

BUILDERS: dict[str, str] = {
    "sql": "lakebook.transforms.sql",
    "scd2_dimension": "lakebook.transforms.scd2",
    "conform_sources": "lakebook.transforms.conform",
    "metrics_aggregate": "lakebook.transforms.metrics",
    "snapshot": "lakebook.transforms.snapshot",
    "ml_training_set": "lakebook.transforms.ml_training",
    "vector_index": "lakebook.transforms.vector_index",
    "export_feed": "lakebook.transforms.export",
}


@dataclass(frozen=True)
class RunInfo:
    """Facts about the current run a builder may use."""

    run_id: str
    run_date: date
    run_time: datetime  # timezone-aware UTC
    has_existing: bool  # the dataset already has a table, registered as `__existing`


def builder_for(transform_type: str) -> ModuleType:
    """The builder module of a transform type."""
    return importlib.import_module(BUILDERS[transform_type])
