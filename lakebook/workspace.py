"""`Workspace`: the facade the CLI, the server extension and notebooks drive.

A workspace is a folder with `jupyter_config.py` and `pipelines/<name>/pipeline.yaml` files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import yaml

from lakebook.config import CONFIG_FILE, Lakebook, load_settings, metadata_url
from lakebook.dag import Dag
from lakebook.errors import (
    JobExistsError,
    JobNotFoundError,
    LakebookError,
    PipelineExistsError,
    PipelineNotFoundError,
    SpecProblem,
    SpecValidationError,
    WorkspaceNotFoundError,
)
from lakebook.executor import make_executor
from lakebook.metadata import (
    DQIncident,
    DQResult,
    JobRun,
    MetadataStore,
    PipelineRun,
    WatermarkEntry,
)
from lakebook.replay import ReplaySummary
from lakebook.runs import PipelineRunner, ProgressCallback, RunSummary
from lakebook.specs import (
    IngestJob,
    PipelineSpec,
    dump_pipeline,
    is_valid_name,
    load_pipeline_file,
    parse_pipeline,
)
from lakebook.storage import Lake, confine

DEFAULT_CONFIG = '''"""lakebook workspace settings, read by `lakebook` and by JupyterLab's server extension."""

c = get_config()  # noqa: F821

# Where the lake (Landing, Bronze, Silver, Gold) lives, relative to this folder.
c.Lakebook.lake_root = "lake"
# Metadata database; empty means SQLite at .lakebook/metadata.db.
c.Lakebook.metadata_url = ""
# How many job notebooks run at the same time.
c.Lakebook.max_parallel_jobs = 2
# Connections by name. Never put secrets here: name environment variables instead.
c.Lakebook.connections = {}
'''


JobKind = Literal["ingest_jobs", "dataset_jobs"]


@dataclass
class ValidationReport:
    """Problems found in one pipeline file (empty when it is valid)."""

    pipeline: str
    path: Path
    problems: list[SpecProblem]


def find_workspace(start: Path) -> Path:
    """The nearest folder at or above `start` that holds `jupyter_config.py`."""
    start = start.resolve()
    for folder in [start, *start.parents]:
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise WorkspaceNotFoundError(
        f"No lakebook workspace at or above `{start}` (no {CONFIG_FILE}). "
        "Create one with `lakebook init DIR`, or pass `--workspace DIR`."
    )


class Workspace:
    """A lakebook workspace: its settings, lake, metadata DB and pipelines."""

    def __init__(self, root: Path, settings: Lakebook) -> None:
        self.root = root.resolve()
        self.settings = settings
        self.lake = Lake(confine(self.root, settings.lake_root, "lake root"))
        self._store: MetadataStore | None = None

    @classmethod
    def open(cls, path: str | Path = ".") -> Workspace:
        """Open the workspace at or above `path`."""
        root = find_workspace(Path(path))
        return cls(root, load_settings(root))

    @classmethod
    def init(cls, path: str | Path) -> Workspace:
        """Scaffold a new workspace (config file, `pipelines/`, `lake/`) and open it."""
        root = Path(path).resolve()
        if (root / CONFIG_FILE).exists():
            raise LakebookError(f"`{root}` is already a workspace ({CONFIG_FILE} exists).")
        root.mkdir(parents=True, exist_ok=True)
        (root / CONFIG_FILE).write_text(DEFAULT_CONFIG, encoding="utf-8")
        for folder in ("pipelines", "lake", "uploads"):
            (root / folder).mkdir(exist_ok=True)
        (root / ".gitignore").write_text("lake/\nruns/\n.lakebook/\nuploads/\n", encoding="utf-8")
        return cls.open(root)

    # settings-derived places -----------------------------------------------------------------
    @property
    def metadata_url(self) -> str:
        """The metadata DB URL (SQLite in `.lakebook/` unless configured)."""
        return metadata_url(self.settings, self.root)

    @property
    def store(self) -> MetadataStore:
        """The metadata DB, opened (and migrated) on first use."""
        if self._store is None:
            self._store = MetadataStore(self.metadata_url)
        return self._store

    @property
    def runs_root(self) -> Path:
        """Folder of run records."""
        return confine(self.root, self.settings.runs_dir, "runs folder")

    # pipelines --------------------------------------------------------------------------------
    def pipeline_names(self) -> list[str]:
        """Names of the pipelines in `pipelines/`."""
        folder = self.root / "pipelines"
        if not folder.is_dir():
            return []
        return sorted(p.parent.name for p in folder.glob("*/pipeline.yaml"))

    def pipeline_file(self, name: str) -> Path:
        """Path of a pipeline's file; an error naming the known pipelines if absent."""
        path = confine(self.root / "pipelines", f"{name}/pipeline.yaml", "pipeline name")
        if not path.is_file():
            known = ", ".join(f"`{n}`" for n in self.pipeline_names()) or "none"
            raise PipelineNotFoundError(
                f"No pipeline `{name}` in `{self.root / 'pipelines'}`. Known pipelines: {known}."
            )
        return path

    def pipeline(self, name: str) -> PipelineSpec:
        """A validated pipeline spec."""
        return load_pipeline_file(self.pipeline_file(name))

    def dag(self, spec: PipelineSpec) -> Dag:
        """The validated job graph of a pipeline."""
        return Dag.from_pipeline(spec, existing=self.lake.datasets())

    def validate(self, names: list[str] | None = None) -> list[ValidationReport]:
        """Check pipeline files and their graphs; one report per pipeline, listing every problem."""
        reports = []
        for name in names or self.pipeline_names():
            path = self.root / "pipelines" / name / "pipeline.yaml"
            problems: list[SpecProblem] = []
            try:
                self.dag(self.pipeline(name))
            except SpecValidationError as error:
                problems = error.problems
            except LakebookError as error:
                problems = [SpecProblem("", str(error))]
            reports.append(ValidationReport(name, path, problems))
        return reports

    # authoring: the same validation as `lakebook validate`, then the file is written -----------
    def check_pipeline(self, data: Any, name: str | None = None) -> PipelineSpec:
        """Validate a pipeline document and its job graph without writing it.

        Raises SpecValidationError listing every problem (graph errors included); `name`, when
        given, is the name the document must carry (its folder).
        """
        source = f"pipeline `{name}`" if name else "pipeline"
        spec = parse_pipeline(data, source)
        if name is not None and spec.name != name:
            raise SpecValidationError(
                source,
                [
                    SpecProblem(
                        "field `name`", f"`{spec.name}` differs from `{name}`; make them the same"
                    )
                ],
            )
        try:
            self.dag(spec)
        except SpecValidationError:
            raise
        except LakebookError as error:
            raise SpecValidationError(source, [SpecProblem("", str(error))]) from None
        return spec

    def create_pipeline(self, data: Any) -> PipelineSpec:
        """Validate a new pipeline and write `pipelines/<name>/pipeline.yaml`."""
        spec = self.check_pipeline(data)
        path = confine(self.root / "pipelines", f"{spec.name}/pipeline.yaml", "pipeline name")
        if path.exists():
            raise PipelineExistsError(
                f"Pipeline `{spec.name}` already exists. Choose another name, or update it instead."
            )
        return self._write_pipeline(path, spec)

    def update_pipeline(self, name: str, data: Any) -> PipelineSpec:
        """Validate and replace an existing pipeline's file."""
        path = self.pipeline_file(name)
        return self._write_pipeline(path, self.check_pipeline(data, name))

    def delete_pipeline(self, name: str) -> None:
        """Remove a pipeline's file (its folder too when nothing else is in it)."""
        path = self.pipeline_file(name)
        path.unlink()
        if not any(path.parent.iterdir()):
            path.parent.rmdir()

    def pipeline_document(self, name: str) -> dict[str, Any]:
        """A pipeline as the JSON-ready document its YAML file holds (defaults left out)."""
        document: dict[str, Any] = yaml.safe_load(dump_pipeline(self.pipeline(name)))
        return document

    def save_job(
        self, pipeline: str, kind: JobKind, job: str, data: Any, *, create: bool
    ) -> PipelineSpec:
        """Add (`create`) or replace one job of a pipeline, validating the whole pipeline."""
        if not isinstance(data, dict):
            raise SpecValidationError(
                f"job `{job}`", [SpecProblem("", "expected a mapping of job fields")]
            )
        if not is_valid_name(job):
            raise SpecValidationError(
                f"job `{job}`",
                [
                    SpecProblem(
                        "field `name`",
                        "use lowercase letters, digits and underscores, starting with a letter",
                    )
                ],
            )
        document = self.pipeline_document(pipeline)
        jobs: list[dict[str, Any]] = document.setdefault(kind, [])
        data = {**data, "name": data.get("name", job)}
        index = next((i for i, item in enumerate(jobs) if item.get("name") == job), None)
        if create:
            if job in {
                item.get("name")
                for key in ("ingest_jobs", "dataset_jobs")
                for item in document.get(key, [])
            }:
                raise JobExistsError(
                    f"Pipeline `{pipeline}` already has a job `{job}`. Choose another name, or update it instead."
                )
            jobs.append(data)
        else:
            if index is None:
                raise self._job_not_found(pipeline, kind, job, jobs)
            jobs[index] = data
        return self.update_pipeline(pipeline, document)

    def delete_job(self, pipeline: str, kind: JobKind, job: str) -> PipelineSpec:
        """Remove one job; refused (with the problems) when other jobs still read its dataset."""
        document = self.pipeline_document(pipeline)
        jobs: list[dict[str, Any]] = document.get(kind, [])
        remaining = [item for item in jobs if item.get("name") != job]
        if len(remaining) == len(jobs):
            raise self._job_not_found(pipeline, kind, job, jobs)
        document[kind] = remaining
        return self.update_pipeline(pipeline, document)

    @staticmethod
    def _job_not_found(
        pipeline: str, kind: JobKind, job: str, jobs: list[dict[str, Any]]
    ) -> JobNotFoundError:
        noun = kind.replace("_", " ")
        known = ", ".join(f"`{item.get('name')}`" for item in jobs) or "none"
        return JobNotFoundError(
            f"Pipeline `{pipeline}` has no {noun[:-1]} `{job}`. Its {noun}: {known}."
        )

    def _write_pipeline(self, path: Path, spec: PipelineSpec) -> PipelineSpec:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(".pipeline.yaml.tmp")
        temp.write_text(dump_pipeline(spec), encoding="utf-8")
        temp.replace(path)
        return spec

    # runs -------------------------------------------------------------------------------------
    def run(
        self,
        name: str,
        *,
        trigger: str = "manual",
        run_date: date | None = None,
        on_progress: ProgressCallback | None = None,
        run_id: str | None = None,
    ) -> RunSummary:
        """Run a pipeline end to end and return its summary."""
        spec = self.pipeline(name)
        runner = PipelineRunner(
            spec=spec,
            dag=self.dag(spec),
            workspace=self.root,
            runs_root=self.runs_root,
            store=self.store,
            executor=make_executor(self.settings.executor),
            max_parallel_jobs=int(self.settings.max_parallel_jobs),
            kernel_name=str(self.settings.kernel_name),
            on_progress=on_progress,
        )
        return runner.run(trigger=trigger, run_date=run_date, run_id=run_id)

    def runs(self, pipeline: str | None = None, limit: int = 20) -> list[PipelineRun]:
        """Recent pipeline runs, newest first."""
        return self.store.pipeline_runs(pipeline, limit)

    def show(self, run_id: str) -> tuple[PipelineRun, list[JobRun]]:
        """One run and its job runs."""
        run = self.store.pipeline_run(run_id)
        return run, self.store.job_runs(run.id)

    def watermark_history(self, pipeline: str, job: str) -> list[WatermarkEntry]:
        """A job's watermark ledger, oldest first."""
        self._ingest_job(pipeline, job)
        return self.store.watermark_history(pipeline, job)

    def rewind_watermark(self, pipeline: str, job: str, to_run: str) -> WatermarkEntry:
        """Set a job's watermark back to where run `to_run` left it; the next run re-reads from there."""
        self._ingest_job(pipeline, job)
        return self.store.rewind_watermark(pipeline, job, to_run)

    def _ingest_job(self, pipeline: str, job: str) -> IngestJob:
        spec = self.pipeline(pipeline)
        match = next((item for item in spec.ingest_jobs if item.name == job), None)
        if match is None:
            known = ", ".join(f"`{item.name}`" for item in spec.ingest_jobs) or "none"
            raise LakebookError(
                f"Pipeline `{pipeline}` has no ingest job `{job}`. Its ingest jobs: {known}."
            )
        return match

    # data-quality history and incidents ------------------------------------------------------
    def dq_results(
        self, *, dataset: str | None = None, run: str | None = None, limit: int | None = 50
    ) -> list[DQResult]:
        """DQ results of every run (failed ones included), newest first; `run` may be an id
        prefix. Each row has `as_dict()` for dashboards."""
        run_id = self.store.pipeline_run(run).id if run else None
        return self.store.dq_results(run_id=run_id, dataset=dataset, limit=limit)

    def incidents(
        self, *, status: str | None = None, dataset: str | None = None
    ) -> list[DQIncident]:
        """Data-quality incidents, newest first, by status (open, acknowledged, resolved)."""
        return self.store.incidents(status=status, dataset=dataset)

    def incident(self, incident_id: int) -> DQIncident:
        """One incident, with its bounded sample of failing rows."""
        return self.store.incident(incident_id)

    def acknowledge(self, incident_id: int, owner: str | None = None) -> DQIncident:
        """Acknowledge an incident; `owner` is needed unless it already has one."""
        return self.store.acknowledge_incident(incident_id, owner)

    def resolve(self, incident_id: int, note: str | None = None) -> DQIncident:
        """Resolve an incident; a later violation of the rule opens a new one."""
        return self.store.resolve_incident(incident_id, note)

    # data -------------------------------------------------------------------------------------
    def query(self, sql: str) -> pa.Table:
        """DuckDB SQL over the lake's datasets."""
        from lakebook.query import query

        return query(self.lake, sql)

    def read(self, dataset: str, version: int | None = None) -> pa.Table:
        """A dataset as an Arrow table."""
        return self.lake.read(dataset, version)

    # quarantine replay ------------------------------------------------------------------------
    def replay_quarantine(self, dataset: str) -> ReplaySummary:
        """Re-process `dataset`'s open quarantined rows through its job's current rules and
        schema, adding those that now pass (see `lakebook.replay`)."""
        from lakebook.replay import find_job, replay_quarantine
        from lakebook.runs import new_run_id
        from lakebook.runtime import JobContext

        specs = {name: self.pipeline(name) for name in self.pipeline_names()}
        pipeline, job = find_job(specs, dataset)
        replay_id = f"replay-{new_run_id()}"
        context = JobContext(self.root, self.settings, self.lake, pipeline, replay_id, date.today())
        return replay_quarantine(context, job)
