"""Silver and gold dataset jobs: build the result from the inputs, check it, then ONE Delta commit.

The transform itself comes from a builder (`lakebook.transforms`), chosen by `transform_type`.
Inputs are visible to it by name. External access is switched off before any user SQL runs, so it
cannot read or write files beyond the datasets it was given. Then the result is conformed to
`target_schema`, its data-quality rules run (blocking ones fail the job before anything is
committed), and it is written with the job's `refresh_mode`.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from lakebook import dq
from lakebook.errors import TransformError
from lakebook.ingest import DUCKDB_TYPES
from lakebook.results import JobResult
from lakebook.runtime import JobContext
from lakebook.specs import DatasetJob
from lakebook.sql import quote_identifier as q
from lakebook.sql import quote_literal
from lakebook.transforms import RunInfo, builder_for

SAMPLE_ROWS = 10
BATCH_ROWS = 128 * 1024


def table_path(context: JobContext, job: DatasetJob) -> Path:
    """Where the job's Delta table lives: `<lake>/<layer>/<name>`."""
    return context.lake.table_path(job.dataset)


def run_dataset_job(context: JobContext, job: DatasetJob) -> tuple[JobResult, pa.Table]:
    """Run one dataset job end to end; returns its result and a sample of what it wrote."""
    builder = builder_for(job.transform_type)
    result = JobResult(job=job.name, dataset=job.dataset)
    path = table_path(context, job)
    with tempfile.TemporaryDirectory(prefix="lakebook-transform-") as scratch:
        con = duckdb.connect(str(Path(scratch) / "transform.duckdb"))
        try:
            con.execute(
                f"SET memory_limit = {quote_literal(str(context.settings.duckdb_memory_limit))}"
            )
            con.execute(f"SET temp_directory = {quote_literal(str(Path(scratch) / 'spill'))}")
            for item in job.inputs:
                dataset = context.lake.table(item.dataset).to_pyarrow_dataset()
                con.register(item.name, dataset)
                result.rows_read += dataset.count_rows()
            has_existing = context.lake.is_table(path)
            if has_existing:
                con.register("__existing", context.lake.open_table(path).to_pyarrow_dataset())
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            run = RunInfo(
                context.run_id, context.run_date, datetime.now(timezone.utc), has_existing
            )
            builder.build(con, job, run)
            if job.target_schema:
                _conform_to_target_schema(con, job)
            outcomes, dropped = dq.evaluate(con, "output", job.data_quality, job.name)
            result.dq = outcomes
            result.dropped_rows = dropped
            result.rows_written = int(con.sql("SELECT count(*) FROM output").fetchall()[0][0])
            result.table_version = _write(context, job, con, path)
            sample = con.sql(f"SELECT * FROM output LIMIT {SAMPLE_ROWS}").to_arrow_table()
            after_write = getattr(builder, "after_write", None)
            if after_write is not None:
                after_write(context, job, con)
        finally:
            con.close()
    return result, sample


def _write(context: JobContext, job: DatasetJob, con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Commit `output` with the job's refresh mode; returns the new table version."""
    if job.refresh_mode not in ("full_refresh", "append"):
        raise TransformError(
            f"Job `{job.name}`: refresh_mode `{job.refresh_mode}` cannot be written yet."
        )
    return context.lake.write_table(
        path,
        con.sql("SELECT * FROM output").to_arrow_reader(BATCH_ROWS),
        mode="append" if job.refresh_mode == "append" else "overwrite",
        partition_by=job.partitioning or None,
        compression=job.compression,
    )


def _conform_to_target_schema(con: duckdb.DuckDBPyConnection, job: DatasetJob) -> None:
    """Cast the output to `target_schema`; missing, extra, uncastable or null columns are errors."""
    actual = [row[0] for row in con.sql("DESCRIBE output").fetchall()]
    expected = [column.name for column in job.target_schema]
    missing = [name for name in expected if name not in actual]
    extra = [name for name in actual if name not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(f'`{m}`' for m in missing)}")
        if extra:
            parts.append(f"not in target_schema {', '.join(f'`{e}`' for e in extra)}")
        raise TransformError(
            f"Job `{job.name}`: the result's columns do not match `target_schema` "
            f"({'; '.join(parts)}). Change the SELECT list or the schema."
        )
    checks, casts = [], []
    for column in job.target_schema:
        target = DUCKDB_TYPES[column.type]
        casts.append(f"TRY_CAST({q(column.name)} AS {target}) AS {q(column.name)}")
        checks.append(
            f"count_if({q(column.name)} IS NOT NULL AND "
            f"TRY_CAST({q(column.name)} AS {target}) IS NULL)"
        )
        if not column.nullable:
            checks.append(f"count_if({q(column.name)} IS NULL)")
    counts = con.sql(f"SELECT {', '.join(checks)} FROM output").fetchall()[0]
    position = 0
    for column in job.target_schema:
        if counts[position]:
            raise TransformError(
                f"Job `{job.name}`: {counts[position]} value(s) of column `{column.name}` cannot "
                f"be cast to {column.type}. Cast them in the SQL or change `target_schema`."
            )
        position += 1
        if not column.nullable:
            if counts[position]:
                raise TransformError(
                    f"Job `{job.name}`: column `{column.name}` is declared not nullable but has "
                    f"{counts[position]} null value(s)."
                )
            position += 1
    con.execute(f"CREATE OR REPLACE TABLE output AS SELECT {', '.join(casts)} FROM output")
