"""DQ result history for every run, incidents (open → acknowledged → resolved) and `lakebook dq`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

from lakebook.cli import main
from lakebook.errors import IncidentNotFoundError, IncidentStatusError
from lakebook.metadata import DQResult, IncidentStatus, MetadataStore
from lakebook.results import RuleOutcome
from lakebook.runs import action_taken
from tests.conftest import write_pipeline

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(metadata_url: str) -> MetadataStore:
    opened = MetadataStore(metadata_url)
    yield opened  # type: ignore[misc]
    opened.close()


def violation(
    run_id: str,
    rule: str = "amount_range",
    failing: int = 3,
    *,
    job: str = "orders",
    minutes: int = 0,
    observed: float | None = None,
    committed: bool = True,
    passed: bool = False,
) -> DQResult:
    return DQResult(
        run_id=run_id,
        pipeline="shop",
        job=job,
        dataset=f"silver.{job}",
        rule=rule,
        check_type="range",
        severity="warn",
        action="warn",
        rows_checked=10,
        rows_failing=failing,
        passed=passed,
        checked_at=T0 + timedelta(minutes=minutes),
        failure_rate=failing / 10,
        duration_ms=1.5,
        observed_value=observed,
        rows_fixed=0,
        action_taken="none" if passed else "warn",
        committed=committed,
    )


def record(store: MetadataStore, result: DQResult, sample: list[dict[str, object]]) -> int:
    store.add_dq_results([result])
    return store.record_violation(result, sample, "slack:#data").id


# store level -----------------------------------------------------------------------------------
def test_results_keep_every_metric_and_filter(store: MetadataStore) -> None:
    store.add_dq_results([violation("r1", observed=4.0), violation("r2", failing=0, passed=True)])
    store.add_dq_results([violation("r3", job="customers")])
    newest = store.dq_results(limit=2)
    assert [row.run_id for row in newest] == ["r3", "r2"]
    first = store.dq_results(run_id="r1")[0]
    assert (first.failure_rate, first.duration_ms, first.observed_value) == (0.3, 1.5, 4.0)
    assert (first.action_taken, first.committed, first.rows_fixed) == ("warn", True, 0)
    assert first.as_dict()["checked_at"] == T0.isoformat()
    assert [row.run_id for row in store.dq_results(dataset="silver.customers")] == ["r3"]


def test_previous_values_come_from_the_latest_committed_run(store: MetadataStore) -> None:
    assert store.previous_observed_values("silver.orders", ["total"]) == {}
    store.add_dq_results(
        [
            violation("r1", "total", observed=100.0),
            violation("r2", "total", observed=110.0),
            violation("r3", "total", observed=900.0, committed=False),  # the job failed
            violation("r3", "no_value", observed=None),
        ]
    )
    values = store.previous_observed_values("silver.orders", ["total", "no_value", "other"])
    assert values == {"total": 110.0}
    assert store.previous_observed_values("silver.customers", ["total"]) == {}


def test_violations_open_then_update_one_incident(store: MetadataStore) -> None:
    first = record(store, violation("r1", failing=3), [{"id": 1}, {"id": 2}])
    again = record(store, violation("r2", failing=5, minutes=5), [{"id": 9}])
    other_rule = record(store, violation("r2", "id_not_null", failing=1), [])
    assert again == first and other_rule != first

    incident = store.incident(first)
    assert incident.status == IncidentStatus.OPEN
    assert (incident.opened_run_id, incident.last_run_id) == ("r1", "r2")
    assert (incident.occurrences, incident.rows_failing, incident.failure_rate) == (2, 5, 0.5)
    assert incident.sample == [{"id": 9}]
    assert (incident.action_taken, incident.notification) == ("warn", "slack:#data")
    assert incident.opened_at == T0 and incident.updated_at == T0 + timedelta(minutes=5)
    assert [item.id for item in store.incidents(status="open")] == [other_rule, first]
    assert store.incidents(dataset="silver.customers") == []


def test_status_moves_forward_only_and_resolved_stays_history(store: MetadataStore) -> None:
    first = record(store, violation("r1"), [])
    with pytest.raises(IncidentStatusError, match="needs one"):
        store.acknowledge_incident(first)
    acknowledged = store.acknowledge_incident(first, "ana")
    assert (acknowledged.status, acknowledged.owner) == ("acknowledged", "ana")
    assert acknowledged.acknowledged_at is not None
    assert store.acknowledge_incident(first).owner == "ana"  # keeps the existing owner
    assert store.acknowledge_incident(first, "bo").owner == "bo"

    # An acknowledged incident is still the one a new violation updates.
    assert record(store, violation("r2"), []) == first
    assert store.incident(first).occurrences == 2

    resolved = store.resolve_incident(first, "bad upstream export, fixed")
    assert (resolved.status, resolved.note) == ("resolved", "bad upstream export, fixed")
    assert resolved.resolved_at is not None
    with pytest.raises(IncidentStatusError, match="cannot go back to acknowledged"):
        store.acknowledge_incident(first, "ana")
    with pytest.raises(IncidentStatusError, match="already resolved"):
        store.resolve_incident(first)

    reopened = record(store, violation("r3"), [{"id": 3}])
    assert reopened != first
    assert store.incident(reopened).occurrences == 1
    assert store.incident(reopened).opened_run_id == "r3"
    assert store.incident(first).status == "resolved"
    assert [item.id for item in store.incidents(status="resolved")] == [first]
    assert [item.id for item in store.incidents()] == [reopened, first]


def test_unknown_incident_and_status_are_clear_errors(store: MetadataStore) -> None:
    with pytest.raises(IncidentNotFoundError, match="No data-quality incident 42"):
        store.incident(42)
    with pytest.raises(IncidentNotFoundError):
        store.resolve_incident(42)
    with pytest.raises(IncidentStatusError, match="`closed` is not an incident status"):
        store.incidents(status="closed")


def test_action_taken_names_what_happened() -> None:
    def outcome(passed: bool, action: str, fixed: int = 0) -> RuleOutcome:
        return RuleOutcome("r", "range", "warn", action, 10, 0 if passed else 2, passed,
                           rows_fixed=fixed)  # fmt: skip

    assert action_taken(outcome(True, "drop"), job_failed=False) == "none"
    assert action_taken(outcome(True, "warn", fixed=2), job_failed=False) == "auto_fix"
    assert action_taken(outcome(False, "quarantine"), job_failed=False) == "quarantine"
    assert action_taken(outcome(False, "quarantine"), job_failed=True) == "not_applied"
    assert action_taken(outcome(False, "fail"), job_failed=True) == "fail"


# end to end ------------------------------------------------------------------------------------
PIPELINE = """
name: shop
dataset_jobs:
  - name: people
    layer: silver
    inputs: [{dataset: bronze.people_raw, alias: p}]
    sql_text: SELECT id, name, age FROM p
    data_quality:
      - {name: age_range, check_type: range, column: age, min: 0, max: 120,
         severity: warn, action_on_violation: warn, sample_size: 2}
      - {name: id_not_null, check_type: not_null, column: id, severity: error,
         action_on_violation: fail}
      - {name: row_growth, check_type: metric_change, metric: count(*), max_change_pct: 50,
         severity: critical, action_on_violation: fail}
      - {name: info_only, check_type: range, column: age, max: 10, severity: info,
         action_on_violation: warn}
"""


def lakebook(workspace: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--workspace", str(workspace), *args], catch_exceptions=False)


@pytest.mark.slow
def test_runs_record_results_and_incidents_failed_runs_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakebook.workspace import Workspace

    monkeypatch.setenv("COLUMNS", "250")  # rich tables at full width, no ellipsis

    workspace = Workspace.init(tmp_path / "ws")
    write_pipeline(workspace.root, "shop", PIPELINE)

    def load(ids: list[int | None], ages: list[int]) -> None:
        table = pa.table(
            {
                "id": pa.array(ids, pa.int64()),
                "name": [f"p{i}" for i in range(len(ids))],
                "age": pa.array(ages, pa.int64()),
            }
        )
        workspace.lake.write_table(workspace.lake.table_path("bronze.people_raw"), table,
                                   mode="overwrite")  # fmt: skip

    # Run 1: three ages out of range (warn), 5 rows, no previous row count: succeeds.
    load([1, 2, 3, 4, 5], [30, -1, 200, 300, 40])
    first = workspace.run("shop")
    assert first.status == "succeeded", first.job("people").error
    # Run 2: a null id fails the job; 6 rows (+20%) is within the allowed change.
    load([1, 2, 3, 4, 5, None], [30, -1, 200, 300, 40, 50])
    second = workspace.run("shop")
    assert second.status == "failed"
    assert "DataQualityError" in str(second.job("people").error)

    by_run = {
        run.run_id: {row.rule: row for row in workspace.dq_results(run=run.run_id)}
        for run in (first, second)
    }
    assert set(by_run[second.run_id]) == {"age_range", "id_not_null", "row_growth", "info_only"}
    failed = by_run[second.run_id]
    assert (failed["id_not_null"].passed, failed["id_not_null"].rows_failing) == (False, 1)
    assert failed["id_not_null"].action_taken == "fail"
    assert failed["age_range"].action_taken == "not_applied"
    assert failed["id_not_null"].committed is False
    assert failed["row_growth"].observed_value == 6.0 and failed["row_growth"].passed
    assert by_run[first.run_id]["age_range"].failure_rate == pytest.approx(0.6)
    assert by_run[first.run_id]["age_range"].committed is True

    incidents = {item.rule: item for item in workspace.incidents()}
    assert set(incidents) == {"age_range", "id_not_null"}  # info never opens one
    ages = incidents["age_range"]
    assert (ages.occurrences, ages.opened_run_id, ages.last_run_id) == (
        2,
        first.run_id,
        second.run_id,
    )
    assert ages.status == "open" and ages.severity == "warn"
    assert len(ages.sample or []) == 2  # bounded by the rule's sample_size
    assert incidents["id_not_null"].sample == [{"id": None, "name": "p5", "age": 50}]

    # Run 3: 20 rows against 5 in the last committed run (+300%): metric_change fails it.
    load(list(range(20)), [30] * 20)
    third = workspace.run("shop")
    assert third.status == "failed"
    growth = {row.rule: row for row in workspace.dq_results(run=third.run_id)}["row_growth"]
    assert (growth.passed, growth.observed_value) == (False, 20.0)
    assert "previous 5" in str(growth.message)
    workspace.store.close()

    root = workspace.root
    listed = lakebook(root, "dq", "results", "--run", third.run_id[:18])
    assert listed.exit_code == 0, listed.output
    assert "row_growth" in listed.output and "FAIL" in listed.output
    as_json = json.loads(lakebook(root, "dq", "results", "--dataset", "silver.people",
                                  "--json", "--limit", "3").stdout)  # fmt: skip
    assert len(as_json) == 3 and {row["run_id"] for row in as_json} == {third.run_id}

    table = lakebook(root, "dq", "incidents", "--status", "open")
    assert "age_range" in table.output and "id_not_null" in table.output
    detail = lakebook(root, "dq", "incident", str(ages.id))
    assert detail.exit_code == 0
    assert "Sample of failing rows (2)" in detail.output and "age" in detail.output
    refused = lakebook(root, "dq", "ack", str(ages.id))
    assert refused.exit_code == 2 and "needs one" in refused.output
    assert "acknowledged by ana" in lakebook(root, "dq", "ack", str(ages.id), "-o", "ana").output
    assert "resolved" in lakebook(root, "dq", "resolve", str(ages.id), "--note", "ok").output
    again = lakebook(root, "dq", "resolve", str(ages.id))
    assert again.exit_code == 2 and "already resolved" in again.output
    missing = lakebook(root, "dq", "incident", "999")
    assert missing.exit_code == 2 and "No data-quality incident 999" in missing.output
