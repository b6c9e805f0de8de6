"""`transform_type: sql`: the user's SELECT over the inputs, by name."""

from __future__ import annotations

import duckdb

from lakebook.errors import TransformError
from lakebook.specs import DatasetJob
from lakebook.transforms import RunInfo


def build(con: duckdb.DuckDBPyConnection, job: DatasetJob, run: RunInfo) -> None:
    """Run `sql_text` into the table `output`."""
    assert job.sql_text is not None  # the spec requires it for sql jobs
    try:
        con.execute(f"CREATE TABLE output AS {job.sql_text}")
    except duckdb.Error as error:
        raise TransformError(f"Job `{job.name}`: its SQL failed: {error}") from None
