"""Helpers for in-process dataset-job tests: a workspace, input tables, a job, the result."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakebook.results import JobResult
from lakebook.runtime import JobContext
from lakebook.specs import DatasetJob
from lakebook.transform import run_dataset_job


def open_context(root: Path, run_date: str = "2024-01-03", run_id: str = "r1") -> JobContext:
    """A JobContext on a minimal workspace at `root` (created when missing)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "jupyter_config.py").touch()
    return JobContext.open(str(root), "test", run_id, run_date)


def put(context: JobContext, dataset: str, rows: list[dict[str, Any]] | pa.Table) -> None:
    """Replace a dataset's table with `rows` (an input, or a prepared current table)."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows)
    context.lake.write_table(context.lake.table_path(dataset), table, mode="overwrite")


def dataset_job(**fields: Any) -> DatasetJob:
    """A silver dataset job `t` with the given fields on top."""
    return DatasetJob.model_validate({"name": "t", "layer": "silver", **fields})


def run(context: JobContext, job: DatasetJob) -> JobResult:
    """Run the job in this process and return its result."""
    result, _ = run_dataset_job(context, job)
    return result


def rows(
    context: JobContext, dataset: str, columns: list[str] | None = None
) -> list[tuple[Any, ...]]:
    """The dataset's rows as sorted tuples; timestamps shown as `MM-DD` (tests use whole days)."""
    table = context.lake.read(dataset)
    names = columns or table.column_names
    found = [
        tuple(_show(record[name]) for name in names) for record in table.select(names).to_pylist()
    ]
    return sorted(found, key=lambda row: tuple((value is None, value or 0) for value in row))


def version(context: JobContext, dataset: str) -> int:
    """The dataset's current Delta version."""
    return int(context.lake.table(dataset).version())


def _show(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%m-%d")
    return value


class Clock:
    """Replaces the run clock: each run happens at the day it is set to (UTC midnight)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = datetime(2024, 1, 1, tzinfo=timezone.utc)
        monkeypatch.setattr("lakebook.transform.utc_now", lambda: self.now)

    def set(self, day: str) -> None:
        """Runs from now on happen on `day` (`YYYY-MM-DD`)."""
        parsed = date.fromisoformat(day)
        self.now = datetime(parsed.year, parsed.month, parsed.day, tzinfo=timezone.utc)
