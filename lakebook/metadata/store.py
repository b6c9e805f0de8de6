"""`MetadataStore`: the one place that reads and writes the metadata database."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, delete, event, func, inspect, or_, select
from sqlalchemy.orm import Session, sessionmaker

from lakebook.errors import IncidentNotFoundError, IncidentStatusError, RunNotFoundError
from lakebook.metadata.models import (
    DQIncident,
    DQResult,
    IncidentStatus,
    IngestFile,
    JobRun,
    PipelineRun,
    WatermarkEntry,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


# one Alembic migration at a time in this process (see MetadataStore.upgrade)
_MIGRATION_LOCK = threading.Lock()


class MetadataStore:
    """Reads and writes the metadata DB; creates and migrates the schema on open."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        """Open the DB at `url`; `migrate=False` for readers (job kernels) that must not race the
        runner, which migrates on open."""
        self.url = url
        if url.startswith("sqlite"):
            database = url.split("///", 1)[-1]
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 30}
            )
            event.listen(self.engine, "connect", _enable_sqlite_foreign_keys)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.upgrade()

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision.

        Alembic keeps the migration context in module globals, so two threads of one process
        (the server's start-up warm-up and a request, say) must not migrate at the same time.
        """
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with _MIGRATION_LOCK, self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def table_names(self) -> list[str]:
        """Tables present in the database (for diagnostics and tests)."""
        return sorted(inspect(self.engine).get_table_names())

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # pipeline runs ---------------------------------------------------------------------------
    def add_pipeline_run(self, run: PipelineRun, jobs: Sequence[JobRun]) -> None:
        """Record a new run and its (pending) job runs."""
        with self.session() as session:
            session.add(run)
            session.flush()
            session.add_all(jobs)

    def update_pipeline_run(self, run_id: str, **values: Any) -> None:
        """Change fields of a pipeline run."""
        with self.session() as session:
            run = session.get(PipelineRun, run_id)
            if run is None:
                raise RunNotFoundError(f"No run `{run_id}`.")
            for name, value in values.items():
                setattr(run, name, value)

    def update_job_run(self, run_id: str, job: str, **values: Any) -> None:
        """Change fields of one job run."""
        with self.session() as session:
            row = session.scalars(
                select(JobRun).where(JobRun.run_id == run_id, JobRun.job == job)
            ).one_or_none()
            if row is None:
                raise RunNotFoundError(f"Run `{run_id}` has no job `{job}`.")
            for name, value in values.items():
                setattr(row, name, value)

    def pipeline_run(self, run_id: str) -> PipelineRun:
        """One run by id (a unique prefix of the id also works)."""
        with self.session() as session:
            run = session.get(PipelineRun, run_id)
            if run is not None:
                return run
            candidates = session.scalars(
                select(PipelineRun)
                .where(PipelineRun.id.startswith(run_id, autoescape=True))
                .limit(6)
            ).all()
            # LIKE is case-insensitive on SQLite; run ids are not.
            matches = [item for item in candidates if item.id.startswith(run_id)]
            if len(matches) == 1:
                return matches[0]
            if matches:
                listed = ", ".join(f"`{item.id}`" for item in matches[:5])
                raise RunNotFoundError(
                    f"Run id prefix `{run_id}` matches several runs ({listed}). "
                    "Give more characters of the id; list runs with `lakebook runs`."
                )
            raise RunNotFoundError(
                f"No run `{run_id}`. List runs with `lakebook runs` and copy an id from there."
            )

    def pipeline_runs(self, pipeline: str | None = None, limit: int = 20) -> list[PipelineRun]:
        """Newest runs first, optionally of one pipeline."""
        query = select(PipelineRun).order_by(PipelineRun.started_at.desc()).limit(limit)
        if pipeline:
            query = query.where(PipelineRun.pipeline == pipeline)
        with self.session() as session:
            return list(session.scalars(query).all())

    def last_runs(self) -> dict[str, PipelineRun]:
        """The newest run of every pipeline that has one, by pipeline name (one query)."""
        newest = (
            select(PipelineRun.pipeline, func.max(PipelineRun.started_at).label("started_at"))
            .group_by(PipelineRun.pipeline)
            .subquery()
        )
        query = select(PipelineRun).join(
            newest,
            (PipelineRun.pipeline == newest.c.pipeline)
            & (PipelineRun.started_at == newest.c.started_at),
        )
        with self.session() as session:
            return {run.pipeline: run for run in session.scalars(query).all()}

    def job_run_history(self, pipeline: str, job: str, limit: int = 20) -> list[JobRun]:
        """One job's runs across pipeline runs, newest first."""
        query = (
            select(JobRun)
            .where(JobRun.pipeline == pipeline, JobRun.job == job)
            .order_by(JobRun.id.desc())
            .limit(limit)
        )
        with self.session() as session:
            return list(session.scalars(query).all())

    def job_names(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        """The jobs each of these runs ran, in the order they were planned (one query)."""
        names: dict[str, list[str]] = {run_id: [] for run_id in run_ids}
        if not names:
            return names
        query = (
            select(JobRun.run_id, JobRun.job)
            .where(JobRun.run_id.in_(list(names)))
            .order_by(JobRun.id)
        )
        with self.session() as session:
            for run_id, job in session.execute(query):
                names[run_id].append(job)
        return names

    def job_runs(self, run_id: str) -> list[JobRun]:
        """The job runs of one pipeline run, in the order they were planned."""
        with self.session() as session:
            query = select(JobRun).where(JobRun.run_id == run_id).order_by(JobRun.id)
            return list(session.scalars(query).all())

    # watermarks ------------------------------------------------------------------------------
    def add_watermark(self, entry: WatermarkEntry) -> None:
        """Append a ledger entry (only after the job's commit succeeded)."""
        with self.session() as session:
            session.add(entry)

    def current_watermark(self, pipeline: str, job: str) -> str | None:
        """The watermark the next incremental run starts from, or None."""
        query = (
            select(WatermarkEntry)
            .where(WatermarkEntry.pipeline == pipeline, WatermarkEntry.job == job)
            .order_by(WatermarkEntry.id.desc())
            .limit(1)
        )
        with self.session() as session:
            entry = session.scalars(query).first()
            return entry.value_after if entry else None

    def watermark_history(self, pipeline: str, job: str) -> list[WatermarkEntry]:
        """Every ledger entry of a job, oldest first."""
        query = (
            select(WatermarkEntry)
            .where(WatermarkEntry.pipeline == pipeline, WatermarkEntry.job == job)
            .order_by(WatermarkEntry.id)
        )
        with self.session() as session:
            return list(session.scalars(query).all())

    def rewind_watermark(self, pipeline: str, job: str, to_run: str) -> WatermarkEntry:
        """Reset a job's watermark to where it stood after run `to_run` (a new ledger entry) and
        forget the files committed after that run."""
        history = self.watermark_history(pipeline, job)
        if not history:
            raise RunNotFoundError(f"Job `{job}` of `{pipeline}` has no watermark history yet.")
        target = [
            entry for entry in history if entry.run_id == to_run or entry.run_id.startswith(to_run)
        ]
        if not target:
            runs = ", ".join(f"`{entry.run_id}`" for entry in history[-5:])
            raise RunNotFoundError(
                f"Run `{to_run}` did not move the watermark of `{job}`. Recent runs that did: {runs}."
            )
        entry = WatermarkEntry(
            pipeline=pipeline,
            job=job,
            run_id=f"rewind:{target[-1].run_id}",
            column=target[-1].column,
            value_before=history[-1].value_after,
            value_after=target[-1].value_after,
            rows=0,
            committed_at=utc_now(),
        )
        with self.session() as session:
            session.add(entry)
            # Files committed after that run count as not loaded, so the next run reads them again.
            session.execute(
                delete(IngestFile).where(
                    IngestFile.pipeline == pipeline,
                    IngestFile.job == job,
                    IngestFile.loaded_at > target[-1].committed_at,
                )
            )
        return entry

    # file manifest ---------------------------------------------------------------------------
    def add_ingest_files(self, files: Sequence[IngestFile]) -> None:
        """Record the source objects a committed run loaded."""
        with self.session() as session:
            session.add_all(files)

    def loaded_fingerprints(self, pipeline: str, job: str) -> frozenset[str]:
        """Fingerprints of every source object the job has committed before."""
        query = select(IngestFile.fingerprint).where(
            IngestFile.pipeline == pipeline, IngestFile.job == job
        )
        with self.session() as session:
            return frozenset(session.scalars(query).all())

    # data quality ----------------------------------------------------------------------------
    def add_dq_results(self, results: Sequence[DQResult]) -> None:
        """Append DQ results of one job run."""
        with self.session() as session:
            session.add_all(results)

    def dq_results(
        self, run_id: str | None = None, dataset: str | None = None, limit: int | None = None
    ) -> list[DQResult]:
        """DQ results, newest first, filtered by run or dataset, at most `limit` of them."""
        query = select(DQResult).order_by(DQResult.id.desc())
        if run_id:
            query = query.where(DQResult.run_id == run_id)
        if dataset:
            query = query.where(DQResult.dataset == dataset)
        if limit is not None:
            query = query.limit(limit)
        with self.session() as session:
            return list(session.scalars(query).all())

    def previous_observed_values(self, dataset: str, rules: Sequence[str]) -> dict[str, float]:
        """Each rule's observed value in the latest run that committed `dataset` (the table as
        it stands); rules never observed are left out. `metric_change` compares against these."""
        values: dict[str, float] = {}
        with self.session() as session:
            for rule in rules:
                query = (
                    select(DQResult.observed_value)
                    .where(
                        DQResult.dataset == dataset,
                        DQResult.rule == rule,
                        DQResult.observed_value.is_not(None),
                        # Rows from before 0003 have no `committed`; they only exist for commits.
                        or_(DQResult.committed.is_(True), DQResult.committed.is_(None)),
                    )
                    .order_by(DQResult.id.desc())
                    .limit(1)
                )
                value = session.scalars(query).first()
                if value is not None:
                    values[rule] = float(value)
        return values

    # incidents -------------------------------------------------------------------------------
    def record_violation(
        self,
        result: DQResult,
        sample: Sequence[dict[str, Any]],
        notification: str | None = None,
    ) -> DQIncident:
        """Open an incident for a failed rule, or update the unresolved one of the same
        (pipeline, job, rule): one more occurrence, the latest metrics, sample and run."""
        now = result.checked_at
        with self.session() as session:
            incident = session.scalars(
                select(DQIncident)
                .where(
                    DQIncident.pipeline == result.pipeline,
                    DQIncident.job == result.job,
                    DQIncident.rule == result.rule,
                    DQIncident.status != str(IncidentStatus.RESOLVED),
                )
                .order_by(DQIncident.id.desc())
                .limit(1)
            ).first()
            if incident is None:
                incident = DQIncident(
                    pipeline=result.pipeline,
                    job=result.job,
                    rule=result.rule,
                    status=str(IncidentStatus.OPEN),
                    opened_run_id=result.run_id,
                    occurrences=0,
                    opened_at=now,
                )
                session.add(incident)
            incident.dataset = result.dataset
            incident.check_type = result.check_type
            incident.severity = result.severity
            incident.last_run_id = result.run_id
            incident.occurrences += 1
            incident.rows_failing = result.rows_failing
            incident.failure_rate = result.failure_rate or 0.0
            incident.action_taken = result.action_taken or result.action
            incident.sample = list(sample)
            incident.notification = notification
            incident.updated_at = now
            session.flush()
            return incident

    def incidents(
        self,
        status: str | None = None,
        dataset: str | None = None,
        limit: int | None = None,
        *,
        pipeline: str | None = None,
        job: str | None = None,
        run_id: str | None = None,
    ) -> list[DQIncident]:
        """Incidents, newest first, filtered by status, dataset, pipeline, job or run (the run
        that opened the incident or the last one that violated its rule)."""
        query = select(DQIncident).order_by(DQIncident.id.desc())
        if status:
            query = query.where(DQIncident.status == str(_incident_status(status)))
        if dataset:
            query = query.where(DQIncident.dataset == dataset)
        if pipeline:
            query = query.where(DQIncident.pipeline == pipeline)
        if job:
            query = query.where(DQIncident.job == job)
        if run_id:
            query = query.where(
                or_(DQIncident.opened_run_id == run_id, DQIncident.last_run_id == run_id)
            )
        if limit is not None:
            query = query.limit(limit)
        with self.session() as session:
            return list(session.scalars(query).all())

    def incident(self, incident_id: int) -> DQIncident:
        """One incident by id."""
        with self.session() as session:
            return _get_incident(session, incident_id)

    def acknowledge_incident(self, incident_id: int, owner: str | None = None) -> DQIncident:
        """Mark an open incident acknowledged by `owner` (an acknowledged one may change owner)."""
        owner = (owner or "").strip() or None
        with self.session() as session:
            incident = _get_incident(session, incident_id)
            if incident.status == str(IncidentStatus.RESOLVED):
                raise IncidentStatusError(
                    f"Incident {incident.id} (`{incident.rule}` on `{incident.dataset}`) is "
                    "resolved and cannot go back to acknowledged. A new violation of the rule "
                    "opens a new incident."
                )
            if owner is None and incident.owner is None:
                raise IncidentStatusError(
                    f"Incident {incident.id} has no owner yet; acknowledging it needs one. "
                    "Name who takes it, e.g. `lakebook dq ack "
                    f"{incident.id} --owner NAME`."
                )
            now = utc_now()
            if incident.status == str(IncidentStatus.OPEN):
                incident.acknowledged_at = now
            incident.status = str(IncidentStatus.ACKNOWLEDGED)
            incident.owner = owner or incident.owner
            incident.updated_at = now
            return incident

    def resolve_incident(self, incident_id: int, note: str | None = None) -> DQIncident:
        """Mark an open or acknowledged incident resolved, with an optional note."""
        with self.session() as session:
            incident = _get_incident(session, incident_id)
            if incident.status == str(IncidentStatus.RESOLVED):
                raise IncidentStatusError(
                    f"Incident {incident.id} (`{incident.rule}` on `{incident.dataset}`) is "
                    "already resolved. List unresolved ones with `lakebook dq incidents "
                    "--status open`."
                )
            now = utc_now()
            incident.status = str(IncidentStatus.RESOLVED)
            incident.resolved_at = now
            incident.updated_at = now
            if note:
                incident.note = note
            return incident


def _get_incident(session: Session, incident_id: int) -> DQIncident:
    incident = session.get(DQIncident, incident_id)
    if incident is None:
        raise IncidentNotFoundError(
            f"No data-quality incident {incident_id}. List them with `lakebook dq incidents`."
        )
    return incident


def _incident_status(status: str) -> IncidentStatus:
    try:
        return IncidentStatus(status)
    except ValueError:
        known = ", ".join(f"`{item.value}`" for item in IncidentStatus)
        raise IncidentStatusError(
            f"`{status}` is not an incident status. Use one of: {known}."
        ) from None


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    from datetime import timezone

    return datetime.now(timezone.utc)
