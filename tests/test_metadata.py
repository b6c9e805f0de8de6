"""The metadata DB: Alembic schema, runs, job runs, watermarks and DQ results on SQLite and PostgreSQL.

Every test taking `metadata_url` runs twice: on a SQLite file and on a fresh database of a real
PostgreSQL server. Timestamps are stored from timezone-aware UTC values; PostgreSQL gives them back
timezone-aware while SQLite gives back naive datetimes holding the same UTC wall-clock time, so the
tests compare values through `as_utc` rather than asserting tz-awareness.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, inspect, select, text

from lakebook.errors import RunNotFoundError
from lakebook.metadata import (
    DQResult,
    JobRun,
    MetadataStore,
    PipelineRun,
    RunStatus,
    WatermarkEntry,
)
from lakebook.metadata.store import MIGRATIONS
from tests.postgres_server import PostgresServer

TABLES = [
    "alembic_version",
    "dq_incidents",
    "dq_results",
    "ingest_files",
    "job_runs",
    "pipeline_runs",
    "watermarks",
]
HEAD = "0003"
T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """A DB timestamp as an aware UTC datetime (SQLite returns naive UTC wall-clock values)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def alembic(store: MetadataStore, action: str, revision: str) -> None:
    """Run `alembic upgrade/downgrade` the way `MetadataStore.upgrade` does."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def versions(store: MetadataStore) -> list[str]:
    with store.engine.connect() as connection:
        return list(connection.scalars(text("SELECT version_num FROM alembic_version")))


def count(store: MetadataStore, model: type) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def store(metadata_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore(metadata_url)
    yield opened
    opened.close()


def make_run(
    run_id: str,
    pipeline: str = "shop",
    started_at: datetime = T0,
    jobs: tuple[str, ...] = ("load", "clean"),
) -> tuple[PipelineRun, list[JobRun]]:
    run = PipelineRun(
        id=run_id,
        pipeline=pipeline,
        status=str(RunStatus.RUNNING),
        trigger="manual",
        started_at=started_at,
        record_dir=f"/runs/{pipeline}/{run_id}",
    )
    job_rows = [
        JobRun(
            run_id=run_id,
            pipeline=pipeline,
            job=job,
            kind="ingest" if index == 0 else "silver",
            dataset=f"{'bronze' if index == 0 else 'silver'}.{job}",
            status=str(RunStatus.PENDING),
        )
        for index, job in enumerate(jobs)
    ]
    return run, job_rows


# schema and migrations -----------------------------------------------------------------------
def test_open_creates_every_table_through_alembic(store: MetadataStore) -> None:
    assert store.table_names() == TABLES
    assert versions(store) == [HEAD]
    inspector = inspect(store.engine)
    [foreign_key] = inspector.get_foreign_keys("job_runs")
    assert foreign_key["referred_table"] == "pipeline_runs"
    assert foreign_key["constrained_columns"] == ["run_id"]
    assert (foreign_key.get("options") or {}).get("ondelete", "").upper() == "CASCADE"


def test_migrations_match_the_orm_models(store: MetadataStore) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), PipelineRun.metadata)
    assert differences == []


def test_opening_again_is_a_no_op(metadata_url: str) -> None:
    first = MetadataStore(metadata_url)
    try:
        run, jobs = make_run("r1")
        first.add_pipeline_run(run, jobs)
    finally:
        first.close()
    second = MetadataStore(metadata_url)
    try:
        second.upgrade()  # explicit second upgrade: also a no-op
        assert second.table_names() == TABLES
        assert versions(second) == [HEAD]
        assert [r.id for r in second.pipeline_runs()] == ["r1"]
        assert [j.job for j in second.job_runs("r1")] == ["load", "clean"]
    finally:
        second.close()


def test_downgrade_to_base_then_upgrade_to_head(store: MetadataStore) -> None:
    run, jobs = make_run("r1")
    store.add_pipeline_run(run, jobs)

    alembic(store, "downgrade", "base")
    assert store.table_names() == ["alembic_version"]
    assert versions(store) == []

    alembic(store, "upgrade", "head")
    assert store.table_names() == TABLES
    assert versions(store) == [HEAD]
    assert store.pipeline_runs() == []  # downgrade dropped the data
    store.add_pipeline_run(*make_run("r2"))
    assert [r.id for r in store.pipeline_runs()] == ["r2"]


# pipeline runs and job runs ------------------------------------------------------------------
def test_record_and_update_a_run(store: MetadataStore) -> None:
    run, jobs = make_run("20260102T030405Z-abc123")
    store.add_pipeline_run(run, jobs)

    stored = store.pipeline_run("20260102T030405Z-abc123")
    assert stored.status == "running"
    assert stored.trigger == "manual"
    assert stored.record_dir == "/runs/shop/20260102T030405Z-abc123"
    assert stored.ended_at is None and stored.duration_seconds is None and stored.error is None
    assert as_utc(stored.started_at) == T0
    assert [(j.job, j.status, j.rows_written) for j in store.job_runs(run.id)] == [
        ("load", "pending", None),
        ("clean", "pending", None),
    ]

    job_end = T0 + timedelta(seconds=3, microseconds=5)
    result = {
        "job": "load",
        "rows_written": 42,
        "dq": [{"rule": "id_unique", "passed": True, "rows_failing": 0}],
        "watermark_after": None,
        "ratio": 0.25,
        "note": "café ☕",
    }
    store.update_job_run(
        run.id,
        "load",
        status=str(RunStatus.SUCCEEDED),
        started_at=T0,
        ended_at=job_end,
        duration_seconds=3.0,
        rows_read=50,
        rows_written=42,
        quarantined_rows=3,
        deduplicated_rows=5,
        dropped_rows=0,
        watermark_before="2026-01-01",
        watermark_after="2026-01-02",
        table_version=7,
        notebook_path="/runs/shop/x/load.ipynb",
        result=result,
    )
    store.update_job_run(run.id, "clean", status=str(RunStatus.FAILED), error="boom\nline two")
    run_end = T0 + timedelta(minutes=1)
    store.update_pipeline_run(
        run.id, status=str(RunStatus.FAILED), ended_at=run_end, duration_seconds=60.0, error="x"
    )

    stored = store.pipeline_run(run.id)
    assert (stored.status, stored.duration_seconds, stored.error) == ("failed", 60.0, "x")
    assert as_utc(stored.ended_at) == run_end
    load, clean = store.job_runs(run.id)
    assert load.status == "succeeded"
    assert as_utc(load.started_at) == T0
    assert as_utc(load.ended_at) == job_end
    assert (load.rows_read, load.rows_written, load.quarantined_rows) == (50, 42, 3)
    assert (load.deduplicated_rows, load.dropped_rows, load.table_version) == (5, 0, 7)
    assert (load.watermark_before, load.watermark_after) == ("2026-01-01", "2026-01-02")
    assert load.notebook_path == "/runs/shop/x/load.ipynb"
    assert load.result == result
    assert (clean.status, clean.error, clean.result) == ("failed", "boom\nline two", None)


def test_update_of_unknown_run_raises(store: MetadataStore) -> None:
    with pytest.raises(RunNotFoundError, match="nope"):
        store.update_pipeline_run("nope", status="failed")


def test_pipeline_runs_newest_first_and_filtered(store: MetadataStore) -> None:
    store.add_pipeline_run(*make_run("a-old", "shop", T0))
    store.add_pipeline_run(*make_run("b-new", "shop", T0 + timedelta(hours=2)))
    store.add_pipeline_run(*make_run("c-mid", "other", T0 + timedelta(hours=1)))

    assert [r.id for r in store.pipeline_runs()] == ["b-new", "c-mid", "a-old"]
    assert [r.id for r in store.pipeline_runs("shop")] == ["b-new", "a-old"]
    assert [r.id for r in store.pipeline_runs("other")] == ["c-mid"]
    assert store.pipeline_runs("missing") == []
    assert [r.id for r in store.pipeline_runs(limit=2)] == ["b-new", "c-mid"]
    assert [r.id for r in store.pipeline_runs("shop", limit=1)] == ["b-new"]


def test_pipeline_run_by_unique_prefix(store: MetadataStore) -> None:
    for run_id in ("20260101T000000Z-aaa111", "20260101T000000Z-aaa222", "20260102T000000Z-bbb"):
        store.add_pipeline_run(*make_run(run_id))

    assert store.pipeline_run("20260102").id == "20260102T000000Z-bbb"
    assert store.pipeline_run("20260101T000000Z-aaa1").id == "20260101T000000Z-aaa111"
    assert store.pipeline_run("20260101T000000Z-aaa222").id == "20260101T000000Z-aaa222"

    for unknown in ("20991231", "20260101T000000Z-aaa"):  # no match; ambiguous prefix
        with pytest.raises(RunNotFoundError) as caught:
            store.pipeline_run(unknown)
        message = str(caught.value)
        assert f"`{unknown}`" in message
        assert "lakebook runs" in message


def test_exact_id_wins_over_longer_ids_sharing_it_as_prefix(store: MetadataStore) -> None:
    store.add_pipeline_run(*make_run("run-1"))
    store.add_pipeline_run(*make_run("run-10"))
    assert store.pipeline_run("run-1").id == "run-1"


def test_job_runs_keep_planned_order(store: MetadataStore) -> None:
    planned = ("zeta", "alpha", "mid", "beta")
    store.add_pipeline_run(*make_run("r1", jobs=planned))
    store.add_pipeline_run(*make_run("r2", jobs=("other",)))
    store.update_job_run("r1", "mid", status="succeeded")  # updates do not reorder
    assert tuple(j.job for j in store.job_runs("r1")) == planned
    assert [j.job for j in store.job_runs("r2")] == ["other"]
    assert store.job_runs("missing") == []


def test_deleting_a_run_cascades_to_its_job_runs(store: MetadataStore) -> None:
    store.add_pipeline_run(*make_run("r1", jobs=("a", "b", "c")))
    store.add_pipeline_run(*make_run("r2", jobs=("a",)))
    assert count(store, JobRun) == 4

    with store.engine.begin() as connection:
        connection.execute(delete(PipelineRun).where(PipelineRun.id == "r1"))
    assert store.job_runs("r1") == []
    assert count(store, JobRun) == 1

    with store.session() as session:  # through the ORM as well
        session.delete(session.get(PipelineRun, "r2"))
    assert count(store, JobRun) == 0
    assert count(store, PipelineRun) == 0


# watermark ledger ----------------------------------------------------------------------------
def watermark(job: str, before: str | None, after: str, run_id: str, rows: int) -> WatermarkEntry:
    return WatermarkEntry(
        pipeline="shop",
        job=job,
        run_id=run_id,
        column="updated_at",
        value_before=before,
        value_after=after,
        rows=rows,
        committed_at=T0 + timedelta(days=rows),
    )


def test_watermark_ledger(store: MetadataStore) -> None:
    assert store.current_watermark("shop", "orders") is None
    assert store.watermark_history("shop", "orders") == []

    store.add_watermark(watermark("orders", None, "2026-01-01", "r1", 1))
    assert store.current_watermark("shop", "orders") == "2026-01-01"
    store.add_watermark(watermark("customers", None, "2030-01-01", "r1", 9))
    store.add_watermark(watermark("orders", "2026-01-01", "2026-01-05", "r2", 2))
    store.add_watermark(watermark("orders", "2026-01-05", "2026-01-03", "r3", 3))

    # The latest entry wins, even when its value sorts lower than an earlier one.
    assert store.current_watermark("shop", "orders") == "2026-01-03"
    assert store.current_watermark("shop", "customers") == "2030-01-01"
    assert store.current_watermark("other", "orders") is None
    history = store.watermark_history("shop", "orders")
    assert [(e.run_id, e.value_before, e.value_after, e.rows) for e in history] == [
        ("r1", None, "2026-01-01", 1),
        ("r2", "2026-01-01", "2026-01-05", 2),
        ("r3", "2026-01-05", "2026-01-03", 3),
    ]
    assert {e.column for e in history} == {"updated_at"}
    assert [as_utc(e.committed_at) for e in history] == [T0 + timedelta(days=n) for n in (1, 2, 3)]


# data-quality results ------------------------------------------------------------------------
def dq(run_id: str, dataset: str, rule: str, failing: int) -> DQResult:
    return DQResult(
        run_id=run_id,
        pipeline="shop",
        job=dataset.split(".")[-1],
        dataset=dataset,
        rule=rule,
        check_type="unique",
        severity="error",
        action="fail",
        rows_checked=10,
        rows_failing=failing,
        passed=failing == 0,
        checked_at=T0,
    )


def test_dq_results_append_and_filter(store: MetadataStore) -> None:
    assert store.dq_results() == []
    store.add_dq_results([dq("r1", "silver.orders", "id_unique", 0), dq("r1", "silver.c", "x", 1)])
    store.add_dq_results([dq("r2", "silver.orders", "id_unique", 2)])  # same rule, new run

    everything = store.dq_results()
    assert [(r.run_id, r.dataset, r.rule) for r in everything] == [
        ("r2", "silver.orders", "id_unique"),
        ("r1", "silver.c", "x"),
        ("r1", "silver.orders", "id_unique"),
    ]
    assert [r.rule for r in store.dq_results(run_id="r1")] == ["x", "id_unique"]
    orders = store.dq_results(dataset="silver.orders")
    assert [(r.run_id, r.rows_failing, r.passed) for r in orders] == [
        ("r2", 2, False),
        ("r1", 0, True),
    ]
    assert [r.run_id for r in store.dq_results(run_id="r2", dataset="silver.orders")] == ["r2"]
    assert store.dq_results(run_id="r2", dataset="silver.c") == []
    assert store.dq_results(run_id="missing") == []
    assert {as_utc(r.checked_at) for r in everything} == {T0}
    assert all(isinstance(r.passed, bool) for r in everything)


# end to end ----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.postgres
def test_demo_pipeline_records_runs_in_postgresql(
    workspace_dir: Path, postgres: PostgresServer
) -> None:
    from lakebook.workspace import Workspace

    url = postgres.create_database("lakebook_e2e_demo")
    with (workspace_dir / "jupyter_config.py").open("a", encoding="utf-8") as config:
        config.write(f'\nc.Lakebook.metadata_url = "{url}"\n')

    workspace = Workspace.open(workspace_dir)
    assert workspace.metadata_url == url
    try:
        summary = workspace.run("jaffle_shop")
    finally:
        workspace.store.close()
    assert summary.status == RunStatus.SUCCEEDED, summary.as_dict()
    assert not (workspace_dir / ".lakebook" / "metadata.db").exists()

    store = MetadataStore(url)
    try:
        assert store.engine.dialect.name == "postgresql"
        run = store.pipeline_run(summary.run_id)
        assert (run.pipeline, run.status) == ("jaffle_shop", "succeeded")
        assert run.duration_seconds == summary.duration_seconds
        assert [r.id for r in store.pipeline_runs("jaffle_shop")] == [summary.run_id]

        job_runs = store.job_runs(summary.run_id)
        assert len(job_runs) == len(summary.jobs) == 8
        assert [j.job for j in job_runs] == [line.job for line in summary.jobs]
        written = {line.job: line.rows_written for line in summary.jobs}
        assert {j.job: j.rows_written for j in job_runs} == written
        assert all(isinstance(n, int) and n > 0 for n in written.values())
        assert {j.status for j in job_runs} == {"succeeded"}
        assert all(j.result and j.result.get("rows_written") == j.rows_written for j in job_runs)
        assert store.dq_results(run_id=summary.run_id)  # the demo's DQ rules were recorded
    finally:
        store.close()
