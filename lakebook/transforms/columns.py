"""Checks the template builders share: config fields that name inputs and columns that exist.

Each error names the job, the config field and the missing thing, and lists what is there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import duckdb

from lakebook.errors import TransformError
from lakebook.specs import DatasetJob
from lakebook.sql import quote_identifier as q


def require_input(job: DatasetJob, name: str, field: str) -> None:
    """An error unless `name` is one of the job's inputs (by alias or table name)."""
    names = [item.name for item in job.inputs]
    if name not in names:
        raise TransformError(
            f"Job `{job.name}`: `{field}` is `{name}`, which is not one of its inputs "
            f"({', '.join(f'`{n}`' for n in names)}). Use an input's alias or table name."
        )


def input_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of each column of a registered input or table."""
    return [(str(row[0]), str(row[1])) for row in con.sql(f"DESCRIBE {q(relation)}").fetchall()]


def require_columns(
    con: duckdb.DuckDBPyConnection,
    job: DatasetJob,
    relation: str,
    fields: Mapping[str, Iterable[str]],
) -> dict[str, str]:
    """An error naming the field and column for each column missing from `relation`.

    `fields` maps a config field (e.g. `metrics.dimensions`) to the columns it names. Returns the
    relation's column types by name.
    """
    types = dict(input_columns(con, relation))
    for field, columns in fields.items():
        missing = [column for column in columns if column not in types]
        if missing:
            raise TransformError(
                f"Job `{job.name}`: `{field}` names {_listing(missing)}, not in input "
                f"`{relation}`. Its columns are: {_listing(types)}."
            )
    return types


def _listing(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def describe_key(names: Iterable[str], values: Iterable[object]) -> str:
    """ "`id`=3, `day`=2024-01-31": a key for an error message (strings quoted)."""
    return ", ".join(
        f"`{name}`={value!r}" if isinstance(value, str) else f"`{name}`={value}"
        for name, value in zip(names, values, strict=False)
    )


def key_problems(
    con: duckdb.DuckDBPyConnection, relation: str, keys: list[str]
) -> tuple[int, tuple[list[object], int] | None]:
    """How many rows of `relation` have a null in `keys`, and the first repeated key (its values
    and how often it appears), or None when every key appears once."""
    nulls = con.sql(
        f"SELECT count(*) FROM {relation} WHERE " + " OR ".join(f"{q(k)} IS NULL" for k in keys)
    ).fetchall()[0][0]
    listed = ", ".join(q(key) for key in keys)
    repeated = con.sql(
        f"SELECT {listed}, count(*) FROM {relation} GROUP BY ALL HAVING count(*) > 1 "
        f"ORDER BY {listed} LIMIT 1"
    ).fetchall()
    if not repeated:
        return int(nulls), None
    *values, count = repeated[0]
    return int(nulls), (list(values), int(count))
