"""What job notebooks call. A template stays thin: it builds a `JobContext`, runs the job through
this module and shows what a person wants to see in the record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakebook.config import Lakebook, load_settings, metadata_url
from lakebook.connections import resolve_connection
from lakebook.results import RESULT_MIME_TYPE, JobResult
from lakebook.specs import TRANSFORM_CONFIG_FIELD, DatasetJob, DQRule, IngestJob
from lakebook.storage import Lake, confine

if TYPE_CHECKING:
    from lakebook.dq import DataQualityError
    from lakebook.metadata import MetadataStore


@dataclass
class JobContext:
    """Everything a job needs besides its spec: where the workspace, lake and pipeline are."""

    workspace: Path
    settings: Lakebook
    lake: Lake
    pipeline: str
    run_id: str
    run_date: date

    @classmethod
    def open(cls, workspace: str, pipeline: str, run_id: str, run_date: str = "") -> JobContext:
        """A context from the notebook's parameters."""
        root = Path(workspace).resolve()
        settings = load_settings(root)
        lake = Lake(confine(root, settings.lake_root, "lake root"))
        day = date.fromisoformat(run_date) if run_date else date.today()
        return cls(root, settings, lake, pipeline, run_id, day)

    @property
    def pipeline_dir(self) -> Path:
        """The pipeline's folder: relative paths in its file are resolved from here."""
        return self.workspace / "pipelines" / self.pipeline

    @contextmanager
    def _metadata(self) -> Iterator[MetadataStore]:
        """The metadata DB for reading. The runner migrated it already; only a notebook run on its
        own, in a workspace that never ran, has to create it."""
        from lakebook.metadata import MetadataStore

        store = MetadataStore(metadata_url(self.settings, self.workspace), migrate=False)
        if "alembic_version" not in store.table_names():
            store.upgrade()
        try:
            yield store
        finally:
            store.close()

    def loaded_fingerprints(self, job: str) -> frozenset[str]:
        """Source objects this job committed in earlier runs (the file manifest)."""
        with self._metadata() as store:
            return store.loaded_fingerprints(self.pipeline, job)

    def previous_metric_values(self, dataset: str, rules: list[DQRule]) -> dict[str, float]:
        """Each `metric_change` rule's value in the latest run that committed `dataset`."""
        names = [rule.name for rule in rules if rule.check_type == "metric_change"]
        if not names:
            return {}
        with self._metadata() as store:
            return store.previous_observed_values(dataset, names)

    def connection(self, name: str) -> dict[str, Any]:
        """A named connection with its secrets read from the environment."""
        return resolve_connection(dict(self.settings.connections), name)


def load_ingest_job(job_spec: str) -> IngestJob:
    """The ingest job from its JSON parameter."""
    return IngestJob.model_validate(json.loads(job_spec))


def load_dataset_job(job_spec: str) -> DatasetJob:
    """The dataset job from its JSON parameter."""
    return DatasetJob.model_validate(json.loads(job_spec))


def run_ingest(
    context: JobContext, job: IngestJob, watermark: str | None = None
) -> tuple[JobResult, pa.Table]:
    """Run an ingest job; returns its result and a sample of the rows written."""
    from lakebook.dq import DataQualityError
    from lakebook.ingest import ingest

    try:
        return ingest(context, job, watermark or None)
    except DataQualityError as error:
        _emit_failed_checks(job, error)
        raise


def run_dataset_job(context: JobContext, job: DatasetJob) -> tuple[JobResult, pa.Table]:
    """Run a silver or gold dataset job; returns its result and a sample of the rows written."""
    from lakebook.dq import DataQualityError
    from lakebook.transform import run_dataset_job as run

    try:
        return run(context, job)
    except DataQualityError as error:
        _emit_failed_checks(job, error)
        raise


def _emit_failed_checks(job: IngestJob | DatasetJob, error: DataQualityError) -> None:
    """A `fail` rule stopped the job: still hand the runner every rule's outcome (and show them
    in the record), so the failed run's DQ results and incidents are recorded too."""
    from IPython.display import display

    result = JobResult(job=job.name, dataset=job.dataset, dq=list(error.outcomes), dq_failed=True)
    display(dq_table(result))
    emit_result(result)


def describe_dataset_job(job: DatasetJob) -> None:
    """Print what the job builds and from what, at the top of its record."""
    print(f"{job.dataset} ({job.dataset_type}, {job.transform_type}, {job.refresh_mode})")
    for item in job.inputs:
        print(f"  input {item.dataset} as {item.name}")
    if job.sql_text:
        print(job.sql_text)
    config_field = TRANSFORM_CONFIG_FIELD.get(job.transform_type)
    config = getattr(job, config_field) if config_field else None
    if config is not None:
        print(json.dumps(config.model_dump(mode="json"), indent=2))


def accounting_table(result: JobResult) -> Any:
    """The row accounting as a small pandas table for the record."""
    import pandas as pd

    rows = [
        ("rows_read", result.rows_read),
        ("rows_written", result.rows_written),
        ("quarantined_rows", result.quarantined_rows),
        ("deduplicated_rows", result.deduplicated_rows),
        ("dropped_rows", result.dropped_rows),
        ("watermark_before", result.watermark_before),
        ("watermark_after", result.watermark_after),
        ("table_version", result.table_version),
    ]
    values = ["-" if value is None else value for _, value in rows]
    return pd.DataFrame({"value": pd.Series(values, dtype=object)}, index=[n for n, _ in rows])


def schema_table(sample: pa.Table) -> Any:
    """The output schema as a pandas table for the record."""
    import pandas as pd

    columns = [(item.name, str(item.type), item.nullable) for item in sample.schema]
    return pd.DataFrame(columns, columns=["column", "type", "nullable"])


def dq_table(result: JobResult) -> Any:
    """The data-quality outcomes as a pandas table for the record."""
    import pandas as pd

    return pd.DataFrame([vars(item) for item in result.dq])


def emit_result(result: JobResult) -> None:
    """Hand the result to the runner: a JSON output with lakebook's MIME type."""
    from IPython.display import display

    display({RESULT_MIME_TYPE: result.as_dict(), "text/plain": "lakebook job result"}, raw=True)
