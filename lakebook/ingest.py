"""Ingest: land the source in Landing, then load the landed files into ONE Bronze Delta commit.

The source (see `lakebook.sources`) fetches into this run's Landing folder. The loader then works in
a disk-backed DuckDB database, so memory stays bounded whatever the input size:

1. `checked`: every landed row, renamed and typed, with `__reason` saying why it is invalid and, for
   invalid rows only, `__raw`: the row's original text.
2. Invalid rows fail the job (`error_handling: fail`) or go to the quarantine table with their
   reason, source file, row number and run id; more than `max_invalid_ratio` invalid fails the job.
3. Valid rows past the watermark, minus duplicates (within the batch by `dedupe_keys`, and rows
   re-read at the watermark boundary that Bronze already holds), stream into the Delta commit.

A plain CSV load with a `user_schema` (not incremental, no `dedupe_keys`) first tries one pass
(`_load_fast`): typed with the same expressions and written straight into Bronze; if any row would
be invalid, it deletes what it wrote and the steps above run instead.

Every run accounts for every row: rows_read = rows_written + quarantined_rows + deduplicated_rows.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from lakebook import dq
from lakebook.errors import IngestError, LakebookError
from lakebook.results import JobResult, RuleOutcome
from lakebook.runtime import JobContext
from lakebook.sources import Fetched, FetchRequest, LoadFile, source_for
from lakebook.specs import TEXT_FORMATS, IngestJob
from lakebook.sql import DUCKDB_TYPES, job_connection, quote_literal
from lakebook.sql import quote_identifier as q
from lakebook.storage import StagedFile, WriteMode, commit_files, same_schema

PARTITION_FORMATS = {"yyyy/MM/dd": "%Y-%m-%d", "yyyy/MM": "%Y-%m", "yyyy": "%Y"}
LANDING_FOLDERS = {"yyyy/MM/dd": "%Y/%m/%d", "yyyy/MM": "%Y/%m", "yyyy": "%Y"}
METADATA_COLUMNS = ("_run_id", "_ingested_at", "_source_file", "dt")
FILE_SOURCES = ("file_upload", "local_path", "s3")
ERROR_EXAMPLES = 5
SAMPLE_ROWS = 10
BATCH_ROWS = 256 * 1024
SECONDS_PER_DAY = 86_400
# The one-pass load of plain CSV jobs with a `user_schema` (see `_load_fast`). Tests turn it off to
# compare its Bronze table with the full path's; nothing else should.
FAST_PATH = True


def landing_folder(context: JobContext, job: IngestJob) -> Path:
    """This run's Landing folder: `landing/<pipeline>/<job>/<date path>/<run_id>/`."""
    folder = context.lake.landing_dir(context.pipeline, job.name)
    folder = folder / context.run_date.strftime(LANDING_FOLDERS[job.partition_pattern])
    return folder / context.run_id


def ingest(
    context: JobContext, job: IngestJob, watermark: str | None
) -> tuple[JobResult, pa.Table]:
    """Run one ingest job end to end; returns its result and a sample of what it wrote."""
    incremental = job.incremental_mode == "incremental" and job.watermark_column is not None
    result = JobResult(job=job.name, dataset=job.dataset, watermark_column=job.watermark_column)
    result.watermark_before = watermark if incremental else None

    landing = landing_folder(context, job)
    shutil.rmtree(landing, ignore_errors=True)  # a retried run starts from a clean folder
    landing.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="lakebook-ingest-") as scratch:
        # disk-backed: a large load's tables spill to disk instead of growing memory
        con = job_connection(Path(scratch), str(context.settings.duckdb_memory_limit), on_disk=True)
        try:
            lower_bound = _lower_bound(con, job, watermark) if incremental else None
            fetched = source_for(job).fetch(
                FetchRequest(
                    job=job,
                    landing=landing,
                    workspace=context.workspace,
                    pipeline_dir=context.pipeline_dir,
                    lower_bound=lower_bound,
                    loaded=context.loaded_fingerprints(job.name) if incremental else frozenset(),
                    connection=context.connection,
                )
            )
            result.source_files = [
                str(file.path.relative_to(context.lake.root)) for file in fetched.files
            ]
            result.manifest = [
                {"uri": entry.uri, "fingerprint": entry.fingerprint} for entry in fetched.manifest
            ]
            # Held from reading Bronze (boundary de-duplication) through the commit.
            with context.lake.write_lock(
                job.dataset,
                timeout=float(context.settings.lock_timeout_seconds),
                run=context.run_id,
                job=job.name,
            ):
                sample = _load(con, context, job, fetched, lower_bound, result)
        except duckdb.Error as error:
            raise IngestError(f"Job `{job.name}`: the source could not be read: {error}") from None
        finally:
            con.close()
    purge_landing(context, job)
    return result, sample


def purge_landing(context: JobContext, job: IngestJob) -> list[Path]:
    """Delete this job's Landing run folders older than `landing_retention_days`."""
    if job.landing_retention_days is None:
        return []
    cutoff = time.time() - job.landing_retention_days * SECONDS_PER_DAY
    root = context.lake.landing_dir(context.pipeline, job.name)
    removed = []
    depth = job.partition_pattern.count("/") + 1  # date folders, then the run folder
    for folder in sorted(root.glob("/".join(["*"] * (depth + 1)))):
        if folder.is_dir() and folder.name != context.run_id and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder)
            removed.append(folder)
    return removed


def _lower_bound(
    con: duckdb.DuckDBPyConnection, job: IngestJob, watermark: str | None
) -> str | None:
    """The watermark minus the look-back window, as text; None when there is no watermark yet."""
    if watermark is None or not job.watermark_lag:
        return watermark
    lag = job.watermark_lag
    if lag.replace(".", "", 1).isdigit():
        # Integer watermarks stay integers, so databases compare them with integer columns.
        kind = "BIGINT" if lag.isdigit() and watermark.lstrip("-").isdigit() else "DOUBLE"
        numeric = con.sql(f"SELECT TRY_CAST({quote_literal(watermark)} AS {kind}) - {lag}")
        value = numeric.fetchall()[0][0]
    else:
        shifted = con.sql(
            f"SELECT (TRY_CAST({quote_literal(watermark)} AS TIMESTAMP) "
            f"- INTERVAL {quote_literal(lag)})::VARCHAR"
        )
        value = shifted.fetchall()[0][0]
    if value is None:
        raise IngestError(
            f"Job `{job.name}`: `watermark_lag` `{lag}` does not fit the last watermark `{watermark}`: "
            "use a number for numeric watermark columns and a duration such as `2 hours` for "
            "date or time columns."
        )
    return str(value)


def _reader(job: IngestJob, files: list[LoadFile], all_text: bool, keep_rejects: bool) -> str:
    """DuckDB table function over landed files of one format, with their path as `__landed`."""
    locations = "[" + ", ".join(quote_literal(str(file.path)) for file in files) + "]"
    fmt = files[0].format
    if fmt == "csv":
        options = job.config.file
        delimiter, header, quote, encoding = ",", True, '"', "utf-8"
        if options is not None:
            delimiter, header, quote = options.delimiter, options.header, options.quote
            encoding = "utf-8" if options.encoding == "utf-8-sig" else options.encoding
        return (
            # skip=0: never let the sniffer skip leading lines it cannot fit (silent data loss).
            f"read_csv({locations}, header={quote_literal(header)}, skip=0, "
            f"delim={quote_literal(delimiter)}, quote={quote_literal(quote)}, "
            f"encoding={quote_literal(encoding)}, all_varchar={quote_literal(all_text)}, "
            # DuckDB keeps rejected lines only when files are read by position, not by name.
            f"store_rejects={quote_literal(keep_rejects)}, "
            f"union_by_name={quote_literal(not keep_rejects)}, filename='__landed')"
        )
    if fmt in ("json", "jsonl"):
        layout = "newline_delimited" if fmt == "jsonl" else "auto"
        return (
            f"read_json({locations}, format={quote_literal(layout)}, union_by_name=true, "
            "filename='__landed')"
        )
    return f"read_parquet({locations}, union_by_name=true, filename='__landed')"


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [row[0] for row in con.sql(f"DESCRIBE {relation}").fetchall()]


def _load(
    con: duckdb.DuckDBPyConnection,
    context: JobContext,
    job: IngestJob,
    fetched: Fetched,
    lower_bound: str | None,
    result: JobResult,
) -> pa.Table:
    """Type, check, quarantine, de-duplicate and commit the landed files; returns a sample."""
    incremental = job.incremental_mode == "incremental" and job.watermark_column is not None
    if not fetched.files:
        return _load_nothing(context, job, incremental, result)
    _check_empty_files(context, job, fetched)
    landed = ", ".join(
        f"({quote_literal(str(file.path))}, "
        f"{quote_literal(str(file.path.relative_to(context.lake.root)))})"
        for file in fetched.files
    )
    con.execute(
        f"CREATE TABLE landed_files AS SELECT * FROM (VALUES {landed}) AS t(__landed, __source_file)"
    )
    all_text = job.schema_mode == "user" or (
        job.format in TEXT_FORMATS and not job.force_to_parquet
    )
    # With quarantine on, CSV lines that cannot be parsed at all are set aside, not fatal.
    keep_rejects = job.error_handling == "quarantine" and fetched.files[0].format == "csv"
    reader = _reader(job, fetched.files, all_text, keep_rejects)
    source_columns = [c for c in _columns(con, f"SELECT * FROM {reader}") if c != "__landed"]
    columns = _check_renames(job, source_columns)
    cast = "::VARCHAR" if all_text and fetched.files[0].format != "csv" else ""
    renames = ", ".join(
        f"{q(old)}{cast} AS {q(new)}" for old, new in zip(source_columns, columns, strict=True)
    )
    con.execute(f"CREATE VIEW renamed AS SELECT {renames}, __landed FROM {reader}")
    con.execute(f"CREATE VIEW checked_rows AS {_checked_select(job, columns)}")
    # A plain load streams from the files twice (count, then write) rather than copying every
    # row into DuckDB first; de-duplication and watermarks need the rows at hand.
    streamable = not incremental and not job.dedupe_keys
    if (
        FAST_PATH
        and streamable
        and job.schema_mode == "user"
        and not job.data_quality  # rules need the rows at hand, typed: the full path
        and all(file.format == "csv" for file in fetched.files)
        and len({file.path for file in fetched.files}) == len(fetched.files)
    ):
        sample = _load_fast(con, context, job, result)
        if sample is not None:
            return sample
    # Data-quality rules read, fix and set aside rows: they need them copied into DuckDB.
    materialised = not streamable or bool(job.data_quality)
    con.execute(
        f"CREATE {'TABLE' if materialised else 'VIEW'} checked AS SELECT * FROM checked_rows"
    )
    if job.data_quality:
        result.dq = _check_rules(con, context, job)
    output_columns = [c for c in _columns(con, "checked") if not c.startswith("__")]

    past_watermark = "TRUE"
    if incremental:
        if job.watermark_column not in output_columns:
            raise IngestError(
                f"Job `{job.name}`: `watermark_column` `{job.watermark_column}` is not in the "
                f"source. Columns: {', '.join(f'`{c}`' for c in output_columns)}."
            )
        # Sources with a file manifest only hand over files never loaded before, so their rows are
        # all new, late ones included; filtering them by watermark would lose them for good.
        if lower_bound is not None and not fetched.manifest:
            past_watermark = f"c.{q(str(job.watermark_column))} >= {quote_literal(lower_bound)}"
    total, invalid, below_watermark = con.sql(
        "SELECT count(*), coalesce(count_if(__reason IS NOT NULL), 0), "
        f"coalesce(count_if(__reason IS NULL AND NOT coalesce({past_watermark}, false)), 0) "
        "FROM checked c"
    ).fetchall()[0]
    rejected = _collect_rejected_lines(con, job) if keep_rejects else 0
    if not materialised and (invalid or rejected):  # quarantine locates rows by position
        con.execute("DROP VIEW checked")
        con.execute("CREATE TABLE checked AS SELECT * FROM checked_rows")
    result.rows_read = int(total) + rejected
    result.quarantined_rows = int(invalid) + rejected
    _check_invalid_rows(con, context, job, result.quarantined_rows, result.rows_read)

    keep = f"c.__reason IS NULL AND coalesce({past_watermark}, false)"
    boundary_duplicates = 0
    # Rows Bronze holds already are duplicates: those re-read at the boundary or in the look-back
    # window, and for manifest sources any row of a changed file (files are re-read whole).
    window = None if fetched.manifest else lower_bound
    if incremental and (fetched.manifest or lower_bound is not None):
        boundary = _boundary_duplicate(con, context, job, output_columns, window)
        if boundary:
            boundary_duplicates = _count(con, f"checked c WHERE {keep} AND EXISTS ({boundary})")
            keep += f" AND NOT EXISTS ({boundary})"
    dedupe = _dedupe_clause(job, output_columns)
    batch_duplicates = 0
    if dedupe:
        keys = ", ".join(f"c.{q(key)}" for key in job.dedupe_keys)
        extra_rows = con.sql(
            f"SELECT coalesce(sum(n - 1), 0) FROM "
            f"(SELECT count(*) AS n FROM checked c WHERE {keep} GROUP BY {keys})"
        )
        batch_duplicates = int(extra_rows.fetchall()[0][0])
    output_sql = (
        f"SELECT {_output_columns(context, job, output_columns)} "
        f"FROM checked c JOIN landed_files f USING (__landed) WHERE {keep} {dedupe}"
    )
    # Streamed loads keep every valid row (DuckDB's own count of what it writes is checked
    # against this before the commit); the others count what the query keeps.
    valid = int(total) - int(invalid)
    result.rows_written = valid if streamable else _count(con, f"({output_sql})")
    # Rows older than the watermark were loaded by an earlier run: they count as duplicates.
    result.deduplicated_rows = int(below_watermark) + boundary_duplicates + batch_duplicates
    # Counted independently, these must add up; if not, lakebook has a bug and must not commit.
    if result.rows_read != result.rows_written + result.quarantined_rows + result.deduplicated_rows:
        raise LakebookError(
            f"Job `{job.name}`: row accounting does not add up (read {result.rows_read}, written "
            f"{result.rows_written}, quarantined {result.quarantined_rows}, de-duplicated "
            f"{result.deduplicated_rows}); nothing was committed. This is a bug in lakebook: "
            "please report it with the job's record."
        )
    if incremental:
        result.watermark_after = _new_watermark(con, job, keep_valid=past_watermark, result=result)
    if result.quarantined_rows:
        _quarantine(con, context, job, columns, keep_rejects)
    if incremental and result.rows_written == 0:
        return pa.table({})  # nothing new: no empty commit
    result.table_version = _write_bronze(con, context, job, output_sql, result.rows_written)
    return con.sql(f"{output_sql} LIMIT {SAMPLE_ROWS}").to_arrow_table()


def _load_fast(
    con: duckdb.DuckDBPyConnection, context: JobContext, job: IngestJob, result: JobResult
) -> pa.Table | None:
    """One pass for a plain CSV load with a `user_schema`: type and write in the same scan.

    Each column is typed with exactly the full path's expression (see `_checked_select`), but
    with a strict CAST: a value the full path would flag as unreadable aborts the write instead.
    Required columns are checked from the written files' null counts (a required string column
    is written as NULL where the full path finds it empty, only for that check). Any doubt: a
    cast error, a CSV line DuckDB set aside, a NULL in a required column, a row whose file is not
    known, or no rows at all, deletes the staged files and returns None, and the full path runs
    as if this had not been tried, with its own messages, quarantine and row numbers. When every
    row is valid the two paths write the same Bronze table.
    """
    assert job.user_schema is not None
    typed = []
    for spec in job.user_schema:
        raw = f"NULLIF(trim({q(spec.name)}::VARCHAR), '')"
        if spec.type != "string":
            value = f"CAST({raw} AS {DUCKDB_TYPES[spec.type]})"
        elif spec.nullable:
            value = f"{q(spec.name)}::VARCHAR"
        else:
            value = f"CASE WHEN {raw} IS NULL THEN NULL ELSE {q(spec.name)}::VARCHAR END"
        typed.append(f"{value} AS {q(spec.name)}")
    names = [spec.name for spec in job.user_schema]
    output_sql = (
        f"SELECT {_output_columns(context, job, names)} FROM (SELECT {', '.join(typed)}, "
        "__landed FROM renamed) c LEFT JOIN landed_files f USING (__landed)"
    )
    required = [spec.name for spec in job.user_schema if not spec.nullable]
    rejected_before = _rejected_count(con)
    rows: list[int] = []

    def accept(staged: list[StagedFile]) -> bool:
        nulls = {name: sum(file.null_counts.get(name, 1) for file in staged) for name in required}
        rows.append(sum(file.rows for file in staged))
        return (
            rows[0] > 0
            and _rejected_count(con) == rejected_before
            and not any(nulls.values())
            and sum(file.null_counts.get("_source_file", 1) for file in staged) == 0
        )

    try:
        version = _write_bronze(con, context, job, output_sql, None, accept=accept)
    except duckdb.Error:
        return None  # the full path reads the files again and reports what is wrong
    if version is None:
        return None
    result.table_version = version
    result.rows_read = result.rows_written = rows[0]
    result.quarantined_rows = result.deduplicated_rows = 0
    return con.sql(f"{output_sql} LIMIT {SAMPLE_ROWS}").to_arrow_table()


def _rejected_count(con: duckdb.DuckDBPyConnection) -> int:
    """How many CSV errors DuckDB has set aside so far in this connection (`store_rejects`)."""
    try:
        return _count(con, "reject_errors")
    except duckdb.CatalogException:  # no scan has stored rejects yet
        return 0


def _write_bronze(
    con: duckdb.DuckDBPyConnection,
    context: JobContext,
    job: IngestJob,
    output_sql: str,
    expected_rows: int | None,
    accept: Callable[[list[StagedFile]], bool] | None = None,
) -> int | None:
    """Write the output into Bronze as ONE Delta commit; returns the new table version.

    DuckDB writes the Parquet files itself, straight from the query (parallel, and memory stays
    flat whatever the size), into a fresh folder of the table; one Delta commit then adds them.
    A schema change on append goes through deltalake's writer, which merges schemas.

    With `accept` (and `expected_rows` None), the files are always written and `accept` decides
    from them whether to commit: when it refuses, they are deleted and None is returned.
    """
    path = context.lake.table_path(job.dataset)
    mode: WriteMode = "append" if job.incremental_mode == "incremental" else "overwrite"
    partition_by = ["dt"] if job.partition_mode == "date" else None
    schema = con.sql(f"SELECT * FROM ({output_sql}) LIMIT 0").to_arrow_table().schema
    if mode == "append" and context.lake.is_table(path) and not same_schema(path, schema):
        return context.lake.write_table(
            path,
            con.sql(output_sql).to_arrow_reader(BATCH_ROWS),
            mode=mode,
            partition_by=partition_by,
            compression=job.compression,
        )
    values: dict[str, str] = {}
    select, folder = output_sql, path
    if partition_by:
        values = {"dt": context.run_date.strftime(PARTITION_FORMATS[job.partition_pattern])}
        select = f"SELECT * EXCLUDE (dt) FROM ({output_sql})"
        folder = path / f"dt={values['dt']}"
    # Folders this write creates, deepest first: a refused attempt leaves no trace of itself.
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)  # DuckDB creates only the last level
    folder = folder / f"{context.run_id}-{uuid.uuid4().hex[:8]}"
    staged: list[StagedFile] = []
    try:
        if expected_rows or accept is not None:
            codec = "uncompressed" if job.compression == "none" else job.compression
            written = con.sql(
                f"COPY ({select}) TO {quote_literal(str(folder))} (FORMAT parquet, "
                f"COMPRESSION {quote_literal(codec)}, FILE_SIZE_BYTES '128MB', "
                "FILENAME_PATTERN 'part-{i}', RETURN_STATS true)"
            ).fetchall()
            staged = [
                StagedFile(
                    Path(row[0]),
                    int(row[1]),
                    int(row[2]),
                    {name.strip('"'): int(stats["null_count"]) for name, stats in row[4].items()},
                )
                for row in written
            ]
        if accept is not None and not accept(staged):
            shutil.rmtree(folder, ignore_errors=True)
            _remove_empty(created)
            return None
        if expected_rows is not None and sum(file.rows for file in staged) != expected_rows:
            raise LakebookError(
                f"Job `{job.name}`: DuckDB wrote {sum(f.rows for f in staged)} rows but "
                f"{expected_rows} were counted; nothing was committed. This is a bug in lakebook."
            )
        return commit_files(
            path, staged, schema, mode=mode, partition_by=partition_by, partition_values=values
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # files no commit refers to
        if accept is not None:
            _remove_empty(created)
        raise


def _remove_empty(folders: list[Path]) -> None:
    """Remove these folders (deepest first) where they are empty."""
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty, or gone already
            folder.rmdir()


def _load_nothing(
    context: JobContext, job: IngestJob, incremental: bool, result: JobResult
) -> pa.Table:
    """The source had nothing: incremental runs keep the watermark; full runs empty the table."""
    if incremental:
        result.watermark_after = result.watermark_before
        return pa.table({})
    if context.lake.exists(job.dataset):  # a full snapshot of nothing is an empty table
        empty = context.lake.read(job.dataset).schema.empty_table()
        result.table_version = context.lake.write_table(
            context.lake.table_path(job.dataset),
            empty,
            mode="overwrite",
            partition_by=["dt"] if job.partition_mode == "date" else None,
            compression=job.compression,
        )
    return pa.table({})


def _new_watermark(
    con: duckdb.DuckDBPyConnection, job: IngestJob, keep_valid: str, result: JobResult
) -> str | None:
    """The maximum watermark of the valid rows read (all now in Bronze); never moves backwards."""
    column = f"c.{q(str(job.watermark_column))}"
    advances = "NULL"
    if result.watermark_before is not None:
        advances = f"max({column}) > {quote_literal(result.watermark_before)}"
    top, moved = con.sql(
        f"SELECT max({column})::VARCHAR, {advances} FROM checked c "
        f"WHERE c.__reason IS NULL AND coalesce({keep_valid}, false)"
    ).fetchall()[0]
    if top is not None and (result.watermark_before is None or moved):
        return str(top)
    return result.watermark_before


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return int(con.sql(f"SELECT count(*) FROM {relation}").fetchall()[0][0])


def _check_renames(job: IngestJob, columns: list[str]) -> list[str]:
    """Column names after `rename_map`; errors for unknown columns and clashes."""
    missing = [old for old in job.rename_map if old not in columns]
    if missing:
        raise IngestError(
            f"Job `{job.name}`: `rename_map` renames column(s) the source does not have: "
            f"{', '.join(f'`{m}`' for m in missing)}. Source columns: "
            f"{', '.join(f'`{c}`' for c in columns)}."
        )
    renamed = [job.rename_map.get(column, column) for column in columns]
    clashes = [column for column in renamed if column in METADATA_COLUMNS]
    if clashes:
        raise IngestError(
            f"Job `{job.name}`: source column(s) {', '.join(f'`{c}`' for c in clashes)} clash "
            "with Bronze's own columns; rename them with `rename_map`."
        )
    return renamed


def _checked_select(
    job: IngestJob, columns: list[str], relation: str = "renamed", carried: str = "__landed"
) -> str:
    """SELECT giving each row typed, with `__reason` and `__raw` (see the module docstring).

    `relation` holds the text columns and `carried`, a column passed through as it is (a replay
    types quarantined rows with it, carrying their identity).
    """
    if job.schema_mode != "user":
        return f"SELECT *, NULL::VARCHAR AS __reason, NULL AS __raw FROM {relation}"
    assert job.user_schema is not None
    missing = [spec.name for spec in job.user_schema if spec.name not in columns]
    if missing:
        raise IngestError(
            f"Job `{job.name}`: the source is missing required column(s) "
            f"{', '.join(f'`{m}`' for m in missing)} from `user_schema`, so its schema is "
            f"incompatible. Source columns: {', '.join(f'`{c}`' for c in columns)}. "
            "Fix the source or `rename_map`, or change `user_schema`."
        )
    typed, reasons = [], []
    for index, spec in enumerate(job.user_schema):
        raw = f"NULLIF(trim({q(spec.name)}::VARCHAR), '')"
        label = spec.name.replace("'", "''")
        if spec.type == "string":
            typed.append(f"{q(spec.name)}::VARCHAR AS __typed_{index}")
        else:
            typed.append(f"TRY_CAST({raw} AS {DUCKDB_TYPES[spec.type]}) AS __typed_{index}")
            reasons.append(
                f"CASE WHEN {raw} IS NOT NULL AND __typed_{index} IS NULL THEN "
                f"'column `{label}`: cannot read ''' || {q(spec.name)}::VARCHAR "
                f"|| ''' as {spec.type}' END"
            )
        if not spec.nullable:
            reasons.append(
                f"CASE WHEN {raw} IS NULL THEN 'column `{label}`: a value is required' END"
            )
    reason = f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '')" if reasons else "NULL::VARCHAR"
    raw_row = "struct_pack(" + ", ".join(f"{q(c)} := {q(c)}::VARCHAR" for c in columns) + ")"
    outputs = ", ".join(
        f"__typed_{index} AS {q(spec.name)}" for index, spec in enumerate(job.user_schema)
    )
    return (
        f"SELECT {outputs}, __reason, CASE WHEN __reason IS NOT NULL THEN {raw_row} END AS __raw, "
        f"{carried} FROM (SELECT *, {reason} AS __reason FROM "
        f"(SELECT *, {', '.join(typed)} FROM {relation}))"
    )


def _check_empty_files(context: JobContext, job: IngestJob, fetched: Fetched) -> None:
    """Landing check: a file source's file with no bytes fails the job unless allowed."""
    if job.allow_empty_files or job.source_type not in FILE_SOURCES:
        return
    empty = [file.path for file in fetched.files if file.path.stat().st_size == 0]
    if empty:
        names = ", ".join(f"`{path.relative_to(context.lake.root)}`" for path in empty)
        raise IngestError(
            f"Job `{job.name}`: source file(s) {names} are empty (0 bytes), so nothing was "
            "written. An empty file usually means a failed export: check the source, or set "
            "`allow_empty_files: true` if empty files are expected."
        )


def _check_rules(
    con: duckdb.DuckDBPyConnection, context: JobContext, job: IngestJob
) -> list[RuleOutcome]:
    """Run the job's `data_quality` rules on the valid typed rows of `checked`, in place.

    The rules see those rows as the table `output` (as a dataset job's do). Auto-fixed values
    replace the originals; a row a rule quarantines becomes invalid, with the rules it fails
    as its `__reason` and its values as text in `__raw`, so it is counted, located and
    quarantined like a row that failed `user_schema`. A `fail` rule raises before anything is
    written.
    """
    columns = [c for c in _columns(con, "checked") if not c.startswith("__")]
    selected = ", ".join(q(column) for column in columns)
    con.execute(
        f"CREATE TABLE output AS SELECT rowid AS __row_id, {selected} FROM checked "
        "WHERE __reason IS NULL ORDER BY rowid"
    )
    for referenced in dq.referenced_datasets(job.data_quality):
        con.register(
            dq.reference_name(referenced), context.lake.table(referenced).to_pyarrow_dataset()
        )
    report = dq.evaluate(
        con, "output", job.data_quality, job.name, layer="ingest", run_id=context.run_id
    )
    if report.dropped_rows:  # the spec forbids `drop`; a row must never vanish unaccounted
        raise LakebookError(f"Job `{job.name}`: rules dropped rows. This is a bug in lakebook.")
    fixed = ", ".join(f"k.{q(column)}" for column in columns)
    reason, raw = "c.__reason", "c.__raw"
    quarantined = ""
    if report.quarantine_table is not None:
        quarantined = f"LEFT JOIN {dq.QUARANTINE_TABLE} r ON r.__row_id = c.rowid"
        as_text = ", ".join(f"{q(column)} := c.{q(column)}::VARCHAR" for column in columns)
        reason = "coalesce(c.__reason, r._reason)"
        raw = f"CASE WHEN r.__row_id IS NOT NULL THEN struct_pack({as_text}) ELSE c.__raw END"
    con.execute(
        f"CREATE TABLE __checked_by_rules AS SELECT {fixed}, {reason} AS __reason, "
        f"{raw} AS __raw, c.__landed FROM checked c LEFT JOIN output k ON k.__row_id = c.rowid "
        f"{quarantined} ORDER BY c.rowid"
    )
    con.execute("DROP TABLE checked")
    con.execute("ALTER TABLE __checked_by_rules RENAME TO checked")
    return report.outcomes


def _output_columns(context: JobContext, job: IngestJob, columns: list[str]) -> str:
    """The Bronze columns: the data, then `_run_id`, `_ingested_at`, `_source_file` and `dt`."""
    selected = [f"c.{q(column)}" for column in columns]
    selected += [
        f"{quote_literal(context.run_id)} AS _run_id",
        f"TIMESTAMPTZ {quote_literal(datetime.now(timezone.utc).isoformat())} AS _ingested_at",
        "f.__source_file AS _source_file",
    ]
    if job.partition_mode == "date":
        day = context.run_date.strftime(PARTITION_FORMATS[job.partition_pattern])
        selected.append(f"{quote_literal(day)} AS dt")
    return ", ".join(selected)


def _dedupe_clause(job: IngestJob, columns: list[str]) -> str:
    """Keep one row per `dedupe_keys` value: the first in source order, or the newest by the
    watermark in incremental loads."""
    if not job.dedupe_keys:
        return ""
    unknown = [key for key in job.dedupe_keys if key not in columns]
    if unknown:
        raise IngestError(
            f"Job `{job.name}`: `dedupe_keys` names unknown column(s) "
            f"{', '.join(f'`{k}`' for k in unknown)}. Columns: "
            f"{', '.join(f'`{c}`' for c in columns)}."
        )
    keys = ", ".join(f"c.{q(key)}" for key in job.dedupe_keys)
    order = "c.rowid"
    if job.incremental_mode == "incremental" and job.watermark_column:
        # Incremental loads keep each key's newest version, so none is skipped by the watermark.
        order = f"c.{q(job.watermark_column)} DESC NULLS LAST, c.rowid"
    return f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) = 1"


def _boundary_duplicate(
    con: duckdb.DuckDBPyConnection,
    context: JobContext,
    job: IngestJob,
    columns: list[str],
    window: str | None,
) -> str:
    """A correlated subquery finding row `c` in Bronze already (with watermark >= `window` when
    given): same `dedupe_keys` and watermark, or else the same values throughout."""
    if not context.lake.exists(job.dataset):
        return ""
    existing = context.lake.table(job.dataset).to_pyarrow_dataset()
    con.register("__bronze", existing)
    in_bronze = set(existing.schema.names)
    compare = [*job.dedupe_keys, str(job.watermark_column)] if job.dedupe_keys else columns
    matches = " AND ".join(
        f"e.{q(column)} IS NOT DISTINCT FROM c.{q(column)}"
        for column in compare
        if column in in_bronze
    )
    if window is not None:
        watermark = q(str(job.watermark_column))
        matches = f"e.{watermark} >= {quote_literal(window)} AND {matches}"
    return f"SELECT 1 FROM __bronze e WHERE {matches}"


def _collect_rejected_lines(con: duckdb.DuckDBPyConnection, job: IngestJob) -> int:
    """Gather the CSV lines DuckDB could not parse (kept in its reject tables) into `rejected`."""
    header = 1 if job.config.file is None or job.config.file.header else 0
    con.execute(
        "CREATE TABLE rejected AS SELECT s.file_path AS __landed, e.line - "
        f"{header} AS __row, string_agg(e.error_message, '; ') AS __reason, "
        "any_value(e.csv_line) AS __line FROM reject_errors e "
        "JOIN reject_scans s USING (scan_id, file_id) "
        "WHERE e.scan_id = (SELECT max(scan_id) FROM reject_scans) GROUP BY ALL"
    )
    return _count(con, "rejected")


def _check_invalid_rows(
    con: duckdb.DuckDBPyConnection, context: JobContext, job: IngestJob, invalid: int, total: int
) -> None:
    """Fail when rows are invalid and `error_handling` is fail, or too many are invalid."""
    if invalid == 0:
        return
    if job.error_handling == "fail":
        examples = con.sql(
            f"SELECT __source_file, __row, __reason FROM ({LOCATED}) WHERE __reason IS NOT NULL "
            f"ORDER BY __source_file, __row LIMIT {ERROR_EXAMPLES}"
        ).fetchall()
        lines = "\n".join(f"  {Path(f).name} row {row}: {why}" for f, row, why in examples)
        raise IngestError(
            f"Job `{job.name}`: {invalid} row(s) failed validation and `error_handling` is "
            f"`fail`, so nothing was written:\n{lines}\n"
            "Fix the source, or set `error_handling: quarantine` with a `quarantine_path` "
            "to load the valid rows and keep the others aside."
        )
    limit = job.max_invalid_ratio
    if limit is None:
        limit = float(context.settings.max_invalid_ratio)
    if invalid / total > limit:
        raise IngestError(
            f"Job `{job.name}`: {invalid} of {total} rows ({invalid / total:.1%}) are invalid, "
            f"more than `max_invalid_ratio` {limit:.1%}; nothing was written. The source looks "
            "broken: check it, or raise `max_invalid_ratio` if this is expected."
        )


LOCATED = (
    "SELECT c.rowid - min(c.rowid) OVER (PARTITION BY c.__landed) + 1 AS __row, c.*, "
    "f.__source_file FROM checked c JOIN landed_files f USING (__landed)"
)


def _quarantine(
    con: duckdb.DuckDBPyConnection,
    context: JobContext,
    job: IngestJob,
    columns: list[str],
    with_rejected_lines: bool,
) -> None:
    """Append the invalid rows to the quarantine table: the source columns as text, why, where."""
    now = f"TIMESTAMPTZ {quote_literal(datetime.now(timezone.utc).isoformat())}"
    run = quote_literal(context.run_id)
    raw = ", ".join(f"__raw.{q(column)} AS {q(column)}" for column in columns)
    parts = [
        f"SELECT {raw}, NULL::VARCHAR AS _raw_line, __reason AS _reason, "
        f"__source_file AS _source_file, __row AS _source_row, {run} AS _run_id, "
        f"{now} AS _quarantined_at FROM ({LOCATED}) WHERE __reason IS NOT NULL"
    ]
    if with_rejected_lines:
        nulls = ", ".join(f"NULL::VARCHAR AS {q(column)}" for column in columns)
        parts.append(
            f"SELECT {nulls}, r.__line AS _raw_line, "
            "'line could not be parsed: ' || r.__reason AS _reason, "
            f"f.__source_file AS _source_file, r.__row AS _source_row, {run} AS _run_id, "
            f"{now} AS _quarantined_at FROM rejected r JOIN landed_files f USING (__landed)"
        )
    rows = con.sql(
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY _source_file, _source_row"
    ).to_arrow_table()
    assert job.quarantine_path is not None
    context.lake.write_table(
        context.lake.path(job.quarantine_path, "quarantine_path"),
        rows,
        mode="append",
        compression=job.compression,
    )
