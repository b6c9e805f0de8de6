"""Pipeline runs through real kernels: DAG order, parallelism, records, failures, results."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import nbformat
import pytest

from lakebook.metadata import RunStatus
from lakebook.runs import RunSummary
from lakebook.workspace import Workspace
from tests.conftest import JAFFLE_DATA, REPO, write_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, RunSummary]:
    """The demo pipeline run once on the embedded defaults, shared by the tests below."""
    import shutil

    root = tmp_path_factory.mktemp("demo") / "ws"
    root.mkdir()
    shutil.copy(REPO / "jupyter_config.py", root / "jupyter_config.py")
    shutil.copytree(REPO / "pipelines", root / "pipelines")
    workspace = Workspace.open(root)
    return workspace, workspace.run("jaffle_shop")


def test_demo_runs_end_to_end(demo_run: tuple[Workspace, RunSummary]) -> None:
    _, summary = demo_run
    assert summary.status == RunStatus.SUCCEEDED, [job.error for job in summary.jobs]
    order = [job.job for job in summary.jobs]
    assert order[0] == "raw_customers"  # the reference ingest comes first
    assert order.index("orders") > max(order.index("raw_orders"), order.index("raw_payments"))
    assert set(order[-2:]) == {"daily_revenue", "monthly_revenue"}  # gold last
    assert summary.job("raw_orders").rows_written == 99
    assert summary.job("raw_payments").rows_written == 113


def test_demo_reference_ingest_finishes_before_other_jobs_start(
    demo_run: tuple[Workspace, RunSummary],
) -> None:
    _, summary = demo_run
    reference_end = datetime.fromisoformat(str(summary.job("raw_customers").ended_at))
    for job in summary.jobs[1:]:
        assert datetime.fromisoformat(str(job.started_at)) >= reference_end


def test_demo_gold_matches_plain_duckdb_over_the_raw_files(
    demo_run: tuple[Workspace, RunSummary],
) -> None:
    workspace, _ = demo_run
    expected = duckdb.sql(
        f"""
        WITH orders AS (
            SELECT o.id, o.user_id, o.order_date, o.status, coalesce(sum(p.amount), 0) / 100.0 AS amount
            FROM read_csv('{JAFFLE_DATA / "raw_orders.csv"}') o
            LEFT JOIN read_csv('{JAFFLE_DATA / "raw_payments.csv"}') p ON p.order_id = o.id
            GROUP BY ALL
        )
        SELECT order_date, count(*) AS orders, count(DISTINCT user_id) AS customers,
               sum(amount) AS revenue
        FROM orders WHERE status NOT IN ('returned', 'return_pending')
        GROUP BY order_date ORDER BY order_date
        """
    ).fetchall()
    actual = workspace.query(
        "SELECT order_date, orders, customers, revenue FROM gold.daily_revenue ORDER BY order_date"
    )
    assert [tuple(row.values()) for row in actual.to_pylist()] == [
        (day, orders, customers, pytest.approx(revenue))
        for day, orders, customers, revenue in expected
    ]


def test_demo_monthly_metrics_match_plain_duckdb(demo_run: tuple[Workspace, RunSummary]) -> None:
    workspace, _ = demo_run
    expected = duckdb.sql(
        f"""
        WITH orders AS (
            SELECT o.id, o.user_id, o.order_date, o.status, coalesce(sum(p.amount), 0) / 100.0 AS amount
            FROM read_csv('{JAFFLE_DATA / "raw_orders.csv"}') o
            LEFT JOIN read_csv('{JAFFLE_DATA / "raw_payments.csv"}') p ON p.order_id = o.id
            GROUP BY ALL
        )
        SELECT date_trunc('month', order_date)::DATE, status, count(*), count(DISTINCT user_id),
               sum(amount), sum(amount) / count(*)
        FROM orders GROUP BY ALL ORDER BY 1, 2
        """
    ).fetchall()
    actual = workspace.query(
        "SELECT month, status, orders, customers, revenue, revenue_per_order "
        "FROM gold.monthly_revenue ORDER BY month, status"
    )
    assert [tuple(row.values()) for row in actual.to_pylist()] == [
        (month, status, n, c, pytest.approx(revenue), pytest.approx(per_order))
        for month, status, n, c, revenue, per_order in expected
    ]


def test_demo_customer_dimension_has_one_current_version_per_customer(
    demo_run: tuple[Workspace, RunSummary],
) -> None:
    workspace, _ = demo_run
    rows = workspace.query(
        "SELECT count(*) AS versions, count_if(is_current) AS current, "
        "count(DISTINCT id) AS customers, count_if(effective_to IS NULL) AS open "
        "FROM silver.dim_customers"
    ).to_pylist()
    raw = duckdb.sql(f"SELECT count(*) FROM read_csv('{JAFFLE_DATA / 'raw_customers.csv'}')")
    customers = raw.fetchall()[0][0]
    assert rows == [
        {"versions": customers, "current": customers, "customers": customers, "open": customers}
    ]


def test_demo_run_record_holds_run_json_and_every_notebook(
    demo_run: tuple[Workspace, RunSummary],
) -> None:
    workspace, summary = demo_run
    record = Path(summary.record_dir)
    assert record.parent == workspace.root / "runs" / "jaffle_shop"
    run_json = json.loads((record / "run.json").read_text())
    assert run_json["status"] == "succeeded"
    assert {job["job"] for job in run_json["jobs"]} == {job.job for job in summary.jobs}
    for job in summary.jobs:
        notebook = nbformat.read(record / f"{job.job}.ipynb", as_version=4)
        outputs = json.dumps([cell.get("outputs", []) for cell in notebook.cells])
        assert "application/vnd.lakebook.result+json" in outputs
        assert "rows_written" in outputs
    bronze = nbformat.read(record / "raw_orders.ipynb", as_version=4)
    text = json.dumps([cell.get("outputs", []) for cell in bronze.cells])
    assert "order_date" in text and "date32" in text  # schema shown
    # a finished record is read-only: its notebooks are what the run did
    for path in record.iterdir():
        assert not path.stat().st_mode & 0o222, path
    assert "return_pending" in text or "completed" in text  # sample rows shown


def test_demo_run_is_indexed_in_the_metadata_db(demo_run: tuple[Workspace, RunSummary]) -> None:
    workspace, summary = demo_run
    run, jobs = workspace.show(summary.run_id)
    assert run.status == "succeeded" and run.duration_seconds and run.trigger == "manual"
    by_job = {job.job: job for job in jobs}
    assert by_job["raw_payments"].rows_written == 113
    assert by_job["orders"].notebook_path.endswith("orders.ipynb")
    results = workspace.store.dq_results(run_id=summary.run_id)
    assert {result.rule for result in results} >= {"order_id_unique", "status_known", "has_rows"}
    assert all(result.passed for result in results)


FAILING = """
name: failing
ingest_jobs:
  - name: good
    source_type: local_path
    format: csv
    config: {file: {path: data/good.csv}}
  - name: broken
    source_type: local_path
    format: csv
    schema_mode: user
    user_schema: [{name: missing_column, type: integer}]
    config: {file: {path: data/good.csv}}
dataset_jobs:
  - name: after_broken
    layer: silver
    inputs: [{dataset: bronze.broken}]
    sql_text: SELECT * FROM broken
  - name: after_good
    layer: silver
    inputs: [{dataset: bronze.good}]
    sql_text: SELECT id FROM good
"""


def test_failing_job_skips_downstream_and_keeps_its_notebook(empty_workspace: Path) -> None:
    folder = write_pipeline(empty_workspace, "failing", FAILING)
    (folder / "data").mkdir()
    (folder / "data" / "good.csv").write_text("id\n1\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakebook.cli",
            "-w",
            str(empty_workspace),
            "run",
            "failing",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    status = {job["job"]: job["status"] for job in summary["jobs"]}
    assert status == {
        "good": "succeeded",
        "broken": "failed",
        "after_broken": "skipped",
        "after_good": "succeeded",
    }
    broken = next(job for job in summary["jobs"] if job["job"] == "broken")
    assert "IngestError" in broken["error"] and "`missing_column`" in broken["error"]
    assert "IngestError" in result.stderr  # the failing cell's error is shown
    notebook = nbformat.read(broken["record"], as_version=4)
    assert any(
        output.get("output_type") == "error" and output.get("ename") == "IngestError"
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
    run_json = json.loads((Path(summary["record_dir"]) / "run.json").read_text())
    assert run_json["status"] == "failed"
    skipped = next(job for job in run_json["jobs"] if job["job"] == "after_broken")
    assert "upstream job `broken` failed" in skipped["error"]


PARALLEL = """
name: parallel
ingest_jobs:
{jobs}
"""


def test_independent_jobs_run_in_parallel_bounded_by_max_parallel_jobs(
    empty_workspace: Path,
) -> None:
    jobs = "\n".join(
        f"  - {{name: job{i}, source_type: local_path, format: csv, "
        f"config: {{file: {{path: data/a.csv}}}}}}"
        for i in range(3)
    )
    folder = write_pipeline(empty_workspace, "parallel", PARALLEL.format(jobs=jobs))
    (folder / "data").mkdir()
    (folder / "data" / "a.csv").write_text("id\n1\n")
    summary = Workspace.open(empty_workspace).run("parallel")
    assert summary.status == RunStatus.SUCCEEDED
    intervals = [
        (datetime.fromisoformat(str(j.started_at)), datetime.fromisoformat(str(j.ended_at)))
        for j in summary.jobs
    ]
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running, peak = 0, 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    assert peak == 2  # max_parallel_jobs = 2 in the default config


def test_no_secret_reaches_the_record(
    empty_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    monkeypatch.setenv("WAREHOUSE_PASSWORD", secret)
    config = empty_workspace / "jupyter_config.py"
    config.write_text(
        config.read_text()
        + "\nc.Lakebook.connections = {'warehouse': {'url': 'postgresql://u@h/db', "
        "'password_env': 'WAREHOUSE_PASSWORD'}}\n"
    )
    folder = write_pipeline(
        empty_workspace,
        "secretive",
        "name: secretive\ningest_jobs:\n  - {name: a, source_type: local_path, format: csv, "
        "config: {file: {path: data/a.csv}}}\n",
    )
    (folder / "data").mkdir()
    (folder / "data" / "a.csv").write_text("id\n1\n")
    summary = Workspace.open(empty_workspace).run("secretive")
    assert summary.status == RunStatus.SUCCEEDED
    for path in (empty_workspace / "runs").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def test_papermill_cli_runs_a_pipeline_through_the_pipeline_run_template(
    workspace_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "scheduled.ipynb"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(REPO / "templates" / "pipeline_run.ipynb"),
            str(output),
            "-p",
            "pipeline",
            "jaffle_shop",
            "-p",
            "workspace",
            str(workspace_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runs = Workspace.open(workspace_dir).runs("jaffle_shop")
    assert len(runs) == 1 and runs[0].status == "succeeded" and runs[0].trigger == "schedule"


def test_missing_kernel_fails_the_run_with_a_clear_message(empty_workspace: Path) -> None:
    config = empty_workspace / "jupyter_config.py"
    config.write_text(config.read_text() + "\nc.Lakebook.kernel_name = 'no-such-kernel'\n")
    folder = write_pipeline(
        empty_workspace,
        "lonely",
        "name: lonely\ningest_jobs:\n  - {name: a, source_type: local_path, format: csv, "
        "config: {file: {path: data/a.csv}}}\n",
    )
    (folder / "data").mkdir()
    (folder / "data" / "a.csv").write_text("id\n1\n")
    workspace = Workspace.open(empty_workspace)
    summary = workspace.run("lonely")
    assert summary.status == RunStatus.FAILED
    assert "no Jupyter kernel named `no-such-kernel`" in str(summary.job("a").error)
    assert workspace.show(summary.run_id)[0].status == "failed"
