"""File sources on this machine: `local_path` (a file, a folder or a glob, relative to the pipeline
folder) and `file_upload` (relative to the workspace's `uploads/`). Both are confined to the
workspace and copied into Landing byte-for-byte.
"""

from __future__ import annotations

import glob as globbing
import shutil
from pathlib import Path

from lakebook.errors import IngestError
from lakebook.sources import Fetched, FetchRequest, LoadFile, ManifestEntry
from lakebook.storage import confine

DEFAULT_PATTERNS = {"csv": "*.csv", "json": "*.json", "jsonl": "*.jsonl", "parquet": "*.parquet"}


def fingerprint(path: Path) -> str:
    """Identity of a file's content as far as the manifest cares: path, size and mtime."""
    stat = path.stat()
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def landed_names(names: list[str]) -> list[str]:
    """File names for Landing; prefixed with their position when two sources share a name."""
    if len(set(names)) == len(names):
        return names
    return [f"{index:05d}_{name}" for index, name in enumerate(names)]


class LocalFileSource:
    """A file, a folder (with `filename_pattern`) or a glob under the workspace."""

    def base(self, request: FetchRequest) -> Path:
        """Folder relative paths start from."""
        return request.pipeline_dir

    def fetch(self, request: FetchRequest) -> Fetched:
        """Copy the matching files not loaded before into Landing."""
        job = request.job
        files = self.matching_files(request)
        entries = [ManifestEntry(str(path), fingerprint(path)) for path in files]
        fresh = [
            (path, entry)
            for path, entry in zip(files, entries, strict=True)
            if entry.fingerprint not in request.loaded
        ]
        names = landed_names([path.name for path, _ in fresh])
        loads = []
        for (path, _), name in zip(fresh, names, strict=True):
            target = request.landing / name
            shutil.copyfile(path, target)
            loads.append(LoadFile(target, job.format, str(path)))
        return Fetched(loads, [entry for _, entry in fresh])

    def matching_files(self, request: FetchRequest) -> list[Path]:
        """The source files, sorted; an error naming the path when there are none."""
        job = request.job
        assert job.config.file is not None and job.config.file.path  # the spec guarantees it
        raw = job.config.file.path
        base = self.base(request)
        if any(char in raw for char in "*?["):
            matches = sorted(globbing.glob(str(base / raw), recursive=True))
            files = [confine(request.workspace, match, "source path") for match in matches]
            files = [path for path in files if path.is_file()]
        else:
            target = confine(request.workspace, base / raw, "source path")
            if target.is_dir():
                pattern = job.filename_pattern or DEFAULT_PATTERNS[job.format]
                files = sorted(path for path in target.glob(pattern) if path.is_file())
            elif target.is_file():
                files = [target]
            else:
                raise IngestError(
                    f"Job `{job.name}`: source `{raw}` does not exist (looked at `{target}`). "
                    f"Check `config.file.path`; relative paths start at `{base}`."
                )
            if job.filename_pattern and not target.is_dir():
                files = [path for path in files if path.match(job.filename_pattern)]
        if job.filename_pattern and any(char in raw for char in "*?["):
            files = [path for path in files if path.match(job.filename_pattern)]
        if not files:
            pattern = (
                f" with filename_pattern `{job.filename_pattern}`" if job.filename_pattern else ""
            )
            raise IngestError(
                f"Job `{job.name}`: no files match `{raw}`{pattern}. "
                "Put the source files there or fix the path."
            )
        return files


class UploadedFileSource(LocalFileSource):
    """A file uploaded into the workspace's `uploads/` folder."""

    def base(self, request: FetchRequest) -> Path:
        """Uploads live in `<workspace>/uploads/`."""
        return confine(request.workspace, "uploads", "uploads folder")
