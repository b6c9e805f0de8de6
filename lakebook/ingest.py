"""Ingest: copy source files into Landing byte-for-byte, then load them into a Bronze Delta table.

The work happens in DuckDB: parse, rename, type-check against `user_schema`, filter by watermark,
de-duplicate, then stream the result into ONE Delta commit. Invalid rows fail the job or go to the
quarantine table with their reason, file and row number.
"""

from __future__ import annotations

import glob as globbing
import shutil
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from lakebook.errors import IngestError
from lakebook.results import JobResult
from lakebook.runtime import JobContext
from lakebook.specs import TEXT_FORMATS, ColumnSpec, IngestJob
from lakebook.sql import quote_identifier as q
from lakebook.sql import quote_literal
from lakebook.storage import confine

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "decimal": "DECIMAL(38, 9)",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
PARTITION_FORMATS = {"yyyy/MM/dd": "%Y-%m-%d", "yyyy/MM": "%Y-%m", "yyyy": "%Y"}
LANDING_FOLDERS = {"yyyy/MM/dd": "%Y/%m/%d", "yyyy/MM": "%Y/%m", "yyyy": "%Y"}
DEFAULT_EXTENSIONS = {"csv": "*.csv", "json": "*.json", "jsonl": "*.jsonl", "parquet": "*.parquet"}
METADATA_COLUMNS = ("_run_id", "_ingested_at", "_source_file", "dt")
ERROR_EXAMPLES = 5
SAMPLE_ROWS = 10
BATCH_ROWS = 128 * 1024


def source_files(context: JobContext, job: IngestJob) -> list[Path]:
    """The files a file-based job reads: one file, a folder's files, or a glob."""
    if job.source_type not in ("file_upload", "local_path"):
        raise IngestError(
            f"Job `{job.name}`: source_type `{job.source_type}` cannot be loaded by this version; "
            "use `local_path` or `file_upload`."
        )
    assert job.config.file is not None and job.config.file.path  # guaranteed by the spec
    if job.source_type == "file_upload":
        base = context.workspace / "uploads"
    else:
        base = context.pipeline_dir
    raw = job.config.file.path
    target_is_dir = False
    if any(char in raw for char in "*?["):
        matches = sorted(globbing.glob(str(base / raw)))
        files = [confine(context.workspace, match, "source path") for match in matches]
    else:
        target = confine(context.workspace, base / raw, "source path")
        target_is_dir = target.is_dir()
        if target_is_dir:
            pattern = job.filename_pattern or DEFAULT_EXTENSIONS[job.format]
            files = sorted(path for path in target.glob(pattern) if path.is_file())
        elif target.is_file():
            files = [target]
        else:
            raise IngestError(
                f"Job `{job.name}`: source `{raw}` does not exist (looked at `{target}`). "
                "Check `config.file.path`; relative paths start at the pipeline folder."
            )
    if job.filename_pattern and files and not target_is_dir:
        files = [path for path in files if path.match(job.filename_pattern)]
    if not files:
        raise IngestError(
            f"Job `{job.name}`: no files match `{raw}`"
            + (f" with filename_pattern `{job.filename_pattern}`" if job.filename_pattern else "")
            + ". Put the source files there or fix the path."
        )
    return files


def land_files(context: JobContext, job: IngestJob, files: list[Path]) -> list[Path]:
    """Copy each source file byte-for-byte into Landing; returns the copies."""
    folder = context.lake.landing_dir(context.pipeline, job.name)
    folder = folder / context.run_date.strftime(LANDING_FOLDERS[job.partition_pattern])
    folder = folder / context.run_id
    folder.mkdir(parents=True, exist_ok=True)
    landed = []
    for index, source in enumerate(files):
        name = (
            source.name if len({f.name for f in files}) == len(files) else f"{index}_{source.name}"
        )
        target = folder / name
        shutil.copyfile(source, target)
        landed.append(target)
    return landed


def _reader(job: IngestJob, path: Path, all_text: bool) -> str:
    """DuckDB table function reading one landed file."""
    location = quote_literal(str(path))
    if job.format == "csv":
        options = job.config.file
        assert options is not None
        encoding = "utf-8" if options.encoding == "utf-8-sig" else options.encoding
        return (
            f"read_csv({location}, header={quote_literal(options.header)}, "
            f"delim={quote_literal(options.delimiter)}, quote={quote_literal(options.quote)}, "
            f"encoding={quote_literal(encoding)}, all_varchar={quote_literal(all_text)})"
        )
    if job.format in ("json", "jsonl"):
        layout = "newline_delimited" if job.format == "jsonl" else "auto"
        return f"read_json({location}, format={quote_literal(layout)})"
    return f"read_parquet({location})"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in con.sql(f"DESCRIBE {table}").fetchall()]


def _load_source(
    con: duckdb.DuckDBPyConnection, job: IngestJob, landed: list[Path], root: Path
) -> None:
    """Create temp table `source`: every landed row plus its file and 1-based row number."""
    # Text formats keep every value as text when force_to_parquet is off; parquet keeps its types.
    all_text = job.schema_mode == "user" or (
        job.format in TEXT_FORMATS and not job.force_to_parquet
    )
    for index, path in enumerate(landed):
        relative = quote_literal(str(path.relative_to(root)))
        select = (
            f"SELECT *, {relative} AS __source_file, row_number() OVER () AS __source_row "
            f"FROM {_reader(job, path, all_text)}"
        )
        if index == 0:
            con.execute(f"CREATE TEMP TABLE source AS {select}")
        else:
            con.execute(f"INSERT INTO source BY NAME {select}")
    if all_text and job.format != "csv":
        for column in _columns(con, "source"):
            if not column.startswith("__"):
                con.execute(f"ALTER TABLE source ALTER {q(column)} TYPE VARCHAR")


def _apply_rename_map(con: duckdb.DuckDBPyConnection, job: IngestJob) -> list[str]:
    """Rename source columns per `rename_map`; returns the data columns after renaming."""
    columns = [c for c in _columns(con, "source") if not c.startswith("__")]
    missing = [old for old in job.rename_map if old not in columns]
    if missing:
        raise IngestError(
            f"Job `{job.name}`: `rename_map` renames column(s) the source does not have: "
            f"{', '.join(f'`{m}`' for m in missing)}. Source columns: "
            f"{', '.join(f'`{c}`' for c in columns)}."
        )
    for old, new in job.rename_map.items():
        con.execute(f"ALTER TABLE source RENAME {q(old)} TO {q(new)}")
    renamed = [job.rename_map.get(column, column) for column in columns]
    clashes = [column for column in renamed if column in METADATA_COLUMNS]
    if clashes:
        raise IngestError(
            f"Job `{job.name}`: source column(s) {', '.join(f'`{c}`' for c in clashes)} clash "
            "with Bronze's own columns; rename them with `rename_map`."
        )
    return renamed


def _typed_select(job: IngestJob, columns: list[str]) -> tuple[list[str], str]:
    """Expressions that type each output column, and one that explains why a row is invalid."""
    if job.schema_mode != "user":
        return [q(column) for column in columns], "NULL"
    assert job.user_schema is not None
    missing = [spec.name for spec in job.user_schema if spec.name not in columns]
    if missing:
        raise IngestError(
            f"Job `{job.name}`: the source is missing required column(s) "
            f"{', '.join(f'`{m}`' for m in missing)} from `user_schema`. "
            f"Source columns: {', '.join(f'`{c}`' for c in columns)}. "
            "Fix the source or `rename_map`, or change `user_schema`."
        )
    expressions, reasons = [], []
    for spec in job.user_schema:
        expressions.append(f"{_cast(spec)} AS {q(spec.name)}")
        reasons.extend(_reasons(spec))
    return expressions, f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '')"


def _cast(spec: ColumnSpec) -> str:
    raw = f"NULLIF(trim({q(spec.name)}), '')"
    if spec.type == "string":
        return q(spec.name)
    return f"TRY_CAST({raw} AS {DUCKDB_TYPES[spec.type]})"


def _reasons(spec: ColumnSpec) -> list[str]:
    raw = f"NULLIF(trim({q(spec.name)}), '')"
    name = spec.name.replace("'", "''")
    reasons = []
    if spec.type != "string":
        reasons.append(
            f"CASE WHEN {raw} IS NOT NULL AND {_cast(spec)} IS NULL THEN "
            f"'column `{name}`: cannot read ''' || {q(spec.name)} || ''' as {spec.type}' END"
        )
    if not spec.nullable:
        reasons.append(f"CASE WHEN {raw} IS NULL THEN 'column `{name}`: a value is required' END")
    return reasons


def ingest(
    context: JobContext, job: IngestJob, watermark: str | None
) -> tuple[JobResult, pa.Table]:
    """Run one ingest job end to end; returns its result and a sample of what it wrote."""
    files = source_files(context, job)
    landed = land_files(context, job, files)
    result = JobResult(job=job.name, dataset=job.dataset, watermark_column=job.watermark_column)
    result.source_files = [str(path.relative_to(context.lake.root)) for path in landed]
    incremental = job.incremental_mode == "incremental" and job.watermark_column is not None
    result.watermark_before = watermark if incremental else None

    con = duckdb.connect()
    try:
        _load_source(con, job, landed, context.lake.root)
        columns = _apply_rename_map(con, job)
        if incremental and job.watermark_column not in columns and job.schema_mode != "user":
            raise IngestError(
                f"Job `{job.name}`: `watermark_column` `{job.watermark_column}` is not in the "
                f"source. Source columns: {', '.join(f'`{c}`' for c in columns)}."
            )
        typed, reason = _typed_select(job, columns)
        con.execute(
            f"CREATE TEMP TABLE checked AS SELECT {', '.join(typed)}, {reason} AS __reason, "
            "__source_file, __source_row FROM source"
        )
        output_columns = [c for c in _columns(con, "checked") if not c.startswith("__")]
        invalid = _handle_invalid_rows(con, context, job, columns)
        result.quarantined_rows = invalid

        keep = "__reason IS NULL"
        if incremental and watermark is not None:
            keep += f" AND {q(str(job.watermark_column))} > {quote_literal(watermark)}"
        result.rows_read = _count(con, "checked", _watermark_filter(job, watermark, incremental))
        order = "__source_file, __source_row"
        dedupe = ""
        if job.dedupe_keys:
            unknown = [key for key in job.dedupe_keys if key not in output_columns]
            if unknown:
                raise IngestError(
                    f"Job `{job.name}`: `dedupe_keys` names unknown column(s) "
                    f"{', '.join(f'`{k}`' for k in unknown)}."
                )
            keys = ", ".join(q(key) for key in job.dedupe_keys)
            dedupe = f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) = 1"
        now = datetime.now(timezone.utc)
        metadata = [
            f"{quote_literal(context.run_id)} AS _run_id",
            f"TIMESTAMPTZ {quote_literal(now.isoformat())} AS _ingested_at",
            "__source_file AS _source_file",
        ]
        if job.partition_mode == "date":
            day = context.run_date.strftime(PARTITION_FORMATS[job.partition_pattern])
            metadata.append(f"{quote_literal(day)} AS dt")
        selected = ", ".join([*(q(c) for c in output_columns), *metadata])
        con.execute(
            f"CREATE TEMP TABLE output AS SELECT {selected} FROM checked WHERE {keep} "
            f"{dedupe} ORDER BY {order}"
        )
        result.rows_written = _count(con, "output")
        result.deduplicated_rows = result.rows_read - result.quarantined_rows - result.rows_written
        if incremental:
            top = con.sql(
                f"SELECT max({q(str(job.watermark_column))})::VARCHAR FROM output"
            ).fetchall()[0][0]
            result.watermark_after = top if top is not None else watermark

        reader = con.sql("SELECT * FROM output").to_arrow_reader(BATCH_ROWS)
        result.table_version = context.lake.write_table(
            context.lake.table_path(job.dataset),
            reader,
            mode="append" if job.incremental_mode == "incremental" else "overwrite",
            partition_by=["dt"] if job.partition_mode == "date" else None,
            compression=job.compression,
        )
        sample = con.sql(f"SELECT * FROM output LIMIT {SAMPLE_ROWS}").to_arrow_table()
    except duckdb.Error as error:
        raise IngestError(f"Job `{job.name}`: the source could not be read: {error}") from None
    finally:
        con.close()
    return result, sample


def _watermark_filter(job: IngestJob, watermark: str | None, incremental: bool) -> str:
    if incremental and watermark is not None:
        column = q(str(job.watermark_column))
        return f"({column} > {quote_literal(watermark)} OR __reason IS NOT NULL)"
    return "TRUE"


def _count(con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE") -> int:
    return int(con.sql(f"SELECT count(*) FROM {table} WHERE {where}").fetchall()[0][0])


def _handle_invalid_rows(
    con: duckdb.DuckDBPyConnection, context: JobContext, job: IngestJob, columns: list[str]
) -> int:
    """Fail on invalid rows, or append them to the quarantine table; returns how many."""
    invalid = _count(con, "checked", "__reason IS NOT NULL")
    if invalid == 0:
        return 0
    if job.error_handling == "fail":
        examples = con.sql(
            "SELECT __source_file, __source_row, __reason FROM checked "
            f"WHERE __reason IS NOT NULL ORDER BY __source_file, __source_row LIMIT {ERROR_EXAMPLES}"
        ).fetchall()
        lines = "\n".join(f"  {Path(f).name} row {row}: {why}" for f, row, why in examples)
        raise IngestError(
            f"Job `{job.name}`: {invalid} row(s) failed validation and `error_handling` is "
            f"`fail`, so nothing was written:\n{lines}\n"
            "Fix the source, or set `error_handling: quarantine` with a `quarantine_path` "
            "to load the valid rows and keep the others aside."
        )
    raw_columns = ", ".join(f"s.{q(column)}::VARCHAR AS {q(column)}" for column in columns)
    now = datetime.now(timezone.utc).isoformat()
    rows = con.sql(
        f"SELECT {raw_columns}, c.__reason AS _reason, c.__source_file AS _source_file, "
        f"c.__source_row AS _source_row, {quote_literal(context.run_id)} AS _run_id, "
        f"TIMESTAMPTZ {quote_literal(now)} AS _quarantined_at "
        "FROM checked c JOIN source s USING (__source_file, __source_row) "
        "WHERE c.__reason IS NOT NULL ORDER BY c.__source_file, c.__source_row"
    ).to_arrow_table()
    assert job.quarantine_path is not None
    context.lake.write_table(
        context.lake.path(job.quarantine_path, "quarantine_path"),
        rows,
        mode="append",
        compression=job.compression,
    )
    return invalid
