"""`Workspace`: the facade the CLI, the server extension and notebooks drive.

A workspace is a folder with `jupyter_config.py` and `pipelines/<name>/pipeline.yaml` files.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
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
    RuleExistsError,
    RuleNotFoundError,
    SpecProblem,
    SpecValidationError,
    WorkspaceNotFoundError,
)
from lakebook.executor import eject_notebook, ejected_path, job_parameters, make_executor
from lakebook.metadata import (
    DQIncident,
    DQResult,
    IncidentStatus,
    JobRun,
    MetadataStore,
    PipelineRun,
    WatermarkEntry,
)
from lakebook.replay import ReplaySummary
from lakebook.runs import PipelineRunner, ProgressCallback, RunSummary
from lakebook.specs import (
    DatasetJob,
    IngestJob,
    PipelineSpec,
    dump_pipeline,
    is_valid_name,
    load_pipeline_file,
    parse_pipeline,
    parse_yaml,
    pipeline_data,
)
from lakebook.storage import Lake, confine
from lakebook.yamledit import render_yaml

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
    spec: PipelineSpec | None = None  # None when the file does not parse


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
        # pipeline files are read, changed and written back: one writer at a time (the server
        # calls the workspace from several threads)
        self._write_lock = threading.RLock()
        # parsed pipeline files by path, with the file version they were parsed from
        self._specs: dict[Path, tuple[tuple[int, int, int], PipelineSpec]] = {}

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
        """A validated pipeline spec, parsed again only when its file has changed.

        (The server lists every pipeline on each poll of the sidebar; specs are immutable.)
        """
        path = self.pipeline_file(name)
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._specs.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        spec = load_pipeline_file(path)
        self._specs[path] = (version, spec)
        return spec

    def dag(self, spec: PipelineSpec, existing: Iterable[str] | None = None) -> Dag:
        """The validated job graph of a pipeline; `existing` datasets default to the lake's."""
        return Dag.from_pipeline(
            spec, existing=self.lake.datasets() if existing is None else existing
        )

    def validate(self, names: list[str] | None = None) -> list[ValidationReport]:
        """Check pipeline files and their graphs; one report per pipeline, listing every problem."""
        existing = self.lake.datasets()  # once for every pipeline
        reports = []
        for name in names or self.pipeline_names():
            path = self.root / "pipelines" / name / "pipeline.yaml"
            problems: list[SpecProblem] = []
            spec: PipelineSpec | None = None
            try:
                spec = self.pipeline(name)
                self.dag(spec, existing)
            except SpecValidationError as error:
                problems = error.problems
            except LakebookError as error:
                problems = [SpecProblem("", str(error))]
            reports.append(ValidationReport(name, path, problems, spec))
        return reports

    def raw_pipeline(self, name: str) -> dict[str, Any]:
        """A pipeline file's YAML as it is, unvalidated ({} when it is not a mapping)."""
        try:
            data = parse_yaml(self.pipeline_file(name).read_text(encoding="utf-8"))
        except yaml.YAMLError:
            return {}
        return data if isinstance(data, dict) else {}

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
        with self._write_lock:
            if path.exists():
                raise PipelineExistsError(
                    f"Pipeline `{spec.name}` already exists. "
                    "Choose another name, or update it instead."
                )
            return self._write_pipeline(path, spec)

    def update_pipeline(self, name: str, data: Any) -> PipelineSpec:
        """Validate and replace an existing pipeline's file."""
        with self._write_lock:
            path = self.pipeline_file(name)
            return self._write_pipeline(path, self.check_pipeline(data, name))

    def delete_pipeline(self, name: str) -> None:
        """Remove a pipeline's file (its folder too when nothing else is in it)."""
        with self._write_lock:
            path = self.pipeline_file(name)
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()

    def pipeline_document(self, name: str) -> dict[str, Any]:
        """A pipeline as the JSON-ready document its YAML file holds (defaults left out)."""
        return pipeline_data(self.pipeline(name))

    def save_job(
        self, pipeline: str, kind: JobKind, job: str, data: Any, *, create: bool
    ) -> PipelineSpec:
        """Add (`create`) or replace one job of a pipeline, validating the whole pipeline."""
        with self._write_lock:
            return self._save_job(pipeline, kind, job, data, create=create)

    def _save_job(
        self, pipeline: str, kind: JobKind, job: str, data: Any, *, create: bool
    ) -> PipelineSpec:
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
        with self._write_lock:
            document = self.pipeline_document(pipeline)
            jobs: list[dict[str, Any]] = document.get(kind, [])
            remaining = [item for item in jobs if item.get("name") != job]
            if len(remaining) == len(jobs):
                raise self._job_not_found(pipeline, kind, job, jobs)
            document[kind] = remaining
            return self.update_pipeline(pipeline, document)

    def job(self, pipeline: str, kind: JobKind, job: str) -> IngestJob | DatasetJob:
        """One job of a pipeline from the list `kind`; JobNotFoundError naming the others."""
        spec = self.pipeline(pipeline)
        jobs: list[IngestJob] | list[DatasetJob] = getattr(spec, kind)
        match = next((item for item in jobs if item.name == job), None)
        if match is None:
            listed = [{"name": item.name} for item in jobs]
            raise self._job_not_found(pipeline, kind, job, listed)
        return match

    # data-quality rules of one job (its `data_quality` list) ---------------------------------
    def rules(self, pipeline: str, kind: JobKind, job: str) -> list[dict[str, Any]]:
        """A job's data-quality rules as its pipeline file holds them (defaults left out)."""
        return list(
            self._job_document(self.pipeline_document(pipeline), pipeline, kind, job).get(
                "data_quality", []
            )
        )

    def save_rule(
        self, pipeline: str, kind: JobKind, job: str, rule: str, data: Any, *, create: bool
    ) -> dict[str, Any]:
        """Add (`create`) or replace the rule `rule` of a job, validating the whole pipeline like
        a job save; returns the rule as saved. A rule's new `name` in `data` renames it."""
        if not isinstance(data, dict):
            raise SpecValidationError(
                f"rule `{rule}`", [SpecProblem("", "expected a mapping of rule fields")]
            )
        data = {**data, "name": data.get("name", rule)}
        if not is_valid_name(str(data["name"])):
            raise SpecValidationError(
                f"rule `{data['name']}`",
                [
                    SpecProblem(
                        "field `name`",
                        "give the rule a name: lowercase letters, digits "
                        "and underscores, starting with a letter",
                    )
                ],
            )
        with self._write_lock:
            document = self.pipeline_document(pipeline)
            rules = self._job_document(document, pipeline, kind, job).setdefault("data_quality", [])
            names = [item.get("name") for item in rules]
            if not create and rule not in names:
                raise self._rule_not_found(job, rule, names)
            taken = set(names) - ({rule} if not create else set())
            if data["name"] in taken:
                raise RuleExistsError(
                    f"Job `{job}` already has a data-quality rule `{data['name']}`. Choose "
                    "another name, or update that rule instead."
                )
            if create:
                rules.append(data)
            else:
                rules[names.index(rule)] = data
            self.update_pipeline(pipeline, document)
        saved = self.rules(pipeline, kind, job)
        return next(item for item in saved if item.get("name") == data["name"])

    def delete_rule(self, pipeline: str, kind: JobKind, job: str, rule: str) -> None:
        """Remove one data-quality rule of a job."""
        with self._write_lock:
            document = self.pipeline_document(pipeline)
            item = self._job_document(document, pipeline, kind, job)
            rules: list[dict[str, Any]] = item.get("data_quality", [])
            names = [entry.get("name") for entry in rules]
            if rule not in names:
                raise self._rule_not_found(job, rule, names)
            item["data_quality"] = [entry for entry in rules if entry.get("name") != rule]
            if not item["data_quality"]:
                del item["data_quality"]
            self.update_pipeline(pipeline, document)

    def _job_document(
        self, document: dict[str, Any], pipeline: str, kind: JobKind, job: str
    ) -> dict[str, Any]:
        """The job's mapping inside a pipeline document (changed in place by callers)."""
        jobs: list[dict[str, Any]] = document.get(kind, [])
        match = next((item for item in jobs if item.get("name") == job), None)
        if match is None:
            raise self._job_not_found(pipeline, kind, job, jobs)
        return match

    @staticmethod
    def _rule_not_found(job: str, rule: str, names: list[Any]) -> RuleNotFoundError:
        known = ", ".join(f"`{name}`" for name in names) or "none"
        return RuleNotFoundError(
            f"Job `{job}` has no data-quality rule `{rule}`. Its rules: {known}."
        )

    # notebooks ------------------------------------------------------------------------------
    def notebook_path(self, pipeline: str, kind: JobKind, job: str) -> Path:
        """Where the pipeline's own copy of a job's notebook is (or would be) kept."""
        return ejected_path(self.job(pipeline, kind, job), self.root / "pipelines" / pipeline)

    def eject_notebook(self, pipeline: str, kind: JobKind, job: str) -> tuple[Path, bool]:
        """Give the pipeline its own copy of a job's notebook, `pipelines/<p>/notebooks/<job>.ipynb`,
        whose parameters default to this job's (never secrets), so it runs as is in JupyterLab;
        `lakebook run` uses the copy from then on. Returns (path, created); an existing copy is
        kept."""
        spec = self.job(pipeline, kind, job)
        pipeline_dir = self.root / "pipelines" / pipeline
        notebook_dir = pipeline_dir / "notebooks"
        parameters = job_parameters(
            spec,
            # relative, so the copy still runs when the workspace moves; a kernel started from
            # JupyterLab runs in the notebook's folder
            workspace=Path(os.path.relpath(self.root, notebook_dir)),
            pipeline=pipeline,
            run_id="manual",
            run_date="",
            watermark=None,
        )
        with self._write_lock:
            return eject_notebook(spec, pipeline_dir, parameters)

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
        """Write a pipeline file atomically, keeping the comments and layout of the one replaced."""
        path.parent.mkdir(parents=True, exist_ok=True)
        previous = path.read_text(encoding="utf-8") if path.is_file() else None
        text = render_yaml(pipeline_data(spec), previous)
        try:
            same = parse_pipeline(parse_yaml(text), str(path)) == spec
        except SpecValidationError:
            same = False
        if not same:  # never write a file that reads back as another pipeline
            text = dump_pipeline(spec)
        temp = path.with_name(".pipeline.yaml.tmp")
        temp.write_text(text, encoding="utf-8")
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
        only: list[str] | None = None,
    ) -> RunSummary:
        """Run a pipeline end to end and return its summary; `only` runs just those jobs, reading
        their inputs from the lake (see `check_only`)."""
        spec = self.pipeline(name)
        dag = self.dag(spec)
        if only is not None:
            self.check_only(spec, only)
        runner = PipelineRunner(
            spec=spec,
            dag=dag,
            only=only,
            workspace=self.root,
            runs_root=self.runs_root,
            store=self.store,
            executor=make_executor(self.settings.executor),
            max_parallel_jobs=int(self.settings.max_parallel_jobs),
            kernel_name=str(self.settings.kernel_name),
            on_progress=on_progress,
        )
        return runner.run(trigger=trigger, run_date=run_date, run_id=run_id)

    def check_only(self, spec: PipelineSpec, only: list[str]) -> None:
        """Check that the jobs `only` can run on their own: each exists, and each input that no
        job of `only` produces is already in the lake."""
        if not only:
            raise LakebookError(f"Name at least one job of pipeline `{spec.name}` to run.")
        jobs = {job.name: job for job in spec.jobs}
        for name in only:
            if name not in jobs:
                known = ", ".join(f"`{item}`" for item in jobs) or "none"
                raise JobNotFoundError(
                    f"Pipeline `{spec.name}` has no job `{name}`. Its jobs: {known}."
                )
        produced = {jobs[name].dataset for name in only}
        for name in only:
            job = jobs[name]
            if isinstance(job, IngestJob):
                continue
            for item in job.inputs:
                if item.dataset not in produced and not self.lake.exists(item.dataset):
                    raise LakebookError(
                        f"Job `{name}` reads `{item.dataset}`, which is not in the lake yet. "
                        f"Run the pipeline first (`lakebook run {spec.name}`), then the job alone."
                    )

    def runs(self, pipeline: str | None = None, limit: int = 20) -> list[PipelineRun]:
        """Recent pipeline runs, newest first."""
        return self.store.pipeline_runs(pipeline, limit)

    def last_runs(self) -> dict[str, PipelineRun]:
        """The newest run of each pipeline that ran, by pipeline name."""
        return self.store.last_runs()

    def job_runs(self, pipeline: str, kind: JobKind, job: str, limit: int = 20) -> list[JobRun]:
        """One job's runs (in full and single-job pipeline runs), newest first."""
        self.job(pipeline, kind, job)  # JobNotFoundError for an unknown job
        return self.store.job_run_history(pipeline, job, limit)

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
        self,
        *,
        status: str | None = None,
        dataset: str | None = None,
        pipeline: str | None = None,
        job: str | None = None,
        run_id: str | None = None,
    ) -> list[DQIncident]:
        """Data-quality incidents, newest first, by status (open, acknowledged, resolved),
        dataset, pipeline, job, or run (the run that opened it or last violated its rule)."""
        statuses = [item.value for item in IncidentStatus]
        if status and status not in statuses:
            raise LakebookError(
                f"`status` `{status}` is not an incident status. Use one of: "
                + ", ".join(f"`{item}`" for item in statuses)
                + "."
            )
        return self.store.incidents(
            status=status, dataset=dataset, pipeline=pipeline, job=job, run_id=run_id
        )

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
