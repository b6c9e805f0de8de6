"""The lake on disk: where datasets, Landing files and quarantine tables live, and how they are written.

Datasets are Delta Lake tables addressed `<layer>.<name>`. Every write is one Delta commit, so a failed
or killed job leaves the previous version intact. Paths from users are confined to the lake.
A per-dataset write lock (`Lake.write_lock`) makes read-modify-write jobs (SCD2, upsert) atomic with
respect to each other: two runs never write one dataset at the same time.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from deltalake import DeltaTable, WriterProperties, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from lakebook.errors import DatasetNotFoundError, LakebookError, PathOutsideWorkspaceError
from lakebook.sql import quote_identifier as q

log = logging.getLogger(__name__)

LAYERS = ("bronze", "silver", "gold")
LOCATIONS_DIR = "_locations"  # datasets written to an `output_path` are registered here
DATASET_PATTERN = re.compile(r"^(bronze|silver|gold)\.([a-z][a-z0-9_]*)$")
COMPRESSION_CODECS: dict[str, Literal["SNAPPY", "ZSTD", "GZIP", "UNCOMPRESSED"]] = {
    "snappy": "SNAPPY",
    "zstd": "ZSTD",
    "gzip": "GZIP",
    "none": "UNCOMPRESSED",
}

WriteMode = Literal["append", "overwrite"]
LOCKS_DIR = "_locks"
LOCK_POLL_SECONDS = 0.05


class DatasetLockTimeoutError(LakebookError):
    """Another run held a dataset's write lock for longer than the configured timeout."""

    def __init__(self, dataset: str, holder: dict[str, Any] | None, waited: float) -> None:
        self.dataset = dataset
        self.holder = holder
        self.waited = waited
        super().__init__(
            f"Dataset `{dataset}` is being written by another run ({describe_holder(holder)}); "
            f"gave up after waiting {waited:g} s. Let that run finish and run again, or raise "
            "`c.Lakebook.lock_timeout_seconds` in jupyter_config.py."
        )


def describe_holder(holder: dict[str, Any] | None) -> str:
    """`run r1, job dim_customer, pid 123 on host h since …` from a lock file's record."""
    if not holder:
        return "holder unknown"
    parts = [f"{key} {holder[key]}" for key in ("run", "job") if holder.get(key)]
    if holder.get("pid"):
        parts.append(f"pid {holder['pid']} on host {holder.get('host', '?')}")
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    return ", ".join(parts) or "holder unknown"


def confine(base: Path, relative: str | Path, what: str = "path") -> Path:
    """`relative` resolved against `base`; an error when it escapes `base`."""
    base = base.resolve()
    candidate = (base / relative).resolve()
    if candidate != base and base not in candidate.parents:
        raise PathOutsideWorkspaceError(
            f"The {what} `{relative}` points outside `{base}`. "
            "Use a path inside the workspace (relative paths are resolved from it)."
        )
    return candidate


def split_dataset(dataset: str) -> tuple[str, str]:
    """("bronze", "orders") from "bronze.orders"; a helpful error for a bad address."""
    match = DATASET_PATTERN.match(dataset)
    if not match:
        raise DatasetNotFoundError(
            f"`{dataset}` is not a dataset address. Use `<layer>.<name>` with layer "
            f"{', '.join(LAYERS)}, e.g. `bronze.orders`."
        )
    return match.group(1), match.group(2)


class Lake:
    """A lake rooted at a local folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def table_path(self, dataset: str) -> Path:
        """Folder of the Delta table for `<layer>.<name>`: `<layer>/<name>`, or the `output_path`
        the dataset was registered at."""
        layer, name = split_dataset(dataset)
        pointer = self.root / LOCATIONS_DIR / f"{layer}.{name}.json"
        if pointer.is_file():
            location = json.loads(pointer.read_text(encoding="utf-8"))["path"]
            return confine(self.root, location, "output_path")
        return self.root / layer / name

    def register_location(self, dataset: str, path: Path) -> None:
        """Record that `dataset` lives at `path` (a job's `output_path`), atomically."""
        layer, name = split_dataset(dataset)
        relative = confine(self.root, path, "output_path").relative_to(self.root)
        pointer = self.root / LOCATIONS_DIR / f"{layer}.{name}.json"
        pointer.parent.mkdir(parents=True, exist_ok=True)
        temporary = pointer.with_suffix(".tmp")
        temporary.write_text(json.dumps({"path": str(relative)}), encoding="utf-8")
        os.replace(temporary, pointer)

    def landing_dir(self, pipeline: str, job: str) -> Path:
        """Folder where a job's raw source files are kept byte-for-byte."""
        return self.root / "landing" / pipeline / job

    def path(self, relative: str, what: str = "lake path") -> Path:
        """A user-given lake-relative path, confined to the lake."""
        return confine(self.root, relative, what)

    def exists(self, dataset: str) -> bool:
        """True when the dataset's table has at least one commit."""
        return DeltaTable.is_deltatable(str(self.table_path(dataset)))

    def is_table(self, path: Path) -> bool:
        """True when a Delta table exists at `path`."""
        return DeltaTable.is_deltatable(str(path))

    def open_table(self, path: Path) -> DeltaTable:
        """The Delta table at `path` (inside the lake)."""
        return DeltaTable(str(confine(self.root, path, "table path")))

    def table(self, dataset: str) -> DeltaTable:
        """The Delta table behind a dataset."""
        path = self.table_path(dataset)
        if not DeltaTable.is_deltatable(str(path)):
            known = ", ".join(f"`{name}`" for name in self.datasets()) or "none yet"
            raise DatasetNotFoundError(
                f"Dataset `{dataset}` does not exist in the lake. Known datasets: {known}. "
                "Run the pipeline that produces it first."
            )
        return DeltaTable(str(path))

    def read(self, dataset: str, version: int | None = None) -> pa.Table:
        """The dataset (optionally at an earlier version) as an Arrow table."""
        table = self.table(dataset)
        if version is not None:
            table.load_as_version(version)
        return table.to_pyarrow_table()

    def datasets(self) -> list[str]:
        """Every dataset in the lake, as `<layer>.<name>`."""
        found = []
        for layer in LAYERS:
            layer_dir = self.root / layer
            if not layer_dir.is_dir():
                continue
            for child in sorted(layer_dir.iterdir()):
                if (child / "_delta_log").is_dir():
                    found.append(f"{layer}.{child.name}")
        locations = self.root / LOCATIONS_DIR
        if locations.is_dir():
            for pointer in sorted(locations.glob("*.json")):
                dataset = pointer.name.removesuffix(".json")
                if dataset not in found and self.exists(dataset):
                    found.append(dataset)
        return sorted(found)

    def lock_path(self, dataset: str) -> Path:
        """The lock file of a dataset: `<lake>/_locks/<layer>.<name>.lock`."""
        layer, name = split_dataset(dataset)
        return self.root / LOCKS_DIR / f"{layer}.{name}.lock"

    def lock_holder(self, dataset: str) -> dict[str, Any] | None:
        """Who holds the dataset's write lock, as recorded in the lock file (None when free)."""
        try:
            text = self.lock_path(dataset).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(text) if text.strip() else None
        except json.JSONDecodeError:  # the holder is still writing its record
            return None
        return holder if isinstance(holder, dict) else None

    @contextmanager
    def write_lock(
        self, dataset: str, *, timeout: float, run: str = "", job: str = ""
    ) -> Iterator[None]:
        """Hold the dataset's exclusive write lock; wait up to `timeout` seconds for it.

        An OS file lock (`flock`), so a crashed or killed holder releases it automatically. The
        holder's run, job and pid are recorded in the lock file for the message of a waiter that
        gives up (`DatasetLockTimeoutError`).
        """
        path = self.lock_path(dataset)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            started = time.monotonic()
            waiting_logged = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = time.monotonic() - started
                    if waited >= timeout:
                        raise DatasetLockTimeoutError(
                            dataset, self.lock_holder(dataset), round(waited, 1)
                        ) from None
                    if not waiting_logged:
                        log.info(
                            "Waiting for the write lock on `%s` (%s)",
                            dataset,
                            describe_holder(self.lock_holder(dataset)),
                        )
                        waiting_logged = True
                    time.sleep(min(LOCK_POLL_SECONDS, max(timeout - waited, 0.0)))
            record = {
                "run": run,
                "job": job,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def write_table(
        self,
        path: Path,
        data: pa.Table | pa.RecordBatchReader,
        *,
        mode: WriteMode,
        partition_by: list[str] | None = None,
        compression: str = "snappy",
        predicate: str | None = None,
    ) -> int:
        """Write `data` as ONE Delta commit at `path`; returns the new table version.

        With a `predicate` (overwrite only), only the rows matching it are replaced (Delta's
        replace-where); every row of `data` must match it.
        """
        path.mkdir(parents=True, exist_ok=True)
        properties = WriterProperties(compression=COMPRESSION_CODECS[compression])
        if mode == "append":
            if predicate is not None:
                raise ValueError("a predicate only applies to mode='overwrite'")
            write_deltalake(
                str(path),
                data,
                mode="append",
                partition_by=partition_by or None,
                schema_mode="merge",
                writer_properties=properties,
            )
        else:
            write_deltalake(
                str(path),
                data,
                mode="overwrite",
                partition_by=partition_by or None,
                # replace-where keeps the table's schema; a full overwrite may change it
                schema_mode=None if predicate is not None else "overwrite",
                predicate=predicate,
                writer_properties=properties,
            )
        return int(DeltaTable(str(path)).version())

    def merge_table(
        self,
        path: Path,
        data: pa.Table | pa.RecordBatchReader,
        *,
        keys: list[str],
        columns: list[str],
        compression: str = "snappy",
    ) -> int:
        """Upsert `data` (with `columns`) into the table at `path` by `keys`, as ONE Delta commit.

        Matched rows are updated only when a value differs, unmatched rows inserted, so merging
        data the table already holds commits nothing. Returns the table version after the merge.
        """
        table = self.open_table(path)
        table_columns = {field.name for field in table.schema().fields}
        condition = " AND ".join(f"target.{q(key)} = source.{q(key)}" for key in keys)
        merger = table.merge(
            data,
            condition,
            source_alias="source",
            target_alias="target",
            merge_schema=True,
            writer_properties=WriterProperties(compression=COMPRESSION_CODECS[compression]),
        )
        values = [column for column in columns if column not in keys]
        if any(column not in table_columns for column in values):
            merger = merger.when_matched_update_all()  # a new column: every row gains it
        elif values:
            changed = " OR ".join(  # parenthesised: DataFusion binds OR tighter here
                f"(target.{q(column)} IS DISTINCT FROM source.{q(column)})" for column in values
            )
            merger = merger.when_matched_update_all(predicate=changed)
        merger.when_not_matched_insert_all().execute()
        return int(DeltaTable(str(path)).version())


@dataclass(frozen=True)
class StagedFile:
    """A Parquet file written into a table's folder, not yet part of any Delta commit."""

    path: Path
    rows: int
    size: int
    null_counts: dict[str, int]


def commit_files(
    path: Path,
    files: list[StagedFile],
    schema: pa.Schema,
    *,
    mode: WriteMode,
    partition_by: list[str] | None,
    partition_values: dict[str, str],
) -> int:
    """Commit Parquet files already written under `path` as ONE Delta commit; the new version.

    Used where DuckDB writes the files itself (much faster, and memory stays flat); overwrite
    removes every earlier file from the table in the same commit.
    """
    now = int(time.time() * 1000)
    actions: list[AddAction | RemoveAction] = [
        AddAction(
            str(file.path.relative_to(path)),
            file.size,
            partition_values,
            now,
            True,
            json.dumps({"numRecords": file.rows, "nullCount": file.null_counts}),
        )
        for file in files
    ]
    delta_schema = DeltaSchema.from_arrow(schema)
    if DeltaTable.is_deltatable(str(path)):
        DeltaTable(str(path)).create_write_transaction(actions, mode, delta_schema, partition_by)
    else:
        adds = [action for action in actions if isinstance(action, AddAction)]
        create_table_with_add_actions(
            str(path), delta_schema, adds, mode="error", partition_by=partition_by
        )
    return int(DeltaTable(str(path)).version())


def same_schema(path: Path, schema: pa.Schema) -> bool:
    """True when the Delta table at `path` has exactly this Arrow schema (names and types)."""
    existing = DeltaTable(str(path)).schema().to_arrow()
    current = pa.schema(existing)
    return [(f.name, str(f.type)) for f in current] == [(f.name, str(f.type)) for f in schema]
