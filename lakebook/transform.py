"""Silver and gold dataset jobs: build the result from the inputs, check it, then ONE Delta commit.

The transform itself comes from a builder (`lakebook.transforms`), chosen by `transform_type`.
Inputs are visible to it by name. External access is switched off before any user SQL runs, so it
cannot read or write files beyond the datasets it was given. Then the result is conformed to
`target_schema`, its data-quality rules run (blocking ones fail the job before anything is
committed), and it is written with the job's `refresh_mode`:

- `full_refresh`: the result replaces the table.
- `append`: the result is added to the table (an empty result commits nothing).
- `overwrite_partition`: the result replaces the rows whose first `partitioning` column (a DATE)
  falls in the run's window: the run date and the days before it, `refresh_window` long (default
  `1 day`, the run date only). A result row outside the window (or with no date) fails the job
  before anything is written: silently dropping it could lose data the user meant to write.
- `upsert`: the result is merged into the table by `unique_key` (changed rows updated, new rows
  inserted; rows only in the table are kept). Null or repeated keys fail the job.

The SQL sees the run through DuckDB variables: `getvariable('run_date')`, `getvariable('run_time')`
and, for `overwrite_partition`, `getvariable('window_start')` / `getvariable('window_end')`.

The dataset's write lock (`Lake.write_lock`) is held from reading its current table through the
commit, so read-modify-write jobs (SCD2, upsert) of two runs never interleave.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake.exceptions import DeltaError

from lakebook import dq
from lakebook.errors import TransformError
from lakebook.results import JobResult
from lakebook.runtime import JobContext
from lakebook.specs import DatasetJob
from lakebook.sql import DUCKDB_TYPES, job_connection
from lakebook.sql import quote_identifier as q
from lakebook.transforms import RunInfo, builder_for
from lakebook.transforms.columns import key_problems

SAMPLE_ROWS = 10
BATCH_ROWS = 128 * 1024
WINDOW_PATTERN = re.compile(r"^\s*(\d+)\s*(day|days|week|weeks)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RefreshWindow:
    """The dates an `overwrite_partition` run replaces: `start` to `end`, both included."""

    start: date
    end: date
    column: str

    def predicate(self) -> str:
        """The replace-where condition, in the SQL Delta understands."""
        return (
            f"{q(self.column)} >= '{self.start.isoformat()}' AND "
            f"{q(self.column)} <= '{self.end.isoformat()}'"
        )

    def __str__(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


def window_days(job: DatasetJob) -> int:
    """How many days `refresh_window` covers (`3 days`, `2 weeks`); 1 when it is not set."""
    if job.refresh_window is None:
        return 1
    match = WINDOW_PATTERN.match(job.refresh_window)
    if not match or int(match.group(1)) < 1:
        raise TransformError(
            f"Job `{job.name}`: `refresh_window` `{job.refresh_window}` is not a window. "
            "Write a positive number of days or weeks, e.g. `3 days` or `2 weeks`."
        )
    count = int(match.group(1))
    return count * 7 if match.group(2).lower().startswith("week") else count


def refresh_window(job: DatasetJob, run_date: date) -> RefreshWindow:
    """The window of an `overwrite_partition` run: the run date and the days before it."""
    days = window_days(job)
    return RefreshWindow(run_date - timedelta(days=days - 1), run_date, job.partitioning[0])


def utc_now() -> datetime:
    """The run time of a dataset job (SCD2 versions start at it); tests replace this clock."""
    return datetime.now(timezone.utc)


def table_path(context: JobContext, job: DatasetJob) -> Path:
    """Where the job's Delta table lives: its `output_path` in the lake, or `<layer>/<name>`."""
    if job.output_path:
        return context.lake.path(job.output_path, "output_path")
    return context.lake.table_path(job.dataset)


def run_dataset_job(context: JobContext, job: DatasetJob) -> tuple[JobResult, pa.Table]:
    """Run one dataset job end to end; returns its result and a sample of what it wrote."""
    builder = builder_for(job.transform_type)
    result = JobResult(job=job.name, dataset=job.dataset)
    path = table_path(context, job)
    run_time = utc_now()
    window = (
        refresh_window(job, context.run_date) if job.refresh_mode == "overwrite_partition" else None
    )
    previous = context.previous_metric_values(job.dataset, job.data_quality)
    with tempfile.TemporaryDirectory(prefix="lakebook-transform-") as scratch:
        # In memory, spilling to `scratch` past the memory limit: faster than a database file.
        con = job_connection(Path(scratch), str(context.settings.duckdb_memory_limit))
        try:
            _set_run_variables(con, context.run_date, run_time, window)
            for item in job.inputs:
                dataset = context.lake.table(item.dataset).to_pyarrow_dataset()
                con.register(item.name, dataset)
                result.rows_read += dataset.count_rows()
            for referenced in dq.referenced_datasets(job.data_quality):
                # Relationships rules read these; after this point external access is off.
                con.register(
                    dq.reference_name(referenced),
                    context.lake.table(referenced).to_pyarrow_dataset(),
                )
            with context.lake.write_lock(
                job.dataset,
                timeout=float(context.settings.lock_timeout_seconds),
                run=context.run_id,
                job=job.name,
            ):
                existing_version = None
                if context.lake.is_table(path):
                    existing = context.lake.open_table(path)
                    existing_version = int(existing.version())
                    con.register("__existing", existing.to_pyarrow_dataset())
                con.execute("SET enable_external_access = false")
                con.execute("SET lock_configuration = true")
                run = RunInfo(
                    context.run_id, context.run_date, run_time, existing_version is not None
                )
                builder.build(con, job, run)
                if job.target_schema:
                    _conform_to_target_schema(con, job)
                report = dq.evaluate(
                    con,
                    "output",
                    job.data_quality,
                    job.name,
                    layer=job.layer,
                    run_id=context.run_id,
                    checked_at=run_time,
                    previous=previous,
                )
                result.dq = report.outcomes
                result.dropped_rows = report.dropped_rows
                result.quarantined_rows = report.quarantined_rows
                if report.quarantine_table is not None:
                    # Before the dataset commit: if that fails, the rows stay findable here.
                    _write_quarantine(context, job, con, report.quarantine_table)
                unchanged = getattr(builder, "unchanged", None)
                if existing_version is not None and unchanged is not None and unchanged(con, job):
                    # The builder found the table already holds exactly this result: no commit.
                    result.table_version = existing_version
                else:
                    result.rows_written = int(
                        con.sql("SELECT count(*) FROM output").fetchall()[0][0]
                    )
                    result.table_version = _write(context, job, con, path, window)
                    if job.output_path:
                        context.lake.register_location(job.dataset, path)
                sample = con.sql(f"SELECT * FROM output LIMIT {SAMPLE_ROWS}").to_arrow_table()
                after_write = getattr(builder, "after_write", None)
                if after_write is not None:
                    after_write(context, job, con)
        finally:
            con.close()
    return result, sample


def _set_run_variables(
    con: duckdb.DuckDBPyConnection,
    run_date: date,
    run_time: datetime,
    window: RefreshWindow | None,
) -> None:
    """Expose the run date, time and refresh window to SQL as DuckDB variables."""
    con.execute(f"SET VARIABLE run_date = DATE '{run_date.isoformat()}'")
    con.execute(f"SET VARIABLE run_time = TIMESTAMPTZ '{run_time.isoformat()}'")
    if window is not None:
        con.execute(f"SET VARIABLE window_start = DATE '{window.start.isoformat()}'")
        con.execute(f"SET VARIABLE window_end = DATE '{window.end.isoformat()}'")


def _write(
    context: JobContext,
    job: DatasetJob,
    con: duckdb.DuckDBPyConnection,
    path: Path,
    window: RefreshWindow | None,
) -> int:
    """Commit `output` with the job's refresh mode as ONE Delta commit; returns the table version.

    Every check happens before the commit, so a failure leaves the table at its previous version.
    """
    lake = context.lake
    exists = lake.is_table(path)
    columns = [str(row[0]) for row in con.sql("DESCRIBE output").fetchall()]
    predicate = None
    if job.refresh_mode == "upsert":
        _check_unique_key(con, job, columns)
    elif job.refresh_mode == "overwrite_partition":
        assert window is not None  # computed for every overwrite_partition run
        _check_window(con, job, window)
        predicate = window.predicate() if exists else None
    elif (
        job.refresh_mode == "append"
        and exists
        and not con.sql("SELECT count(*) FROM output").fetchall()[0][0]
    ):
        return int(lake.open_table(path).version())  # nothing to add: no empty commit
    reader = con.sql("SELECT * FROM output").to_arrow_reader(BATCH_ROWS)
    try:
        if job.refresh_mode == "upsert" and exists:
            return lake.merge_table(
                path, reader, keys=job.unique_key, columns=columns, compression=job.compression
            )
        return lake.write_table(
            path,
            reader,
            mode="append" if job.refresh_mode == "append" else "overwrite",
            partition_by=job.partitioning or None,
            compression=job.compression,
            predicate=predicate,
        )
    except DeltaError as error:
        raise TransformError(
            f"Job `{job.name}`: writing `{job.dataset}` ({job.refresh_mode}) failed: {error}. "
            "Nothing was committed; the table keeps its previous version."
        ) from error


def _write_quarantine(
    context: JobContext, job: DatasetJob, con: duckdb.DuckDBPyConnection, table: str
) -> None:
    """Append the rows DQ quarantined to `<lake>/quarantine/<layer>/<name>`, as one commit."""
    path = context.lake.path(dq.quarantine_location(job.layer, job.name), "quarantine path")
    reader = con.sql(f"SELECT * FROM {q(table)}").to_arrow_reader(BATCH_ROWS)
    try:
        context.lake.write_table(path, reader, mode="append", compression=job.compression)
    except DeltaError as error:
        raise TransformError(
            f"Job `{job.name}`: writing quarantined rows to `{path}` failed: {error}. "
            "Nothing was committed to the dataset; fix the quarantine table and rerun."
        ) from error


def _check_unique_key(con: duckdb.DuckDBPyConnection, job: DatasetJob, columns: list[str]) -> None:
    """Upsert keys must exist, be non-null and identify one row of the result each."""
    missing = [key for key in job.unique_key if key not in columns]
    if missing:
        raise TransformError(
            f"Job `{job.name}`: `unique_key` column(s) {', '.join(f'`{m}`' for m in missing)} "
            f"are not in the result (its columns: {', '.join(columns)}). Fix `unique_key`."
        )
    nulls, repeated = key_problems(con, "output", job.unique_key)
    if nulls:
        raise TransformError(
            f"Job `{job.name}`: {nulls} row(s) of the result have a null `unique_key` column "
            f"({', '.join(job.unique_key)}); upsert cannot match them. Filter or fill them in the SQL."
        )
    if repeated:
        values, count = repeated
        key_text = ", ".join(
            f"{name}={value!r}" for name, value in zip(job.unique_key, values, strict=True)
        )
        raise TransformError(
            f"Job `{job.name}`: the key ({key_text}) appears {count} times in the result; upsert "
            "needs one row per `unique_key`. Deduplicate in the SQL (e.g. keep the latest row)."
        )


def _check_window(con: duckdb.DuckDBPyConnection, job: DatasetJob, window: RefreshWindow) -> None:
    """The partition column is a DATE and every row of the result falls in the window."""
    types = {str(row[0]): str(row[1]) for row in con.sql("DESCRIBE output").fetchall()}
    column = window.column
    if column not in types:
        raise TransformError(
            f"Job `{job.name}`: the partition column `{column}` (first of `partitioning`) is not "
            "in the result. Select it in the SQL or fix `partitioning`."
        )
    if types[column] != "DATE":
        raise TransformError(
            f"Job `{job.name}`: overwrite_partition needs the partition column `{column}` to be "
            f"a DATE, but it is {types[column]}. Cast it in the SQL (`CAST(... AS DATE)`)."
        )
    outside = con.sql(
        f"SELECT count(*) FROM output WHERE {q(column)} IS NULL "
        f"OR {q(column)} < DATE '{window.start.isoformat()}' "
        f"OR {q(column)} > DATE '{window.end.isoformat()}'"
    ).fetchall()[0][0]
    if outside:
        raise TransformError(
            f"Job `{job.name}`: {outside} row(s) of the result have `{column}` outside the "
            f"refresh window {window} (or no date); overwrite_partition only replaces the "
            "window's partitions, so nothing was written. Keep only the window's rows in the SQL "
            f"(`WHERE {column} BETWEEN getvariable('window_start') AND getvariable('window_end')`) "
            "or widen `refresh_window`."
        )


def _conform_to_target_schema(con: duckdb.DuckDBPyConnection, job: DatasetJob) -> None:
    """Cast the output to `target_schema`; missing, extra, uncastable or null columns are errors."""
    target_schema = job.target_schema or []
    actual = [row[0] for row in con.sql("DESCRIBE output").fetchall()]
    expected = [column.name for column in target_schema]
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
    for column in target_schema:
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
    for column in target_schema:
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
    # A view: the casts are cheap, re-materialising every row is not.
    con.execute("ALTER TABLE output RENAME TO __unconformed")
    con.execute(f"CREATE VIEW output AS SELECT {', '.join(casts)} FROM __unconformed")
