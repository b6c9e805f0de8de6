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

from lakebook.errors import RunNotFoundError
from lakebook.metadata.models import row_dict
from lakebook.runs import new_run_id
from lakebook.specs import json_schemas
from lakebook.workspace import JobKind, Workspace

logger = logging.getLogger(__name__)


class LakebookService:
    """One workspace, opened on first use, and the runs this server started."""

    def __init__(self, root: Path, max_concurrent_runs: int = 2) -> None:
        self.root = root
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
        workspace = self.workspace
        items = []
        for report in workspace.validate():
            last = workspace.runs(report.pipeline, limit=1)
            items.append(
                {
                    "name": report.pipeline,
                    "valid": not report.problems,
                    "problems": [problem.as_dict() for problem in report.problems],
                    "last_run": row_dict(last[0]) if last else None,
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

    def _run(self, name: str, run_id: str) -> None:
        try:
            self.workspace.run(name, trigger="api", run_id=run_id)
        except Exception as error:  # a background run has nobody else to tell
            logger.exception("lakebook run %s of %s failed to complete", run_id, name)
            self._launched[run_id].update(status="failed", error=f"{type(error).__name__}: {error}")
        else:
            self._launched.pop(run_id, None)

    def runs(self, pipeline: str, limit: int = 20) -> list[dict[str, Any]]:
        self.workspace.pipeline_file(pipeline)  # 404 for an unknown pipeline
        return [row_dict(run) for run in self.workspace.runs(pipeline, limit)]

    def run(self, run_id: str) -> dict[str, Any]:
        try:
            run, jobs = self.workspace.show(run_id)
        except RunNotFoundError:
            if run_id in self._launched:
                return {**self._launched[run_id], "jobs": []}
            raise
        return {**row_dict(run), "jobs": [row_dict(job) for job in jobs]}

    # data quality ---------------------------------------------------------------------------
    def incidents(self, status: str | None, dataset: str | None) -> list[dict[str, Any]]:
        return [item.as_dict() for item in self.workspace.incidents(status=status, dataset=dataset)]

    def incident(self, incident_id: int) -> dict[str, Any]:
        return self.workspace.incident(incident_id).as_dict()

    def acknowledge(self, incident_id: int, owner: str | None) -> dict[str, Any]:
        return self.workspace.acknowledge(incident_id, owner).as_dict()

    def resolve(self, incident_id: int, note: str | None) -> dict[str, Any]:
        return self.workspace.resolve(incident_id, note).as_dict()
