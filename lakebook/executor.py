"""Executors run ONE job notebook with papermill and hand back what happened.

`local` runs kernels on this machine. The executor is chosen by name (`c.Lakebook.executor`) from
`EXECUTORS`, so other back ends plug in without touching the runner.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import papermill
import zmq
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from papermill.exceptions import PapermillExecutionError
from traitlets import CaselessStrEnum

from lakebook.errors import LakebookError
from lakebook.results import JobResult, read_result
from lakebook.specs import DatasetJob, IngestJob

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"
SOURCE_TEMPLATES = Path(__file__).parent.parent / "templates"
TEMPLATE_FOR_KIND = {
    "ingest": "ingest.ipynb",
    "sql": "sql_dataset.ipynb",
    "scd2_dimension": "scd2_dimension.ipynb",
    "conform_sources": "conform_sources.ipynb",
    "metrics_aggregate": "metrics_aggregate.ipynb",
    "snapshot": "snapshot.ipynb",
    "ml_training_set": "ml_training_set.ipynb",
    "vector_index": "vector_index.ipynb",
    "export_feed": "export_feed.ipynb",
}


def templates_dir() -> Path:
    """Folder of the shipped templates: inside the installed package, or the source checkout's."""
    return PACKAGE_TEMPLATES if PACKAGE_TEMPLATES.is_dir() else SOURCE_TEMPLATES


def ejected_path(job: IngestJob | DatasetJob, pipeline_dir: Path) -> Path:
    """Where a pipeline's own copy of a job's notebook lives (it may not exist)."""
    return pipeline_dir / "notebooks" / f"{job.name}.ipynb"


def template_for(job: IngestJob | DatasetJob, pipeline_dir: Path) -> Path:
    """The notebook a job runs: its ejected copy if the pipeline has one, else its template."""
    ejected = ejected_path(job, pipeline_dir)
    if ejected.is_file():
        return ejected
    kind = "ingest" if isinstance(job, IngestJob) else job.transform_type
    return templates_dir() / TEMPLATE_FOR_KIND[kind]


# `name: type = default  # comment`, the form of a parameters cell's lines
PARAMETER_LINE = re.compile(r"^(?P<name>\w+)(?P<annotation>\s*:[^=]+?)?\s*=\s*(?P<rest>.*)$")


def with_parameter_defaults(notebook: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """A copy of a notebook whose `parameters` cell defaults are `parameters` (each line keeps its
    annotation and comment), so it runs as that job when opened in JupyterLab."""
    copy: dict[str, Any] = json.loads(json.dumps(notebook))
    cell = next(
        (c for c in copy["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])), None
    )
    if cell is None:
        raise LakebookError(
            "The job's template has no cell tagged `parameters`; tag its first code cell "
            "`parameters` so papermill and JupyterLab know where the job's parameters are."
        )
    source = cell["source"]
    lines = ("".join(source) if isinstance(source, list) else str(source)).split("\n")
    cell["source"] = "\n".join(_with_default(line, parameters) for line in lines)
    return copy


def _with_default(line: str, parameters: dict[str, Any]) -> str:
    match = PARAMETER_LINE.match(line)
    if match is None or match["name"] not in parameters:
        return line
    comment = match["rest"].partition("  # ")[2]
    annotation = (match["annotation"] or "").strip()
    head = f"{match['name']}: {annotation.lstrip(':').strip()}" if annotation else match["name"]
    value = f"{head} = {parameters[match['name']]!r}"
    return f"{value}  # {comment}" if comment else value


def eject_notebook(
    job: IngestJob | DatasetJob, pipeline_dir: Path, parameters: dict[str, Any]
) -> tuple[Path, bool]:
    """Give the pipeline its own copy of the job's notebook (the runner uses it from then on),
    made from the job's template with `parameters` as defaults. Returns (path, created); an
    existing copy is left as it is."""
    target = ejected_path(job, pipeline_dir)
    if target.is_file():
        return target, False
    notebook = json.loads(template_for(job, pipeline_dir).read_text(encoding="utf-8"))
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_text(
        json.dumps(with_parameter_defaults(notebook, parameters), indent=1) + "\n",
        encoding="utf-8",
    )
    temp.replace(target)
    return target, True


@dataclass
class JobRequest:
    """One job to execute: the notebook, where its record goes and its papermill parameters."""

    job: str
    notebook: Path
    output: Path
    parameters: dict[str, Any]
    cwd: Path
    kernel_name: str


@dataclass
class JobOutcome:
    """What an executor reports back for one job."""

    job: str
    succeeded: bool
    result: JobResult | None
    error: str | None
    started: float
    ended: float


class Executor(Protocol):
    """Runs one job notebook to completion (blocking); safe to call from several threads."""

    def execute(self, request: JobRequest) -> JobOutcome:
        """Execute the job's notebook and read its result."""
        ...


class PrivateSocketKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel talks over Unix sockets in a private folder.

    Parallel launches over TCP race for ports ("Address already in use"), across processes too;
    private IPC sockets cannot collide, and nothing travels unencrypted over TCP.
    """

    transport = CaselessStrEnum(("tcp", "ipc"), default_value="ipc", config=True)
    _socket_dir: str | None = None

    def _ip_default(self) -> str:
        self._socket_dir = tempfile.mkdtemp(prefix="lakebook-kernel-")
        return os.path.join(self._socket_dir, "ipc")

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)


KERNEL_START_ERRORS = (RuntimeError, TimeoutError, zmq.ZMQError)
KERNEL_START_ATTEMPTS = 3


class LocalExecutor:
    """Runs the notebook in a kernel on this machine through papermill."""

    def execute(self, request: JobRequest) -> JobOutcome:
        """Execute with papermill; a failed notebook is still written with the error marked."""
        started = time.time()
        error: str | None = None
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            try:
                papermill.execute_notebook(
                    str(request.notebook),
                    str(request.output),
                    parameters=request.parameters,
                    kernel_name=request.kernel_name,
                    cwd=str(request.cwd),
                    progress_bar=False,
                    log_output=False,
                    kernel_manager_class=PrivateSocketKernelManager,
                )
                error = None
                break
            except PapermillExecutionError as failure:
                error = _describe_failure(failure)
                break
            except NoSuchKernel:
                error = (
                    f"no Jupyter kernel named `{request.kernel_name}` is installed; set "
                    "`c.Lakebook.kernel_name` to one that `jupyter kernelspec list` shows"
                )
                break
            except KERNEL_START_ERRORS as failure:
                # Raised before any cell ran (papermill reports cell errors separately), so
                # starting again cannot run a job twice.
                error = f"the kernel `{request.kernel_name}` failed to start: {failure}"
                if attempt < KERNEL_START_ATTEMPTS:
                    time.sleep(attempt)
        result = read_result(str(request.output)) if request.output.exists() else None
        if error is None and result is None:
            error = "the notebook finished without emitting a result (`runtime.emit_result`)"
        return JobOutcome(request.job, error is None, result, error, started, time.time())


def _describe_failure(failure: PapermillExecutionError) -> str:
    """The failing cell and the error's last line, as a person wants to read it."""
    evalue = str(failure.evalue).strip()
    return f"cell {failure.exec_count}: {failure.ename}: {evalue}"


EXECUTORS: dict[str, type[LocalExecutor]] = {"local": LocalExecutor}


def make_executor(name: str) -> Executor:
    """The executor registered under `name`."""
    try:
        return EXECUTORS[name]()
    except KeyError:
        known = ", ".join(f"`{key}`" for key in EXECUTORS)
        raise LakebookError(
            f"Executor `{name}` is not known. Set `c.Lakebook.executor` to one of: {known}."
        ) from None


def job_parameters(
    job: IngestJob | DatasetJob,
    *,
    workspace: Path,
    pipeline: str,
    run_id: str,
    run_date: str,
    watermark: str | None,
) -> dict[str, Any]:
    """Papermill parameters for a job. Never secrets: they are written into the record."""
    parameters: dict[str, Any] = {
        "workspace": str(workspace),
        "pipeline": pipeline,
        "run_id": run_id,
        "run_date": run_date,
        "job_spec": json.dumps(job.model_dump(mode="json"), sort_keys=True),
    }
    if isinstance(job, IngestJob):
        parameters["watermark"] = watermark or ""
    return parameters
