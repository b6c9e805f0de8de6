"""Run a pipeline: DAG order, bounded parallelism, one papermill execution per job, run records.

Every executed notebook, failed ones included, is archived in `runs/<pipeline>/<run_id>/` beside a
`run.json` written atomically; the metadata DB indexes the same facts.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from lakebook.dag import Dag, Node
from lakebook.executor import Executor, JobOutcome, JobRequest, job_parameters, template_for
from lakebook.metadata import (
    DQIncident,
    DQResult,
    IngestFile,
    JobRun,
    MetadataStore,
    PipelineRun,
    RunStatus,
    WatermarkEntry,
)
from lakebook.results import JobResult, RuleOutcome
from lakebook.specs import DQRule, IngestJob, PipelineSpec

DEFAULT_SAMPLE_SIZE = 20
INCIDENT_SEVERITIES = ("warn", "error", "critical")


@dataclass
class JobSummary:
    """One job's line in a run summary."""

    job: str
    kind: str
    dataset: str
    status: RunStatus = RunStatus.PENDING
    rows_read: int | None = None
    rows_written: int | None = None
    quarantined_rows: int | None = None
    deduplicated_rows: int | None = None
    dropped_rows: int | None = None
    watermark_before: str | None = None
    watermark_after: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    notebook: str | None = None
    error: str | None = None


@dataclass
class RunSummary:
    """What a pipeline run did; also the content of `run.json`."""

    run_id: str
    pipeline: str
    trigger: str
    record_dir: str
    status: RunStatus = RunStatus.RUNNING
    started_at: str = ""
    ended_at: str | None = None
    duration_seconds: float | None = None
    jobs: list[JobSummary] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = dict(vars(self))
        data["status"] = str(self.status)
        data["jobs"] = [{**vars(job), "status": str(job.status)} for job in self.jobs]
        return data

    def job(self, name: str) -> JobSummary:
        """The summary line of one job."""
        return next(job for job in self.jobs if job.job == name)


logger = logging.getLogger(__name__)
ProgressCallback = Callable[[str, JobSummary], None]


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus random hex."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def seal_record(record_dir: Path) -> None:
    """Make a finished run's record read-only: its notebooks are evidence, not drafts (JupyterLab
    opens them read-only, so an accidental save cannot change what the run did)."""
    for path in record_dir.iterdir():
        if path.is_file():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temp file and `os.replace`, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".run-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2, default=str)
    os.replace(temp, path)


def only_jobs(dag: Dag, names: list[str]) -> Dag:
    """The part of `dag` made of the jobs `names`: dependencies on other jobs are dropped (their
    datasets are read from the lake as they are). Names not in `dag` are ignored; the workspace
    checks them first (`Workspace.check_only`)."""
    wanted = set(names)
    return Dag(
        Node(node.name, node.dataset, node.rank, node.upstream & wanted)
        for node in (dag.nodes[name] for name in dag.order() if name in wanted)
    )


def _outcome_of(future: Future[JobOutcome], name: str) -> JobOutcome:
    """The executor's outcome; an executor crash becomes a recorded job failure, not a lost run."""
    try:
        return future.result()
    except Exception as error:  # the run must still be finalised and recorded
        logger.exception("executor failed on job %s", name)
        now = time.time()
        message = f"internal error in the executor: {type(error).__name__}: {error}"
        return JobOutcome(name, False, None, message, now, now)


class PipelineRunner:
    """Runs one pipeline once; used by the workspace facade."""

    def __init__(
        self,
        *,
        spec: PipelineSpec,
        dag: Dag,
        workspace: Path,
        runs_root: Path,
        store: MetadataStore,
        executor: Executor,
        max_parallel_jobs: int,
        kernel_name: str,
        on_progress: ProgressCallback | None = None,
        only: list[str] | None = None,
    ) -> None:
        """`only` names the jobs to run (their inputs must be in the lake); default every job."""
        self.spec = spec
        self.dag = only_jobs(dag, only) if only is not None else dag
        self.workspace = workspace
        self.runs_root = runs_root
        self.store = store
        self.executor = executor
        self.max_parallel_jobs = max_parallel_jobs
        self.kernel_name = kernel_name
        self.on_progress = on_progress or (lambda _event, _job: None)

    def run(
        self, trigger: str = "manual", run_date: date | None = None, run_id: str | None = None
    ) -> RunSummary:
        """Execute every job in DAG order; returns the summary (also in run.json and the DB).

        `run_id` lets a caller that returns before the run ends (the server) name it up front.
        """
        run_id = run_id or new_run_id()
        record_dir = self.runs_root / self.spec.name / run_id
        record_dir.mkdir(parents=True, exist_ok=True)
        day = (run_date or datetime.now(timezone.utc).date()).isoformat()
        started = datetime.now(timezone.utc)
        summary = RunSummary(
            run_id, self.spec.name, trigger, str(record_dir), started_at=started.isoformat()
        )
        for name in self.dag.order():
            job = self.spec.job(name)
            kind = "ingest" if isinstance(job, IngestJob) else job.layer
            summary.jobs.append(JobSummary(name, kind, job.dataset))
        self.store.add_pipeline_run(
            PipelineRun(
                id=run_id,
                pipeline=self.spec.name,
                status=str(RunStatus.RUNNING),
                trigger=trigger,
                started_at=started,
                record_dir=str(record_dir),
            ),
            [
                JobRun(
                    run_id=run_id,
                    pipeline=self.spec.name,
                    job=line.job,
                    kind=line.kind,
                    dataset=line.dataset,
                    status=str(RunStatus.PENDING),
                )
                for line in summary.jobs
            ],
        )
        write_json_atomically(record_dir / "run.json", summary.as_dict())
        self._execute_all(summary, record_dir, day)

        ended = datetime.now(timezone.utc)
        failed = any(job.status != RunStatus.SUCCEEDED for job in summary.jobs)
        summary.status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
        summary.ended_at = ended.isoformat()
        summary.duration_seconds = round((ended - started).total_seconds(), 3)
        errors = [f"{job.job}: {job.error}" for job in summary.jobs if job.error]
        self.store.update_pipeline_run(
            run_id,
            status=str(summary.status),
            ended_at=ended,
            duration_seconds=summary.duration_seconds,
            error="\n".join(errors) or None,
        )
        write_json_atomically(record_dir / "run.json", summary.as_dict())
        seal_record(record_dir)
        return summary

    def _execute_all(self, summary: RunSummary, record_dir: Path, day: str) -> None:
        succeeded: set[str] = set()
        started: set[str] = set()
        running: dict[Future[JobOutcome], str] = {}
        with ThreadPoolExecutor(max_workers=self.max_parallel_jobs) as pool:
            while True:
                for name in self.dag.ready(succeeded, started):
                    if len(running) >= self.max_parallel_jobs:
                        break
                    started.add(name)
                    request = self._request(name, summary, record_dir, day)
                    self._mark_running(summary, name, request.output)
                    running[pool.submit(self.executor.execute, request)] = name
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    name = running.pop(future)
                    outcome = _outcome_of(future, name)
                    self._record_outcome(summary, outcome)
                    if outcome.succeeded:
                        succeeded.add(name)
                    else:
                        for blocked in sorted(self.dag.downstream(name) - started):
                            started.add(blocked)
                            self._mark_skipped(summary, blocked, name)
                write_json_atomically(record_dir / "run.json", summary.as_dict())

    def _request(self, name: str, summary: RunSummary, record_dir: Path, day: str) -> JobRequest:
        job = self.spec.job(name)
        watermark = None
        if isinstance(job, IngestJob) and job.incremental_mode == "incremental":
            watermark = self.store.current_watermark(self.spec.name, name)
            watermark = watermark if watermark is not None else job.last_watermark_value
        pipeline_dir = self.workspace / "pipelines" / self.spec.name
        parameters = job_parameters(
            job,
            workspace=self.workspace,
            pipeline=self.spec.name,
            run_id=summary.run_id,
            run_date=day,
            watermark=watermark,
        )
        return JobRequest(
            job=name,
            notebook=template_for(job, pipeline_dir),
            output=record_dir / f"{name}.ipynb",
            parameters=parameters,
            cwd=self.workspace,
            kernel_name=self.kernel_name,
        )

    def _mark_running(self, summary: RunSummary, name: str, notebook: Path) -> None:
        line = summary.job(name)
        line.status = RunStatus.RUNNING
        line.started_at = datetime.now(timezone.utc).isoformat()
        line.notebook = str(notebook)
        self.store.update_job_run(
            summary.run_id,
            name,
            status=str(RunStatus.RUNNING),
            started_at=datetime.now(timezone.utc),
            notebook_path=str(notebook),
        )
        self.on_progress("started", line)

    def _mark_skipped(self, summary: RunSummary, name: str, because: str) -> None:
        line = summary.job(name)
        line.status = RunStatus.SKIPPED
        line.error = f"skipped because upstream job `{because}` failed"
        self.store.update_job_run(
            summary.run_id, name, status=str(RunStatus.SKIPPED), error=line.error
        )
        self.on_progress("skipped", line)

    def _record_outcome(self, summary: RunSummary, outcome: JobOutcome) -> None:
        line = summary.job(outcome.job)
        line.status = RunStatus.SUCCEEDED if outcome.succeeded else RunStatus.FAILED
        line.ended_at = datetime.fromtimestamp(outcome.ended, timezone.utc).isoformat()
        line.duration_seconds = round(outcome.ended - outcome.started, 3)
        line.error = outcome.error
        values: dict[str, Any] = {
            "status": str(line.status),
            "ended_at": datetime.fromtimestamp(outcome.ended, timezone.utc),
            "duration_seconds": line.duration_seconds,
            "error": outcome.error,
        }
        result = outcome.result
        if result is not None:
            for name in (
                "rows_read",
                "rows_written",
                "quarantined_rows",
                "deduplicated_rows",
                "dropped_rows",
                "watermark_before",
                "watermark_after",
            ):
                setattr(line, name, getattr(result, name))
                values[name] = getattr(result, name)
            values["table_version"] = result.table_version
            values["result"] = result.as_dict()
        self.store.update_job_run(summary.run_id, outcome.job, **values)
        if result is not None:
            # Every run's DQ history, failed ones included; incidents for violations.
            self._record_dq(summary, result, committed=outcome.succeeded)
        if result is not None and outcome.succeeded:
            self._record_committed_facts(summary, result)
        self.on_progress("finished", line)

    def _record_committed_facts(self, summary: RunSummary, result: Any) -> None:
        """Watermark ledger and file manifest: written only after the job's commit succeeded, so
        a failed run moves nothing and its files load again next time (DQ results: `_record_dq`)."""
        now = datetime.now(timezone.utc)
        if result.watermark_column and result.watermark_after is not None:
            self.store.add_watermark(
                WatermarkEntry(
                    pipeline=summary.pipeline,
                    job=result.job,
                    run_id=summary.run_id,
                    column=result.watermark_column,
                    value_before=result.watermark_before,
                    value_after=result.watermark_after,
                    rows=result.rows_written,
                    committed_at=now,
                )
            )
        if result.manifest:
            self.store.add_ingest_files(
                [
                    IngestFile(
                        pipeline=summary.pipeline,
                        job=result.job,
                        run_id=summary.run_id,
                        uri=entry["uri"],
                        fingerprint=entry["fingerprint"],
                        loaded_at=now,
                    )
                    for entry in result.manifest
                ]
            )

    def _record_dq(
        self, summary: RunSummary, result: JobResult, *, committed: bool
    ) -> list[DQIncident]:
        """Append one DQ result per rule, then open or update an incident for each violation at
        severity warn or above, with a sample bounded by the rule's `sample_size`."""
        if not result.dq:
            return []
        now = datetime.now(timezone.utc)
        rows = [
            DQResult(
                run_id=summary.run_id,
                pipeline=summary.pipeline,
                job=result.job,
                dataset=result.dataset,
                rule=item.rule,
                check_type=item.check_type,
                severity=item.severity,
                action=item.action,
                rows_checked=item.rows_checked,
                rows_failing=item.rows_failing,
                passed=item.passed,
                checked_at=now,
                failure_rate=item.failure_rate,
                duration_ms=item.duration_ms,
                observed_value=item.observed_value,
                rows_fixed=item.rows_fixed,
                action_taken=action_taken(item, result.dq_failed),
                committed=committed,
                message=item.message or None,
            )
            for item in result.dq
        ]
        self.store.add_dq_results(rows)
        rules = {rule.name: rule for rule in self._rules_of(result.job)}
        incidents = []
        for item, row in zip(result.dq, rows, strict=True):
            if item.passed or item.severity not in INCIDENT_SEVERITIES:
                continue
            rule = rules.get(item.rule)
            size = rule.sample_size if rule is not None else DEFAULT_SAMPLE_SIZE
            notification = item.notification or (rule.notification if rule else None)
            incidents.append(self.store.record_violation(row, item.samples[:size], notification))
        return incidents

    def _rules_of(self, job: str) -> list[DQRule]:
        """The job's data-quality rules as the pipeline file declares them."""
        spec = next((item for item in self.spec.jobs if item.name == job), None)
        return list(getattr(spec, "data_quality", None) or [])


def action_taken(outcome: RuleOutcome, job_failed: bool) -> str:
    """What happened because of a rule: `none` when it passed (`auto_fix` when its fix made it
    pass), its action when it failed, `not_applied` for drop/quarantine/warn rules of a job that
    another rule failed before anything was removed or committed."""
    if outcome.passed:
        return "auto_fix" if outcome.rows_fixed else "none"
    if job_failed and outcome.action != "fail":
        return "not_applied"
    return outcome.action
