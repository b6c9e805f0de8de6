"""`transform_type: snapshot`: each key's row as it stood on a date (an as-of table).

The date is `snapshot.as_of` or, when empty, the run date. The snapshot shows the state at the end
of that day: with `valid_to_column` (an SCD2 input) the row with valid_from <= as_of < valid_to
(valid_to NULL = still valid); without it, each key's latest row with valid_from <= as_of. For
timestamp columns "<= as_of" means "before the next midnight" (UTC for time-zone-aware columns),
so a version that started during the day is in that day's snapshot. Keys with no such row are left
out. The output is the source's columns plus `snapshot_date_column` (a DATE).

Two rows of one key valid on the date (overlapping versions, or two latest rows with the same
valid_from) make the snapshot ambiguous: the job fails naming a few such keys.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from lakebook.errors import TransformError
from lakebook.specs import DatasetJob, SnapshotConfig
from lakebook.sql import quote_identifier as q
from lakebook.sql import quote_literal
from lakebook.transforms import RunInfo
from lakebook.transforms.columns import describe_key, require_columns, require_input

TIME_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS")
TIME_ZONE_TYPE = "TIMESTAMP WITH TIME ZONE"
SAMPLE_KEYS = 3


def build(con: duckdb.DuckDBPyConnection, job: DatasetJob, run: RunInfo) -> None:
    """Select each key's row valid on the snapshot date into the table `output`."""
    config = job.snapshot
    assert config is not None  # the spec requires it for snapshot jobs
    as_of = snapshot_date(job, config, run)
    types = _check(con, job, config)
    end_of_day = _day_end(as_of, types[config.valid_from_column])
    started = f"{q(config.valid_from_column)} < {end_of_day}"
    condition = started
    if config.valid_to_column:
        condition += (
            f" AND ({q(config.valid_to_column)} IS NULL "
            f"OR {q(config.valid_to_column)} >= {_day_end(as_of, types[config.valid_to_column])})"
        )
    keys = ", ".join(q(column) for column in config.key_columns)
    selected = f"SELECT * FROM {q(config.source)} WHERE {condition}"
    if not config.valid_to_column:
        # rank(), not row_number(): ties are kept so the ambiguity check below sees them.
        selected = (
            f"SELECT * EXCLUDE (__rank) FROM (SELECT *, rank() OVER (PARTITION BY {keys} "
            f"ORDER BY {q(config.valid_from_column)} DESC) AS __rank FROM ({selected})) "
            "WHERE __rank = 1"
        )
    con.execute(
        f"CREATE TABLE output AS SELECT *, DATE {quote_literal(as_of.isoformat())} "
        f"AS {q(config.snapshot_date_column)} FROM ({selected}) ORDER BY {keys}"
    )
    _check_one_row_per_key(con, job, config, as_of)


def snapshot_date(job: DatasetJob, config: SnapshotConfig, run: RunInfo) -> date:
    """`snapshot.as_of`, or the run date when it is empty."""
    if not config.as_of:
        return run.run_date
    try:
        return date.fromisoformat(config.as_of)
    except ValueError:
        raise TransformError(
            f"Job `{job.name}`: `snapshot.as_of` `{config.as_of}` is not a date. "
            "Write it as YYYY-MM-DD, or leave it empty for the run date."
        ) from None


def _day_end(as_of: date, column_type: str) -> str:
    """The first instant after the snapshot day, typed to compare with a column of this type."""
    next_day = (as_of + timedelta(days=1)).isoformat()
    if column_type == TIME_ZONE_TYPE:
        return f"TIMESTAMPTZ {quote_literal(next_day + ' 00:00:00+00')}"
    return f"DATE {quote_literal(next_day)}"


def _check(
    con: duckdb.DuckDBPyConnection, job: DatasetJob, config: SnapshotConfig
) -> dict[str, str]:
    """Errors naming the field for inputs, columns or types the snapshot cannot use."""
    require_input(job, config.source, "snapshot.source")
    fields = {
        "snapshot.key_columns": config.key_columns,
        "snapshot.valid_from_column": [config.valid_from_column],
    }
    if config.valid_to_column:
        fields["snapshot.valid_to_column"] = [config.valid_to_column]
    types = require_columns(con, job, config.source, fields)
    for field, names in fields.items():
        if field == "snapshot.key_columns":
            continue
        column_type = types[names[0]]
        if column_type not in (*TIME_TYPES, TIME_ZONE_TYPE):
            raise TransformError(
                f"Job `{job.name}`: `{field}` `{names[0]}` is {column_type}, not a date or "
                "timestamp. Cast it in an upstream job."
            )
    if config.snapshot_date_column in types:
        raise TransformError(
            f"Job `{job.name}`: input `{config.source}` already has a column "
            f"`{config.snapshot_date_column}`. Set `snapshot.snapshot_date_column` to another name."
        )
    return types


def _check_one_row_per_key(
    con: duckdb.DuckDBPyConnection, job: DatasetJob, config: SnapshotConfig, as_of: date
) -> None:
    """Fail, naming some keys, when a key has more than one row in the snapshot."""
    keys = ", ".join(q(column) for column in config.key_columns)
    duplicated = con.sql(
        f"SELECT {keys}, count(*) FROM output GROUP BY ALL HAVING count(*) > 1 "
        f"ORDER BY ALL LIMIT {SAMPLE_KEYS + 1}"
    ).fetchall()
    if not duplicated:
        return
    examples = "; ".join(
        f"{describe_key(config.key_columns, row)} ({row[-1]} rows)"
        for row in duplicated[:SAMPLE_KEYS]
    )
    more = " and more" if len(duplicated) > SAMPLE_KEYS else ""
    why = (
        "their validity intervals overlap"
        if config.valid_to_column
        else f"their latest rows share one `{config.valid_from_column}`"
    )
    raise TransformError(
        f"Job `{job.name}`: the snapshot as of {as_of.isoformat()} has more than one row for "
        f"key(s) {examples}{more}: {why}. Fix the input so each key has one row per date."
    )
