"""Replaying quarantined rows through the current rules after a fix (`Workspace.replay_quarantine`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from lakebook.replay import LEDGER_FOLDER, NothingQuarantinedError
from lakebook.runtime import JobContext
from lakebook.transform import run_dataset_job
from lakebook.workspace import Workspace
from tests.conftest import write_pipeline
from tests.test_ingest import assert_accounting, ingest

PIPELINE = """
name: shop
ingest_jobs:
  - name: orders
    source_type: local_path
    config: {file: {path: data/orders.csv}}
    schema_mode: user
    user_schema:
      - {name: id, type: integer, nullable: false}
      - {name: status, type: string}
      - {name: amount, type: AMOUNT_TYPE}
    error_handling: quarantine
    quarantine_path: quarantine/orders
    max_invalid_ratio: 0.9
dataset_jobs:
  - name: clean_orders
    layer: silver
    inputs: [{dataset: bronze.orders, alias: o}]
    sql_text: SELECT id, status, amount FROM o
    data_quality:
      - name: known_status
        check_type: accepted_values
        column: status
        values: [STATUSES]
        action_on_violation: quarantine
"""
ORDERS = "id,status,amount\n1,placed,10\n2,returned,20\n3,placed,3000000000\n4,returned,40\n"


def workspace(root: Path, amount_type: str = "integer", statuses: str = "placed") -> Workspace:
    text = PIPELINE.replace("AMOUNT_TYPE", amount_type).replace("STATUSES", statuses)
    folder = write_pipeline(root, "shop", text)
    (folder / "data").mkdir(exist_ok=True)
    return Workspace.open(root)


def context(ws: Workspace, run_id: str) -> JobContext:
    return JobContext.open(str(ws.root), "shop", run_id, "2026-11-30")


def run_ingest(ws: Workspace, run_id: str, csv: str = ORDERS) -> None:
    (ws.root / "pipelines" / "shop" / "data" / "orders.csv").write_text(csv)
    result, _ = ingest(context(ws, run_id), ws.pipeline("shop").ingest_jobs[0], None)
    assert_accounting(result)


def table(ws: Workspace, relative: str) -> list[dict[str, Any]]:
    rows = DeltaTable(str(ws.lake.root / relative)).to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda row: (str(row.get("_run_id")), str(row.get("id"))))


def test_dataset_job_rows_land_once_after_the_rule_is_fixed(empty_workspace: Path) -> None:
    ws = workspace(empty_workspace, amount_type="bigint")
    run_ingest(ws, "run-1")
    result, _ = run_dataset_job(context(ws, "run-2"), ws.pipeline("shop").dataset_jobs[0])
    assert (result.rows_written, result.quarantined_rows) == (2, 2)

    ws = workspace(empty_workspace, amount_type="bigint", statuses="placed, returned")
    summary = ws.replay_quarantine("silver.clean_orders")
    assert (summary.rows_replayed, summary.rows_accepted, summary.rows_still_failing) == (2, 2, 0)
    assert summary.table_version == 1
    assert sorted(row["id"] for row in ws.read("silver.clean_orders").to_pylist()) == [1, 2, 3, 4]
    ledger = table(ws, f"quarantine/silver/clean_orders/{LEDGER_FOLDER}")
    assert [row["_outcome"] for row in ledger] == ["accepted", "accepted"]
    assert {row["_replay_id"] for row in ledger} == {summary.replay_id}
    assert len(table(ws, "quarantine/silver/clean_orders")) == 2  # history kept as it was

    again = ws.replay_quarantine("silver.clean_orders")
    assert (again.rows_replayed, again.rows_accepted, again.table_version) == (0, 0, 1)
    assert ws.read("silver.clean_orders").num_rows == 4


def test_rows_still_failing_stay_quarantined_with_their_new_reason(empty_workspace: Path) -> None:
    ws = workspace(empty_workspace, amount_type="bigint")
    run_ingest(ws, "run-1")
    run_dataset_job(context(ws, "run-2"), ws.pipeline("shop").dataset_jobs[0])
    ws = workspace(empty_workspace, amount_type="bigint", statuses="placed, shipped")
    summary = ws.replay_quarantine("silver.clean_orders")
    assert (summary.rows_accepted, summary.rows_still_failing, summary.table_version) == (0, 2, 0)
    rows = table(ws, "quarantine/silver/clean_orders")
    again = [row for row in rows if row["_run_id"] == summary.replay_id]
    assert [row["id"] for row in again] == [2, 4]
    assert len(rows) == 4  # the originals stay
    assert again[-1]["_reason"] == "known_status: `status` is not one of placed, shipped"
    # The copies are the open rows now: the next replay takes them, not the originals.
    assert ws.replay_quarantine("silver.clean_orders").rows_replayed == 2


def test_ingest_rows_are_accepted_once_user_schema_is_fixed(empty_workspace: Path) -> None:
    ws = workspace(empty_workspace, amount_type="integer")
    run_ingest(ws, "run-1")  # 3000000000 does not fit an integer: row 3 is quarantined
    (quarantined,) = table(ws, "quarantine/orders")
    assert quarantined["_reason"] == "column `amount`: cannot read '3000000000' as integer"

    ws = workspace(empty_workspace, amount_type="bigint")
    summary = ws.replay_quarantine("bronze.orders")
    # Bronze still has INTEGER amounts: the row waits for Bronze to take the new type.
    assert (summary.rows_accepted, summary.rows_still_failing) == (0, 1)
    (requarantined,) = [r for r in table(ws, "quarantine/orders") if r["_run_id"] != "run-1"]
    assert "does not fit Bronze's type INTEGER" in requarantined["_reason"]

    run_ingest(ws, "run-2", "id,status,amount\n5,placed,50\n")  # the next snapshot, typed bigint
    summary = ws.replay_quarantine("bronze.orders")
    assert (summary.rows_replayed, summary.rows_accepted, summary.rows_still_failing) == (1, 1, 0)
    bronze = table(ws, "bronze/orders")
    assert [(row["id"], row["amount"], row["_run_id"]) for row in bronze] == [
        (3, 3000000000, summary.replay_id),
        (5, 50, "run-2"),
    ]
    assert bronze[0]["_source_file"].endswith("orders.csv") and bronze[0]["dt"] == bronze[1]["dt"]
    assert ws.replay_quarantine("bronze.orders").rows_replayed == 0


def test_replay_errors_name_the_problem(empty_workspace: Path) -> None:
    ws = workspace(empty_workspace)
    with pytest.raises(NothingQuarantinedError, match=r"No pipeline writes dataset `silver.nope`"):
        ws.replay_quarantine("silver.nope")
    with pytest.raises(
        NothingQuarantinedError, match=r"`silver.clean_orders` has nothing quarantined"
    ):
        ws.replay_quarantine("silver.clean_orders")


def test_dq_replay_command_reports_the_outcome(empty_workspace: Path) -> None:
    import json

    from click.testing import CliRunner

    from lakebook.cli import main

    ws = workspace(empty_workspace)
    run_ingest(ws, "r1")
    run_dataset_job(context(ws, "r2"), ws.pipeline("shop").dataset_jobs[0])
    workspace(empty_workspace, statuses="placed, returned")  # the rule is fixed
    runner = CliRunner()
    done = runner.invoke(
        main, ["-w", str(empty_workspace), "dq", "replay", "silver.clean_orders", "--json"]
    )
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert (summary["rows_replayed"], summary["rows_accepted"]) == (2, 2)
    again = runner.invoke(main, ["-w", str(empty_workspace), "dq", "replay", "silver.clean_orders"])
    assert again.exit_code == 0 and "Replayed 0 quarantined row(s)" in again.output
    unknown = runner.invoke(main, ["-w", str(empty_workspace), "dq", "replay", "gold.nothing"])
    assert unknown.exit_code == 2 and "gold.nothing" in unknown.output
