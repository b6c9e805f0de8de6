"""Replay quarantined rows through the job's CURRENT rules after a fix (`lakebook dq replay`).

A dataset's quarantine table is append-only and stays so: a replay never rewrites or deletes it.
Which rows were replayed, when, and with what outcome is recorded in a ledger Delta table beside
them, `<quarantine table>/_replays` (`_file`, `_file_row`: the row's Parquet file in the
quarantine table and its position there; `_replay_id`, `_replayed_at`, `_outcome`, `_reason`).
A quarantined row is *open* while the ledger has no entry for it. A replay takes the open rows,
re-checks them and then, holding the dataset's write lock:

1. appends the rows that fail again to the quarantine table, with their new `_reason` and the
   replay's id as `_run_id` (they are the open rows the next replay takes);
2. adds the rows that now pass to the dataset as ONE Delta commit (an upsert dataset merges
   them by `unique_key`; others append);
3. appends a ledger entry for every replayed row: `accepted`, `quarantined_again` or `dropped`.

Dataset jobs' rows (`quarantine/<layer>/<name>`) are cast to `target_schema` and checked by the
job's row-level `data_quality` rules; table-level rules judge whole tables and are left to the
next run. A `unique` rule also fails a row whose key the dataset holds already. Ingest jobs' rows
(`quarantine_path`, values kept as text) are typed by the job's `user_schema` (or Bronze's column
types) exactly as a load types them, checked by its `data_quality` rules, and appended to Bronze
with the Bronze columns (`_run_id` = the replay id, `_source_file` the row's original file). CSV
lines that could not be parsed at all cannot be replayed: fix the file and run the job again.

The three writes are separate commits: if one fails, the ledger (written last) does not mark the
rows, so they stay open and may be added twice by the next replay; the error says so.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake.exceptions import DeltaError

from lakebook import dq
from lakebook.errors import LakebookError
from lakebook.ingest import PARTITION_FORMATS, _check_rules, _checked_select
from lakebook.runtime import JobContext
from lakebook.specs import DatasetJob, IngestJob, PipelineSpec
from lakebook.sql import DUCKDB_TYPES, job_connection, quote_literal
from lakebook.sql import quote_identifier as q
from lakebook.transform import table_path

LEDGER_FOLDER = "_replays"
INGEST_QUARANTINE_COLUMNS = (
    "_raw_line",
    "_reason",
    "_source_file",
    "_source_row",
    "_run_id",
    "_quarantined_at",
)
BATCH_ROWS = 128 * 1024


class NothingQuarantinedError(LakebookError):
    """The dataset has no quarantine table, or it holds no rows."""


class ReplayWriteError(LakebookError):
    """A replay's write failed part-way; the message says what was committed."""


@dataclass(frozen=True)
class ReplaySummary:
    """What one replay did: rows taken, accepted into the dataset, quarantined again, dropped."""

    dataset: str
    rows_replayed: int
    rows_accepted: int
    rows_still_failing: int
    table_version: int | None
    rows_dropped: int = 0
    replay_id: str = ""


def find_job(specs: dict[str, PipelineSpec], dataset: str) -> tuple[str, IngestJob | DatasetJob]:
    """The pipeline and job writing `dataset`; an error listing the known datasets otherwise."""
    for pipeline, spec in specs.items():
        for job in spec.jobs:
            if job.dataset == dataset:
                return pipeline, job
    known = sorted(job.dataset for spec in specs.values() for job in spec.jobs)
    raise NothingQuarantinedError(
        f"No pipeline writes dataset `{dataset}`, so it has no quarantine to replay. Datasets "
        f"the pipelines write: {', '.join(f'`{name}`' for name in known) or 'none'}."
    )


def quarantine_path(context: JobContext, job: IngestJob | DatasetJob) -> Path:
    """The job's quarantine table: `quarantine_path` for ingest jobs, else `quarantine/<layer>/<name>`."""
    if isinstance(job, IngestJob):
        if job.quarantine_path is None:
            raise NothingQuarantinedError(
                f"Job `{job.name}` has no `quarantine_path` (its `error_handling` is "
                f"`{job.error_handling}`), so `{job.dataset}` has no quarantine to replay."
            )
        return context.lake.path(job.quarantine_path, "quarantine_path")
    return context.lake.path(dq.quarantine_location(job.layer, job.name), "quarantine path")


def replay_quarantine(context: JobContext, job: IngestJob | DatasetJob) -> ReplaySummary:
    """Re-check `job`'s open quarantined rows with its current spec; see the module docstring.

    `context.run_id` is the replay's id: it tags the rows added and the ledger entries.
    """
    path = quarantine_path(context, job)
    if not context.lake.is_table(path):
        raise NothingQuarantinedError(
            f"Dataset `{job.dataset}` has nothing quarantined: there is no quarantine table at "
            f"`{path.relative_to(context.lake.root)}`."
        )
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="lakebook-replay-") as scratch:
        con = job_connection(Path(scratch), str(context.settings.duckdb_memory_limit))
        try:
            con.execute("SET preserve_insertion_order = true")
            with context.lake.write_lock(
                job.dataset,
                timeout=float(context.settings.lock_timeout_seconds),
                run=context.run_id,
                job=job.name,
            ):
                stored, open_rows = _load_open_rows(con, context, path)
                if not stored:
                    raise NothingQuarantinedError(
                        f"Dataset `{job.dataset}` has nothing quarantined: its quarantine table "
                        f"`{path.relative_to(context.lake.root)}` holds no rows."
                    )
                if not open_rows:
                    return ReplaySummary(
                        job.dataset, 0, 0, 0, _current_version(context, job), 0, context.run_id
                    )
                if isinstance(job, IngestJob):
                    _check_ingest_rows(con, context, job, now)
                else:
                    _check_dataset_rows(con, context, job, now)
                return _commit(con, context, job, path, now)
        finally:
            con.close()


def _load_open_rows(
    con: duckdb.DuckDBPyConnection, context: JobContext, path: Path
) -> tuple[int, int]:
    """Table `open_rows`: quarantined rows with no ledger entry, numbered `__replay_row`,
    located by `__file` / `__file_row`. Returns (rows stored, rows open)."""
    table = context.lake.open_table(path)
    files = [str(name) for name in table.get_add_actions(flatten=True).column("path").to_pylist()]
    if not files:
        return 0, 0
    located = ", ".join(
        f"({quote_literal(str(path / name))}, {quote_literal(name)})" for name in files
    )
    con.execute(f"CREATE TABLE quarantine_files AS FROM (VALUES {located}) AS t(__path, __file)")
    paths = "[" + ", ".join(quote_literal(str(path / name)) for name in files) + "]"
    con.execute(
        "CREATE TABLE quarantined AS SELECT r.* EXCLUDE (__path, file_row_number), f.__file, "
        f"r.file_row_number AS __file_row FROM read_parquet({paths}, union_by_name=true, "
        "filename='__path', file_row_number=true) r JOIN quarantine_files f USING (__path)"
    )
    stored = int(con.sql("SELECT count(*) FROM quarantined").fetchall()[0][0])
    ledger = path / LEDGER_FOLDER
    replayed = "FALSE"
    if context.lake.is_table(ledger):
        con.register("ledger", context.lake.open_table(ledger).to_pyarrow_dataset())
        replayed = (
            "EXISTS (SELECT 1 FROM ledger l WHERE l._file = r.__file "
            "AND l._file_row = r.__file_row)"
        )
    con.execute(
        "CREATE TABLE open_rows AS SELECT *, row_number() OVER (ORDER BY __file, __file_row) "
        f"AS __replay_row FROM quarantined r WHERE NOT {replayed} ORDER BY __file, __file_row"
    )
    return stored, int(con.sql("SELECT count(*) FROM open_rows").fetchall()[0][0])


def _data_columns(con: duckdb.DuckDBPyConnection, metadata: tuple[str, ...]) -> list[str]:
    """The quarantined rows' own columns: neither quarantine metadata nor replay bookkeeping."""
    names = [str(row[0]) for row in con.sql("DESCRIBE open_rows").fetchall()]
    return [name for name in names if name not in metadata and not name.startswith("__")]


def _check_dataset_rows(
    con: duckdb.DuckDBPyConnection, context: JobContext, job: DatasetJob, now: datetime
) -> None:
    """Cast to `target_schema` and run the row-level rules, into tables `accepted` (the
    dataset's columns) and `failing` (the quarantined rows with their new `_rules`, `_reason`).
    """
    columns = _data_columns(con, dq.QUARANTINE_COLUMNS)
    typed = [q(name) for name in columns]
    reasons: list[str] = []
    if job.target_schema:
        typed, names = [], []
        for column in job.target_schema:
            value = q(column.name) if column.name in columns else "NULL"
            target = DUCKDB_TYPES[column.type]
            typed.append(f"TRY_CAST({value} AS {target}) AS {q(column.name)}")
            label = column.name.replace("'", "''")
            reasons.append(
                f"CASE WHEN {value} IS NOT NULL AND TRY_CAST({value} AS {target}) IS NULL THEN "
                f"'target_schema: `{label}` cannot be cast to {column.type}' END"
            )
            if not column.nullable:
                reasons.append(
                    f"CASE WHEN {value} IS NULL THEN 'target_schema: `{label}` is null' END"
                )
            names.append(column.name)
        columns = names
    reason = f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '')" if reasons else "NULL::VARCHAR"
    con.execute(
        f"CREATE TABLE typed AS SELECT __replay_row, {', '.join(typed)}, {reason} AS __reason "
        "FROM open_rows"
    )
    con.execute(
        f"CREATE TABLE output AS SELECT __replay_row, {', '.join(q(c) for c in columns)} "
        "FROM typed WHERE __reason IS NULL"
    )
    row_rules = [rule for rule in job.data_quality if rule.row_level]
    for referenced in dq.referenced_datasets(row_rules):
        con.register(
            dq.reference_name(referenced), context.lake.table(referenced).to_pyarrow_dataset()
        )
    report = dq.evaluate(
        con, "output", row_rules, job.name, layer=job.layer, run_id=context.run_id, checked_at=now
    )
    failing = [
        "SELECT __replay_row, 'target_schema' AS _rules, __reason AS _reason FROM typed "
        "WHERE __reason IS NOT NULL"
    ]
    if report.quarantine_table is not None:
        failing.append(f"SELECT __replay_row, _rules, _reason FROM {report.quarantine_table}")
    path = table_path(context, job)
    accepted = "SELECT * FROM output o"
    if context.lake.is_table(path):
        # The rows checked were only the replayed ones: a key the dataset holds is not unique.
        con.register("__existing", context.lake.open_table(path).to_pyarrow_dataset())
        clashes = []
        for rule in row_rules:
            if rule.check_type != "unique":
                continue
            same = " AND ".join(f"e.{q(key)} = o.{q(key)}" for key in rule.key_columns)
            clash = f"EXISTS (SELECT 1 FROM __existing e WHERE {same})"
            clashes.append(clash)
            text = quote_literal(f"{dq.reason(rule)} (the dataset holds the key already)")
            failing.append(
                f"SELECT __replay_row, {quote_literal(rule.name)} AS _rules, {text} AS _reason "
                f"FROM output o WHERE {clash}"
            )
        if clashes:
            accepted += f" WHERE NOT ({' OR '.join(clashes)})"
    # One row per failing row, every rule it fails listed (as the quarantine does).
    grouped = (
        "SELECT __replay_row, string_agg(_rules, ',') AS _rules, string_agg(_reason, '; ') AS "
        f"_reason FROM ({' UNION ALL '.join(failing)}) GROUP BY __replay_row"
    )
    con.execute(
        "CREATE TABLE failing AS SELECT o.* REPLACE (f._rules AS _rules, f._reason AS _reason) "
        f"FROM open_rows o JOIN ({grouped}) f USING (__replay_row)"
    )
    con.execute(
        f"CREATE TABLE accepted AS SELECT * FROM ({accepted}) "
        "WHERE __replay_row NOT IN (SELECT __replay_row FROM failing) ORDER BY __replay_row"
    )


def _check_ingest_rows(
    con: duckdb.DuckDBPyConnection, context: JobContext, job: IngestJob, now: datetime
) -> None:
    """Type the text values as a load does and run the job's rules, into tables `accepted`
    (Bronze's columns) and `failing` (the quarantined rows with their new `_reason`)."""
    columns = _data_columns(con, INGEST_QUARANTINE_COLUMNS)
    selected = ", ".join(q(name) for name in columns)
    # Lines DuckDB could not parse have no values to type: they stay quarantined as they are.
    con.execute(
        f"CREATE VIEW replay_text AS SELECT {selected}, __replay_row FROM open_rows "
        "WHERE _raw_line IS NULL"
    )
    if job.schema_mode == "user":
        checked = _checked_select(job, columns, "replay_text", "__replay_row AS __landed")
    else:
        checked = _typed_like_bronze(con, context, job, columns)
    con.execute(f"CREATE TABLE checked AS {checked} ORDER BY __landed")
    if job.data_quality:
        _check_rules(con, context, job)
    output = [str(row[0]) for row in con.sql("DESCRIBE checked").fetchall()]
    bronze = _bronze_types(con, context, job)
    values = []
    for name in (name for name in output if not name.startswith("__")):
        kind = bronze.get(name)
        if kind is None:
            values.append(f"c.{q(name)}")
            continue
        # Bronze's columns keep their types: a value that does not fit one stays quarantined.
        con.execute(
            f"UPDATE checked SET __reason = 'column `' || {quote_literal(name)} || '`: ' || "
            f"{q(name)}::VARCHAR || ' does not fit Bronze''s type {kind}; after changing its "
            "type in `user_schema`, run the job again so Bronze takes it' WHERE __reason IS NULL "
            f"AND {q(name)} IS NOT NULL AND TRY_CAST({q(name)} AS {kind}) IS NULL"
        )
        values.append(f"TRY_CAST(c.{q(name)} AS {kind}) AS {q(name)}")
    values += [
        f"{quote_literal(context.run_id)} AS _run_id",
        f"TIMESTAMPTZ {quote_literal(now.isoformat())} AS _ingested_at",
        "o._source_file AS _source_file",
    ]
    if job.partition_mode == "date":
        day = context.run_date.strftime(PARTITION_FORMATS[job.partition_pattern])
        values.append(f"{quote_literal(day)} AS dt")
    con.execute(
        f"CREATE TABLE accepted AS SELECT o.__replay_row, {', '.join(values)} FROM checked c "
        "JOIN open_rows o ON o.__replay_row = c.__landed WHERE c.__reason IS NULL "
        "ORDER BY o.__replay_row"
    )
    con.execute(
        "CREATE TABLE failing AS SELECT o.* REPLACE (coalesce(c.__reason, o._reason) AS _reason) "
        "FROM open_rows o LEFT JOIN checked c ON c.__landed = o.__replay_row "
        "WHERE c.__landed IS NULL OR c.__reason IS NOT NULL"
    )


def _bronze_types(
    con: duckdb.DuckDBPyConnection, context: JobContext, job: IngestJob
) -> dict[str, str]:
    """Bronze's column types by name (DuckDB's names); empty before the first commit."""
    if not context.lake.exists(job.dataset):
        return {}
    con.register("__bronze", context.lake.table(job.dataset).to_pyarrow_dataset())
    return {str(row[0]): str(row[1]) for row in con.sql("DESCRIBE __bronze").fetchall()}


def _typed_like_bronze(
    con: duckdb.DuckDBPyConnection, context: JobContext, job: IngestJob, columns: list[str]
) -> str:
    """Without `user_schema`: cast each text value to its Bronze column's type, if Bronze has it."""
    types = _bronze_types(con, context, job)
    typed, reasons = [], []
    for name in columns:
        kind = types.get(name, "VARCHAR")
        typed.append(f"TRY_CAST({q(name)} AS {kind}) AS {q(name)}")
        if kind != "VARCHAR":
            label = name.replace("'", "''")
            reasons.append(
                f"CASE WHEN {q(name)} IS NOT NULL AND TRY_CAST({q(name)} AS {kind}) IS NULL "
                f"THEN 'column `{label}`: cannot read ''' || {q(name)} || ''' as {kind}' END"
            )
    reason = f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '')" if reasons else "NULL::VARCHAR"
    return (
        f"SELECT {', '.join(typed)}, {reason} AS __reason, NULL AS __raw, "
        "__replay_row AS __landed FROM replay_text"
    )


def _commit(
    con: duckdb.DuckDBPyConnection,
    context: JobContext,
    job: IngestJob | DatasetJob,
    path: Path,
    now: datetime,
) -> ReplaySummary:
    """Quarantine the `failing` rows again, add the `accepted` ones, then write the ledger."""
    replayed, accepted, failing = (
        int(con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0])
        for table in ("open_rows", "accepted", "failing")
    )
    stamp = f"TIMESTAMPTZ {quote_literal(now.isoformat())}"
    run = quote_literal(context.run_id)
    done = "committed nothing"
    try:
        if failing:
            again = con.sql(
                f"SELECT * EXCLUDE (__file, __file_row, __replay_row) REPLACE ({run} AS _run_id, "
                f"{stamp} AS _quarantined_at) FROM failing ORDER BY __replay_row"
            )
            context.lake.write_table(
                path, again.to_arrow_table(), mode="append", compression=job.compression
            )
            done = "quarantined the failing rows again"
        version = _current_version(context, job)
        if accepted:
            version = _add_rows(con, context, job)
            done += f" and added {accepted} row(s) to `{job.dataset}` (version {version})"
        ledger = con.sql(
            "SELECT o.__file AS _file, o.__file_row AS _file_row, "
            f"{run} AS _replay_id, {stamp} AS _replayed_at, CASE "
            "WHEN f.__replay_row IS NOT NULL THEN 'quarantined_again' "
            "WHEN a.__replay_row IS NOT NULL THEN 'accepted' ELSE 'dropped' END AS _outcome, "
            "f._reason AS _reason FROM open_rows o LEFT JOIN failing f USING (__replay_row) "
            "LEFT JOIN accepted a USING (__replay_row) ORDER BY o.__replay_row"
        )
        context.lake.write_table(path / LEDGER_FOLDER, ledger.to_arrow_table(), mode="append")
    except DeltaError as error:
        raise ReplayWriteError(
            f"Replay `{context.run_id}` of `{job.dataset}` failed while writing ({error}); it "
            f"{done}, but the rows were not marked as replayed, so the next replay takes them "
            "again. Check the tables before replaying."
        ) from error
    return ReplaySummary(
        dataset=job.dataset,
        rows_replayed=replayed,
        rows_accepted=accepted,
        rows_still_failing=failing,
        table_version=version,
        rows_dropped=replayed - accepted - failing,
        replay_id=context.run_id,
    )


def _add_rows(
    con: duckdb.DuckDBPyConnection, context: JobContext, job: IngestJob | DatasetJob
) -> int:
    """Add the `accepted` rows to the dataset as ONE Delta commit; returns the new version."""
    select = "SELECT * EXCLUDE (__replay_row) FROM accepted ORDER BY __replay_row"
    reader: pa.RecordBatchReader = con.sql(select).to_arrow_reader(BATCH_ROWS)
    if isinstance(job, IngestJob):
        partition_by = ["dt"] if job.partition_mode == "date" else None
        return context.lake.write_table(
            context.lake.table_path(job.dataset),
            reader,
            mode="append",
            partition_by=partition_by,
            compression=job.compression,
        )
    path = table_path(context, job)
    if job.refresh_mode == "upsert" and context.lake.is_table(path):
        columns = [str(name) for name in reader.schema.names]
        return context.lake.merge_table(
            path, reader, keys=job.unique_key, columns=columns, compression=job.compression
        )
    return context.lake.write_table(
        path,
        reader,
        mode="append",
        partition_by=job.partitioning or None,
        compression=job.compression,
    )


def _current_version(context: JobContext, job: IngestJob | DatasetJob) -> int | None:
    """The dataset's table version, or None before its first commit."""
    path = (
        context.lake.table_path(job.dataset)
        if isinstance(job, IngestJob)
        else table_path(context, job)
    )
    return int(context.lake.open_table(path).version()) if context.lake.is_table(path) else None
