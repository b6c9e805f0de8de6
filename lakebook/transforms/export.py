"""`transform_type: export_feed`: the source as is, plus files for consumers.

The Delta table holds `export.source` unchanged. After it is committed, the same rows are written
to `<lake>/exports/<export.path>/` as `<run_id>.<ext>` (one file per run) and `latest.<ext>` (a
copy consumers can always read): `csv` (a header row, comma-separated), `parquet`, or `json`
(JSON Lines: one object per line, as Spark and BigQuery write it; dates and times in ISO 8601).
Each file is written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import base64
import json
import os
import posixpath
import re
import tempfile
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet

from lakebook.errors import TransformError
from lakebook.specs import DatasetJob, ExportConfig
from lakebook.sql import quote_identifier as q
from lakebook.storage import confine
from lakebook.transforms import RunInfo
from lakebook.transforms.columns import require_input

if TYPE_CHECKING:
    from lakebook.runtime import JobContext

EXPORTS_FOLDER = "exports"
BATCH_ROWS = 64 * 1024
EXTENSIONS = {"csv": "csv", "parquet": "parquet", "json": "json"}


def build(con: duckdb.DuckDBPyConnection, job: DatasetJob, run: RunInfo) -> None:
    """Copy `export.source` into the table `output`."""
    config = job.export
    assert config is not None  # the spec requires it for export_feed jobs
    require_input(job, config.source, "export.source")
    _check_path(job, config)
    con.execute(f"CREATE TABLE output AS SELECT * FROM {q(config.source)}")
    if config.file_format == "csv":
        schema = con.sql("SELECT * FROM output LIMIT 0").to_arrow_table().schema
        _check_csv_columns(job, schema)


def after_write(context: JobContext, job: DatasetJob, con: duckdb.DuckDBPyConnection) -> None:
    """Write the committed rows as this run's file and as `latest.<ext>`."""
    config = job.export
    assert config is not None
    folder = export_folder(context, job, config)
    folder.mkdir(parents=True, exist_ok=True)
    extension = EXTENSIONS[config.file_format]
    run_file = folder / f"{_file_stem(context.run_id)}.{extension}"
    reader = con.sql("SELECT * FROM output").to_arrow_reader(BATCH_ROWS)
    _atomically(run_file, lambda temp: WRITERS[config.file_format](reader, temp, job))
    latest = folder / f"latest.{extension}"
    _atomically(latest, lambda temp: temp.write_bytes(run_file.read_bytes()))


def export_folder(context: JobContext, job: DatasetJob, config: ExportConfig) -> Path:
    """`<lake>/exports/<export.path>`; an error for a path outside it."""
    _check_path(job, config)
    return confine(context.lake.path(EXPORTS_FOLDER), config.path, "`export.path`")


def _check_path(job: DatasetJob, config: ExportConfig) -> None:
    """Before anything is committed: the path must name a folder inside `exports/`."""
    normalized = posixpath.normpath(config.path.replace("\\", "/"))
    if normalized in ("", ".") or normalized.startswith(("/", "..")):
        raise TransformError(
            f"Job `{job.name}`: `export.path` `{config.path}` does not name a folder inside the "
            f"lake's `{EXPORTS_FOLDER}/`. Use a relative path such as `finance/daily_revenue`."
        )


def _file_stem(run_id: str) -> str:
    """The run id as a safe file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id) or "run"


def _atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder and rename it into place."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=path.suffix)
    os.close(handle)
    temp = Path(name)
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _check_csv_columns(job: DatasetJob, schema: pa.Schema) -> None:
    """CSV holds plain values only: an error naming nested or binary columns."""
    nested = [
        field.name
        for field in schema
        if pa.types.is_nested(field.type) or pa.types.is_binary(field.type)
    ]
    if nested:
        raise TransformError(
            f"Job `{job.name}`: CSV cannot hold the nested or binary column(s) "
            f"{', '.join(f'`{name}`' for name in nested)}. Set `export.file_format` to parquet "
            "or json, or leave them out of the source."
        )


def _write_csv(reader: pa.RecordBatchReader, path: Path, job: DatasetJob) -> None:
    with pyarrow.csv.CSVWriter(str(path), reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)


def _write_parquet(reader: pa.RecordBatchReader, path: Path, job: DatasetJob) -> None:
    with pyarrow.parquet.ParquetWriter(
        str(path), reader.schema, compression=job.compression
    ) as writer:
        for batch in reader:
            writer.write_batch(batch)


def _write_json(reader: pa.RecordBatchReader, path: Path, job: DatasetJob) -> None:
    with path.open("w", encoding="utf-8") as file:
        for batch in reader:
            for row in batch.to_pylist():
                file.write(json.dumps(row, default=_json_value, ensure_ascii=False))
                file.write("\n")


def _json_value(value: object) -> object:
    """JSON for the values `json` cannot write itself."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


WRITERS: dict[str, Callable[[pa.RecordBatchReader, Path, DatasetJob], None]] = {
    "csv": _write_csv,
    "parquet": _write_parquet,
    "json": _write_json,
}
