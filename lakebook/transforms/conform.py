"""`transform_type: conform_sources`: unify several inputs into one row per key.

Each input has a mapping: conformed column → the input's column, or a SQL expression over the input
(`upper(country)`, `CAST(id AS BIGINT)`, `NULL`). The conformed columns are every column any
mapping names, in first-mentioned order; a source that does not map one gives NULL there. The
key columns must be mapped by every source.

When several sources (or rows) have the same key, one whole row wins (no column-by-column mixing):

- `resolution: priority`: the row from the source listed first in `priority` (sources not listed
  come after the listed ones, in mapping order); among rows of one source, the latest by
  `updated_at_column` when it is set.
- `resolution: latest`: the row with the latest `updated_at_column` (NULL counts as oldest); a tie
  between sources goes to the higher priority.

Rows that still tie (same source, same `updated_at_column`) fail the job, naming the key: picking
one arbitrarily would make the result change from run to run. Null keys fail the job too.
`source_system_column` (default `source_system`; null leaves it out) records each row's source.
"""

from __future__ import annotations

import duckdb

from lakebook.errors import TransformError
from lakebook.specs import ConformConfig, ConformMapping, DatasetJob
from lakebook.sql import quote_identifier as q
from lakebook.sql import quote_literal
from lakebook.transforms import RunInfo


def build(con: duckdb.DuckDBPyConnection, job: DatasetJob, run: RunInfo) -> None:
    """Map every input onto the conformed columns, then keep the winning row of each key."""
    config = job.conform
    assert config is not None  # the spec requires it for conform_sources jobs
    ranks = _source_ranks(job, config)
    conformed = _conformed_columns(job, config)
    selects = []
    for index, mapping in enumerate(config.mappings):
        view = f"__conform_{index}"
        select = _mapping_select(con, mapping, conformed, ranks[mapping.input])
        try:
            con.execute(f"CREATE TEMP VIEW {view} AS {select}")
        except duckdb.Error as error:
            raise TransformError(
                f"Job `{job.name}`: the mapping of input `{mapping.input}` does not work on it: "
                f"{error}. Fix the column names or expressions in `conform.mappings`."
            ) from None
        selects.append(f"SELECT * FROM {view}")
    try:
        con.execute("CREATE TEMP TABLE __conform_all AS " + " UNION ALL BY NAME ".join(selects))
    except duckdb.Error as error:
        raise TransformError(
            f"Job `{job.name}`: the mapped sources cannot be stacked into one table: {error}. "
            "Cast the mapped columns to one type in `conform.mappings`."
        ) from None
    _check_keys(con, job.name, config)
    _resolve(con, job.name, config, conformed)


def _source_ranks(job: DatasetJob, config: ConformConfig) -> dict[str, int]:
    """Each mapped input's rank: 0 is the most trusted."""
    names = [item.name for item in job.inputs]
    mapped = [mapping.input for mapping in config.mappings]
    unknown = [name for name in mapped if name not in names]
    if unknown:
        raise TransformError(
            f"Job `{job.name}`: `conform.mappings` names input(s) "
            f"{', '.join(f'`{u}`' for u in unknown)}, but the job's inputs are "
            f"{', '.join(f'`{n}`' for n in names)}. Use an input's alias (or table name)."
        )
    twice = sorted({name for name in mapped if mapped.count(name) > 1})
    if twice:
        raise TransformError(
            f"Job `{job.name}`: input(s) {', '.join(f'`{t}`' for t in twice)} have more than one "
            "mapping in `conform.mappings`; merge them into one."
        )
    unmapped = [name for name in names if name not in mapped]
    if unmapped:
        raise TransformError(
            f"Job `{job.name}`: input(s) {', '.join(f'`{u}`' for u in unmapped)} have no mapping "
            "in `conform.mappings`; add one or remove the input."
        )
    stray = [name for name in config.priority if name not in mapped]
    if stray:
        raise TransformError(
            f"Job `{job.name}`: `conform.priority` names {', '.join(f'`{s}`' for s in stray)}, "
            f"which is not a mapped input ({', '.join(f'`{m}`' for m in mapped)})."
        )
    order = list(dict.fromkeys([*config.priority, *mapped]))
    return {name: order.index(name) for name in mapped}


def _conformed_columns(job: DatasetJob, config: ConformConfig) -> list[str]:
    """The output's columns, and the checks that keys and `updated_at_column` are mapped."""
    conformed = list(dict.fromkeys(c for mapping in config.mappings for c in mapping.columns))
    for mapping in config.mappings:
        missing = [key for key in config.key_columns if key not in mapping.columns]
        if missing:
            raise TransformError(
                f"Job `{job.name}`: the mapping of input `{mapping.input}` does not map the key "
                f"column(s) {', '.join(f'`{m}`' for m in missing)}; every source must map "
                "`conform.key_columns`."
            )
    updated = config.updated_at_column
    if config.resolution == "latest" and not updated:
        raise TransformError(
            f"Job `{job.name}`: `conform.updated_at_column` is required when `conform.resolution` "
            "is `latest`; name the conformed column that says when a row was last updated."
        )
    if updated:
        lacking = [m.input for m in config.mappings if updated not in m.columns]
        if lacking:
            raise TransformError(
                f"Job `{job.name}`: `conform.updated_at_column` `{updated}` is not mapped for "
                f"input(s) {', '.join(f'`{x}`' for x in lacking)}. Map it in every source "
                "(`NULL` if a source does not know it)."
            )
    system = config.source_system_column
    if system and system in conformed:
        raise TransformError(
            f"Job `{job.name}`: `conform.source_system_column` `{system}` is also a mapped "
            "column; rename one of them (or set `source_system_column: null`)."
        )
    return conformed


def _mapping_select(
    con: duckdb.DuckDBPyConnection, mapping: ConformMapping, conformed: list[str], rank: int
) -> str:
    """The input's rows as conformed columns, with its source-system value and rank."""
    available = {str(row[0]) for row in con.sql(f"DESCRIBE {q(mapping.input)}").fetchall()}
    parts = []
    for column in conformed:
        source = mapping.columns.get(column)
        if source is None:
            value = "NULL"
        elif source in available:
            value = q(source)  # a plain column name, quoted so any name works
        else:
            value = f"({source})"  # a SQL expression over the input
        parts.append(f"{value} AS {q(column)}")
    system = mapping.source_system or mapping.input
    parts.append(f"{quote_literal(system)} AS __source_system")
    parts.append(f"{rank} AS __rank")
    return f"SELECT {', '.join(parts)} FROM {q(mapping.input)}"


def _check_keys(con: duckdb.DuckDBPyConnection, job: str, config: ConformConfig) -> None:
    """No source row may have a null key: it could not be matched with the others."""
    nulls = con.sql(
        "SELECT __source_system, count(*) FROM __conform_all WHERE "
        + " OR ".join(f"{q(k)} IS NULL" for k in config.key_columns)
        + " GROUP BY ALL ORDER BY 1 LIMIT 1"
    ).fetchall()
    if nulls:
        system, count = nulls[0]
        raise TransformError(
            f"Job `{job}`: {count} row(s) from source `{system}` have a null key column "
            f"({', '.join(config.key_columns)}). Filter them or map the key from another column."
        )


def _resolve(
    con: duckdb.DuckDBPyConnection, job: str, config: ConformConfig, conformed: list[str]
) -> None:
    """Keep each key's winning row in `output`; ties that cannot be broken are an error."""
    keys = ", ".join(q(k) for k in config.key_columns)
    updated = q(config.updated_at_column) if config.updated_at_column else None
    if config.resolution == "latest":
        assert updated is not None  # checked in _conformed_columns
        order = f"{updated} DESC NULLS LAST, __rank"
    else:
        order = "__rank" + (f", {updated} DESC NULLS LAST" if updated else "")
    con.execute(
        f"""CREATE TEMP TABLE __conform_ranked AS SELECT *,
               rank() OVER (PARTITION BY {keys} ORDER BY {order}) AS __place,
               row_number() OVER (PARTITION BY {keys} ORDER BY {order}) AS __row
           FROM __conform_all"""
    )
    ties = con.sql(
        f"SELECT {keys}, string_agg(DISTINCT __source_system, ', ' ORDER BY __source_system), "
        f"count(*) FROM __conform_ranked WHERE __place = 1 GROUP BY ALL HAVING count(*) > 1 "
        f"ORDER BY {keys} LIMIT 1"
    ).fetchall()
    if ties:
        *values, systems, count = ties[0]
        key_text = ", ".join(
            f"{name}={value!r}" for name, value in zip(config.key_columns, values, strict=True)
        )
        how = (
            "the same `updated_at_column` value"
            if updated
            else "no `updated_at_column` to tell them apart"
        )
        raise TransformError(
            f"Job `{job}`: key ({key_text}) has {count} rows from source `{systems}` with {how}, "
            "so no row wins. Deduplicate that source, or set `conform.updated_at_column`."
        )
    listed = [q(c) for c in conformed]
    if config.source_system_column:
        listed.append(f"__source_system AS {q(config.source_system_column)}")
    con.execute(
        f"CREATE TABLE output AS SELECT {', '.join(listed)} FROM __conform_ranked "
        f"WHERE __row = 1 ORDER BY {keys}"
    )
