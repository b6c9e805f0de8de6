"""Sources: where an ingest job's data comes from. Each source lands what it fetched in this run's
Landing folder and says which landed files to load; the ingest loader does the rest (parse, type,
quarantine, de-duplicate, one Bronze commit).

Sources are found by `source_type` in `SOURCES` ("module:Class", imported on first use so a job
only imports the client libraries it needs); a new kind plugs in without touching the loader.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from lakebook.specs import IngestJob

LoadFormat = Literal["csv", "json", "jsonl", "parquet"]


@dataclass(frozen=True)
class LoadFile:
    """A landed file the loader reads into Bronze."""

    path: Path  # inside this run's Landing folder
    format: LoadFormat
    source_uri: str  # where it came from: a file path, s3://…, a table, an API page URL


@dataclass(frozen=True)
class ManifestEntry:
    """One source object loaded by a run; its fingerprint changes when the object changes."""

    uri: str
    fingerprint: str


@dataclass
class Fetched:
    """What a source fetched in one run."""

    files: list[LoadFile]
    manifest: list[ManifestEntry] = field(default_factory=list)
    # True when the source itself applied `watermark_column >= lower_bound` (databases, APIs).
    watermark_pushed_down: bool = False


@dataclass
class FetchRequest:
    """Everything a source needs for one run."""

    job: IngestJob
    landing: Path  # this run's Landing folder; it exists and is empty
    workspace: Path
    pipeline_dir: Path
    lower_bound: str | None  # incremental runs: fetch rows whose watermark is >= this
    loaded: frozenset[str]  # fingerprints already loaded by earlier runs (skip those objects)
    connection: Callable[[str], dict[str, Any]]  # named connection, secrets resolved


class Source(Protocol):
    """Fetches a job's data into Landing."""

    def fetch(self, request: FetchRequest) -> Fetched:
        """Land this run's data and describe it."""
        ...


SOURCES: dict[str, str] = {
    "local_path": "lakebook.sources.files:LocalFileSource",
    "file_upload": "lakebook.sources.files:UploadedFileSource",
    "s3": "lakebook.sources.s3:S3Source",
    "database": "lakebook.sources.database:DatabaseSource",
    "api": "lakebook.sources.api:ApiSource",
}


def source_for(job: IngestJob) -> Source:
    """The source that handles the job's `source_type`."""
    module_name, class_name = SOURCES[job.source_type].split(":")
    source_class = getattr(importlib.import_module(module_name), class_name)
    source: Source = source_class()
    return source
