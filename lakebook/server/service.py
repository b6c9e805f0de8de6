"""What the API handlers call: the workspace facade's operations as JSON-ready values.

No HTTP here. Runs started through the API execute on a small thread pool; their id is chosen up
front so the request can answer at once (202) and the client polls `runs/{id}`.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lakebook.errors import LakebookError, RunNotFoundError
from lakebook.metadata import JobRun
from lakebook.metadata.models import row_dict
from lakebook.runs import new_run_id
from lakebook.specs import json_schemas
from lakebook.workspace import JobKind, Workspace

logger = logging.getLogger(__name__)


class LakebookService:
    """One workspace, opened on first use, and the runs this server started."""

    def __init__(
        self, root: Path, max_concurrent_runs: int = 2, contents_root: Path | None = None
    ) -> None:
        """`contents_root` is the folder Jupyter's contents API serves (its `root_dir`): notebook
        paths in answers are relative to it; default `root`."""
        self.root = root
        self.contents_root = (contents_root or root).expanduser().resolve()
        self._workspace: Workspace | None = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_concurrent_runs, thread_name_prefix="lakebook-run")
        # runs started here that the metadata DB may not show yet (or that failed to start)
        self._launched: dict[str, dict[str, Any]] = {}

    @property
    def workspace(self) -> Workspace:
        with self._lock:
            if self._workspace is None:
                workspace = Workspace.open(self.root)
                workspace.store  # noqa: B018 - open (and migrate) the DB once, in one thread
                self._workspace = workspace
            return self._workspace

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # pipelines ------------------------------------------------------------------------------
    def pipelines(self) -> list[dict[str, Any]]:
        """Every pipeline for a sidebar: validity, description, job counts and last run (the last
        runs come from one query)."""
        workspace = self.workspace
        last_runs = workspace.last_runs()
        items = []
        for report in workspace.validate():
            if report.spec is not None:
                description = report.spec.description
                counts = (len(report.spec.ingest_jobs), len(report.spec.dataset_jobs))
            else:
                raw = workspace.raw_pipeline(report.pipeline)
                description = str(raw.get("description") or "")
                counts = (_count(raw.get("ingest_jobs")), _count(raw.get("dataset_jobs")))
            last = last_runs.get(report.pipeline)
            items.append(
                {
                    "name": report.pipeline,
                    "description": description,
                    "valid": not report.problems,
                    "problems": [problem.as_dict() for problem in report.problems],
                    "ingest_jobs": counts[0],
                    "dataset_jobs": counts[1],
                    "last_run": row_dict(last) if last else None,
                }
            )
        return items

    def pipeline(self, name: str) -> dict[str, Any]:
        return self.workspace.pipeline_document(name)

    def create_pipeline(self, data: Any) -> dict[str, Any]:
        spec = self.workspace.create_pipeline(data)
        return self.workspace.pipeline_document(spec.name)

    def update_pipeline(self, name: str, data: Any) -> dict[str, Any]:
        self.workspace.update_pipeline(name, data)
        return self.workspace.pipeline_document(name)

    def delete_pipeline(self, name: str) -> None:
        self.workspace.delete_pipeline(name)

    def save_job(
        self, pipeline: str, kind: JobKind, job: str, data: Any, *, create: bool
    ) -> dict[str, Any]:
        self.workspace.save_job(pipeline, kind, job, data, create=create)
        document = self.workspace.pipeline_document(pipeline)
        return next(item for item in document.get(kind, []) if item["name"] == job)

    def delete_job(self, pipeline: str, kind: JobKind, job: str) -> None:
        self.workspace.delete_job(pipeline, kind, job)

    def rules(self, pipeline: str, kind: JobKind, job: str) -> list[dict[str, Any]]:
        return self.workspace.rules(pipeline, kind, job)

    def save_rule(
        self, pipeline: str, kind: JobKind, job: str, rule: str, data: Any, *, create: bool
    ) -> dict[str, Any]:
        return self.workspace.save_rule(pipeline, kind, job, rule, data, create=create)

    def delete_rule(self, pipeline: str, kind: JobKind, job: str, rule: str) -> None:
        self.workspace.delete_rule(pipeline, kind, job, rule)

    def eject_notebook(self, pipeline: str, kind: JobKind, job: str) -> tuple[dict[str, Any], bool]:
        """({"path": relative to the contents root}, created). The notebook must be inside the
        contents root, or JupyterLab could not open it."""
        target = self.workspace.notebook_path(pipeline, kind, job)  # 404 for an unknown job
        if self.contents_path(target) is None:
            raise LakebookError(
                f"The workspace `{self.workspace.root}` is not inside the Jupyter server's "
                f"root_dir `{self.contents_root}`, so JupyterLab cannot open its notebooks. Start "
                "the server in the workspace or a folder above it."
            )
        path, created = self.workspace.eject_notebook(pipeline, kind, job)
        return {"path": self.contents_path(path)}, created

    def contents_path(self, path: str | Path | None) -> str | None:
        """`path` relative to the contents root, with `/`; None when it is not inside it."""
        if not path:
            return None
        absolute = Path(path).resolve()
        if not absolute.is_relative_to(self.contents_root):
            return None
        return absolute.relative_to(self.contents_root).as_posix()

    def connections(self) -> list[dict[str, Any]]:
        """The workspace's named connections for pickers: names and types, never settings."""
        configured = dict(self.workspace.settings.connections)
        return [
            {"name": name, "type": str(dict(settings).get("type") or "") or None}
            for name, settings in sorted(configured.items())
        ]

    def schemas(self) -> dict[str, dict[str, Any]]:
        return json_schemas()

    # runs -----------------------------------------------------------------------------------
    def start_run(self, name: str) -> dict[str, Any]:
        """Check the pipeline and its graph now (errors answer the request), then run it."""
        workspace = self.workspace
        workspace.dag(workspace.pipeline(name))
        run_id = new_run_id()
        self._launched[run_id] = {"id": run_id, "pipeline": name, "status": "pending"}
        self._pool.submit(self._run, name, run_id)
        return {"id": run_id, "pipeline": name, "status": "pending"}

    def start_job_run(self, name: str, kind: JobKind, job: str) -> dict[str, Any]:
        """Check the job and that its inputs are in the lake now, then run it alone."""
        workspace = self.workspace
        workspace.job(name, kind, job)
        spec = workspace.pipeline(name)
        workspace.dag(spec)
        workspace.check_only(spec, [job])
        run_id = new_run_id()
        self._launched[run_id] = {"id": run_id, "pipeline": name, "job": job, "status": "pending"}
        self._pool.submit(self._run, name, run_id, [job])
        return {"id": run_id, "pipeline": name, "job": job, "status": "pending"}

    def _run(self, name: str, run_id: str, only: list[str] | None = None) -> None:
        try:
            self.workspace.run(name, trigger="api", run_id=run_id, only=only)
        except Exception as error:  # a background run has nobody else to tell
            logger.exception("lakebook run %s of %s failed to complete", run_id, name)
            self._launched[run_id].update(status="failed", error=f"{type(error).__name__}: {error}")
        else:
            self._launched.pop(run_id, None)

    def runs(self, pipeline: str, limit: int = 20) -> list[dict[str, Any]]:
        """Recent runs, each with `jobs_run`: the jobs it ran (fewer than the pipeline's for a
        single-job run)."""
        self.workspace.pipeline_file(pipeline)  # 404 for an unknown pipeline
        runs = self.workspace.runs(pipeline, limit)
        names = self.workspace.store.job_names([run.id for run in runs])
        return [{**row_dict(run), "jobs_run": names[run.id]} for run in runs]

    def run(self, run_id: str) -> dict[str, Any]:
        try:
            run, jobs = self.workspace.show(run_id)
        except RunNotFoundError:
            if run_id in self._launched:
                return {**self._launched[run_id], "jobs": []}
            raise
        return {**row_dict(run), "jobs": [self._job_run(job) for job in jobs]}

    def job_runs(self, pipeline: str, kind: JobKind, job: str, limit: int) -> list[dict[str, Any]]:
        return [self._job_run(row) for row in self.workspace.job_runs(pipeline, kind, job, limit)]

    def _job_run(self, row: JobRun) -> dict[str, Any]:
        """A job run as JSON, its archived notebook relative to the contents root (or None)."""
        data = row_dict(row)
        data["notebook_path"] = self.contents_path(row.notebook_path)
        return data

    # data quality ---------------------------------------------------------------------------
    def incidents(self, **filters: str | None) -> list[dict[str, Any]]:
        """Incidents by `status`, `dataset`, `pipeline`, `job`, `run_id` (None: any)."""
        return [item.as_dict() for item in self.workspace.incidents(**filters)]

    def incident(self, incident_id: int) -> dict[str, Any]:
        return self.workspace.incident(incident_id).as_dict()

    def acknowledge(self, incident_id: int, owner: str | None) -> dict[str, Any]:
        return self.workspace.acknowledge(incident_id, owner).as_dict()

    def resolve(self, incident_id: int, note: str | None) -> dict[str, Any]:
        return self.workspace.resolve(incident_id, note).as_dict()


def _count(value: Any) -> int:
    """How many jobs a raw (unvalidated) list holds."""
    return len(value) if isinstance(value, list) else 0
