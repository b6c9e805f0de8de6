"""Silver and gold SQL jobs: the user's SELECT over its inputs, checked, then ONE Delta commit.

Inputs are visible to the SQL by alias. External access is switched off before the user's SQL runs,
so it cannot read or write files beyond the datasets it was given.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from lakebook import dq
from lakebook.errors import LakebookError
from lakebook.ingest import DUCKDB_TYPES
from lakebook.results import JobResult
from lakebook.runtime import JobContext
from lakebook.specs import DatasetJob
from lakebook.sql import quote_identifier as q

SAMPLE_ROWS = 10
BATCH_ROWS = 128 * 1024


class TransformError(LakebookError):
    """A dataset job's SQL or its result does not fit the spec."""


def run_sql_job(context: JobContext, job: DatasetJob) -> tuple[JobResult, pa.Table]:
    """Run one SQL dataset job end to end; returns its result and a sample of what it wrote."""
    result = JobResult(job=job.name, dataset=job.dataset)
    con = duckdb.connect()
    try:
        for item in job.inputs:
            dataset = context.lake.table(item.dataset).to_pyarrow_dataset()
            con.register(item.name, dataset)
            result.rows_read += dataset.count_rows()
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        try:
            con.execute(f"CREATE TEMP TABLE output AS {job.sql_text}")
        except duckdb.Error as error:
            raise TransformError(f"Job `{job.name}`: its SQL failed: {error}") from None
        if job.target_schema:
            _conform_to_target_schema(con, job)
        outcomes, dropped = dq.evaluate(con, "output", job.data_quality, job.name)
        result.dq = outcomes
        result.dropped_rows = dropped
        result.rows_written = int(con.sql("SELECT count(*) FROM output").fetchall()[0][0])
        result.table_version = context.lake.write_table(
            context.lake.table_path(job.dataset),
            con.sql("SELECT * FROM output").to_arrow_reader(BATCH_ROWS),
            mode="append" if job.refresh_mode == "append" else "overwrite",
            partition_by=job.partitioning or None,
            compression=job.compression,
        )
        sample = con.sql(f"SELECT * FROM output LIMIT {SAMPLE_ROWS}").to_arrow_table()
    finally:
        con.close()
    return result, sample


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
            f"Job `{job.name}`: the SQL's columns do not match `target_schema` "
            f"({'; '.join(parts)}). Change the SELECT list or the schema."
        )
    checks, casts = [], []
    for column in job.target_schema:
        target = DUCKDB_TYPES[column.type]
        casts.append(f"TRY_CAST({q(column.name)} AS {target}) AS {q(column.name)}")
        checks.append(
            f"count_if({q(column.name)} IS NOT NULL AND TRY_CAST({q(column.name)} AS {target}) IS NULL)"
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
    con.execute(f"CREATE OR REPLACE TEMP TABLE output AS SELECT {', '.join(casts)} FROM output")
