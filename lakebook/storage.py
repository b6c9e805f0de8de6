"""The lake on disk: where datasets, Landing files and quarantine tables live, and how they are written.

Datasets are Delta Lake tables addressed `<layer>.<name>`. Every write is one Delta commit, so a failed
or killed job leaves the previous version intact. Paths from users are confined to the lake.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pyarrow as pa
from deltalake import DeltaTable, WriterProperties, write_deltalake

from lakebook.errors import DatasetNotFoundError, PathOutsideWorkspaceError

LAYERS = ("bronze", "silver", "gold")
DATASET_PATTERN = re.compile(r"^(bronze|silver|gold)\.([a-z][a-z0-9_]*)$")
COMPRESSION_CODECS: dict[str, Literal["SNAPPY", "ZSTD", "GZIP", "UNCOMPRESSED"]] = {
    "snappy": "SNAPPY",
    "zstd": "ZSTD",
    "gzip": "GZIP",
    "none": "UNCOMPRESSED",
}

WriteMode = Literal["append", "overwrite"]


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
        """Folder of the Delta table for `<layer>.<name>`."""
        layer, name = split_dataset(dataset)
        return self.root / layer / name

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
        return found

    def write_table(
        self,
        path: Path,
        data: pa.Table | pa.RecordBatchReader,
        *,
        mode: WriteMode,
        partition_by: list[str] | None = None,
        compression: str = "snappy",
    ) -> int:
        """Write `data` as ONE Delta commit at `path`; returns the new table version."""
        path.mkdir(parents=True, exist_ok=True)
        write_deltalake(
            str(path),
            data,
            mode=mode,
            partition_by=partition_by or None,
            schema_mode="merge" if mode == "append" else "overwrite",
            writer_properties=WriterProperties(compression=COMPRESSION_CODECS[compression]),
        )
        return int(DeltaTable(str(path)).version())
