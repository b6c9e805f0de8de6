"""Ingest-level data quality: Bronze rules before the commit, layer defaults, the Landing check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from pydantic import ValidationError

from lakebook.dq import DataQualityError
from lakebook.errors import IngestError
from lakebook.specs import IngestJob
from tests.test_ingest import assert_accounting, bronze_rows, ingest, make_context, source

CSV = b"id,status,amount\n1,placed, 10\n2,PLACED,20\n3,lost,30\n4,shipped,x\n"
SCHEMA = [
    {"name": "id", "type": "integer", "nullable": False},
    {"name": "status", "type": "string"},
    {"name": "amount", "type": "double"},
]
STATUS_RULE = {
    "name": "known_status",
    "check_type": "accepted_values",
    "column": "status",
    "values": ["placed", "shipped"],
}


def job(workspace: Path, *, rules: list[dict[str, Any]], **fields: Any) -> IngestJob:
    path = source(workspace, "orders.csv", CSV)
    base: dict[str, Any] = {
        "name": "things",
        "source_type": "local_path",
        "config": {"file": {"path": path}},
        "schema_mode": "user",
        "user_schema": SCHEMA,
        "max_invalid_ratio": 0.9,
        "data_quality": rules,
    }
    return IngestJob.model_validate({**base, **fields})


def quarantine(workspace: Path) -> list[dict[str, Any]]:
    table = DeltaTable(str(workspace / "lake" / "quarantine" / "things")).to_pyarrow_table()
    return sorted(table.to_pylist(), key=lambda row: row["_source_row"])


def test_rules_quarantine_by_default_when_the_job_quarantines(empty_workspace: Path) -> None:
    spec = job(
        empty_workspace,
        rules=[{**STATUS_RULE, "auto_fix": {"type": "lower"}}],
        error_handling="quarantine",
        quarantine_path="quarantine/things",
    )
    assert spec.data_quality[0].action_on_violation == "quarantine"
    result, _ = ingest(make_context(empty_workspace), spec, None)
    assert_accounting(result)
    # Row 4 fails the cast, row 3 the rule; row 2 is fixed (lower-cased) and kept.
    assert (result.rows_read, result.rows_written, result.quarantined_rows) == (4, 2, 2)
    assert [(row["id"], row["status"]) for row in bronze_rows(empty_workspace)] == [
        (1, "placed"),
        (2, "placed"),
    ]
    rows = quarantine(empty_workspace)
    assert [(row["_source_row"], row["id"], row["status"]) for row in rows] == [
        (3, "3", "lost"),
        (4, "4", "shipped"),
    ]
    assert rows[0]["_reason"].startswith("known_status: `status` is not one of placed")
    assert "cannot read 'x' as double" in rows[1]["_reason"]
    (outcome,) = result.dq
    assert (outcome.rule, outcome.scope, outcome.rows_failing, outcome.rows_fixed) == (
        "known_status",
        "ingest",
        1,
        1,
    )


def test_rules_fail_the_job_by_default_and_nothing_is_written(empty_workspace: Path) -> None:
    spec = job(empty_workspace, rules=[STATUS_RULE], user_schema=SCHEMA[:2])
    assert spec.data_quality[0].action_on_violation == "fail"
    with pytest.raises(DataQualityError, match=r"rule `known_status` \(accepted_values\): 2 of 4"):
        ingest(make_context(empty_workspace), spec, None)
    assert not (empty_workspace / "lake" / "bronze" / "things").exists()


def test_a_table_rule_on_bronze_rows_fails_the_job(empty_workspace: Path) -> None:
    rule = {"name": "enough", "check_type": "row_count", "min": 10}
    spec = job(empty_workspace, rules=[rule], user_schema=SCHEMA[:2])
    with pytest.raises(DataQualityError, match="rule `enough`"):
        ingest(make_context(empty_workspace), spec, None)


def test_passing_rules_take_the_full_path_and_load_everything(empty_workspace: Path) -> None:
    spec = job(empty_workspace, rules=[{**STATUS_RULE, "action_on_violation": "warn"}])
    spec = spec.model_copy(update={"user_schema": None, "schema_mode": "infer"})
    result, _ = ingest(make_context(empty_workspace), spec, None)
    assert_accounting(result)
    assert (result.rows_read, result.rows_written, result.quarantined_rows) == (4, 4, 0)
    assert [outcome.rows_failing for outcome in result.dq] == [2]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action_on_violation": "drop"}, "cannot `drop`"),
        ({"action_on_violation": "quarantine"}, "`quarantine` needs `error_handling: quarantine`"),
        ({"scope": "silver"}, "have scope `ingest`"),
    ],
)
def test_rule_settings_an_ingest_job_rejects(
    empty_workspace: Path, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        job(empty_workspace, rules=[{**STATUS_RULE, **fields}])


def test_an_empty_source_file_fails_the_job_naming_it(empty_workspace: Path) -> None:
    path = source(empty_workspace, "empty.csv", b"")
    spec = IngestJob.model_validate(
        {"name": "things", "source_type": "local_path", "config": {"file": {"path": path}}}
    )
    with pytest.raises(IngestError, match=r"source file\(s\) `landing/.*/empty.csv` are empty"):
        ingest(make_context(empty_workspace), spec, None)
