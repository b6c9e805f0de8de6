"""Data-quality rules on a DuckDB table: one pass, counts per rule, drop, warn and fail."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from pydantic import ValidationError

from lakebook.dq import (
    DataQualityError,
    DQReport,
    DQRuleError,
    evaluate,
    reference_name,
    referenced_datasets,
)
from lakebook.results import RuleOutcome
from lakebook.specs import DQRule
from tests.dataset_jobs import dataset_job, open_context, put, rows, run


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE output AS SELECT * FROM (VALUES "
        "(1, 'placed', 10.0), (2, 'shipped', -5.0), (2, 'bogus', 3.0), (NULL, 'placed', 1.0)"
        ") AS t(id, status, amount)"
    )
    return connection


def rule(**fields: object) -> DQRule:
    return DQRule.model_validate({"severity": "warn", "action_on_violation": "warn", **fields})


def test_counts_per_rule_in_one_pass(con: duckdb.DuckDBPyConnection) -> None:
    report = evaluate(
        con,
        "output",
        [
            rule(name="id_present", check_type="not_null", column="id"),
            rule(name="id_unique", check_type="unique", column="id"),
            rule(
                name="known",
                check_type="accepted_values",
                column="status",
                values=["placed", "shipped"],
            ),
            rule(name="positive", check_type="range", column="amount", min=0),
            rule(name="enough", check_type="row_count", min=5),
        ],
        "job",
    )
    failing = {outcome.rule: outcome.rows_failing for outcome in report.outcomes}
    assert failing == {"id_present": 1, "id_unique": 2, "known": 1, "positive": 1, "enough": 4}
    assert report.dropped_rows == 0
    assert all(outcome.rows_checked == 4 for outcome in report.outcomes)


def test_drop_removes_only_failing_rows(con: duckdb.DuckDBPyConnection) -> None:
    report = evaluate(
        con,
        "output",
        [
            rule(
                name="positive",
                check_type="range",
                column="amount",
                min=0,
                action_on_violation="drop",
            ),
            rule(name="id_present", check_type="not_null", column="id", action_on_violation="drop"),
        ],
        "job",
    )
    assert report.dropped_rows == 2
    assert sorted(con.sql("SELECT id, amount FROM output").fetchall()) == [(1, 10.0), (2, 3.0)]


def test_blocking_rule_fails_naming_rule_and_counts(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(DataQualityError, match=r"rule `positive` \(range\): 1 of 4 rows fail"):
        evaluate(
            con,
            "output",
            [
                rule(
                    name="positive",
                    check_type="range",
                    column="amount",
                    min=0,
                    severity="error",
                    action_on_violation="fail",
                )
            ],
            "orders",
        )


def by_rule(report: DQReport) -> dict[str, RuleOutcome]:
    return {outcome.rule: outcome for outcome in report.outcomes}


def test_every_check_type_on_one_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE __dq_ref_silver__customers AS SELECT 1 AS id")
    con.execute("ALTER TABLE output ADD COLUMN customer INTEGER DEFAULT 1")
    con.execute("UPDATE output SET customer = 9 WHERE status = 'bogus'")
    report = evaluate(
        con,
        "output",
        [
            rule(name="st", check_type="regex", column="status", pattern="[a-z]+ed"),
            rule(
                name="fk",
                check_type="relationships",
                column="customer",
                to="silver.customers",
                field="id",
            ),
            rule(name="pred", check_type="custom_predicate", condition="amount < 5 OR id = 1"),
            rule(
                name="bad",
                check_type="custom_sql",
                condition="SELECT * FROM output WHERE amount > 2",
            ),
            rule(
                name="open",
                check_type="range",
                column="amount",
                min=-5,
                max=10,
                min_inclusive=False,
                max_inclusive=False,
            ),
            rule(name="total", check_type="metric_threshold", metric="sum(amount)", max=5),
            rule(
                name="cols",
                check_type="schema",
                columns_expected={"id": "integer", "status": "string", "gone": "date"},
            ),
        ],
        "job",
        layer="silver",
    )
    found = by_rule(report)
    failing = {name: outcome.rows_failing for name, outcome in found.items()}
    assert failing == {"st": 1, "fk": 1, "pred": 0, "bad": 2, "open": 2, "total": 4, "cols": 4}
    assert found["total"].observed_value == 9.0 and not found["total"].passed
    assert found["cols"].message == "`gone` is missing" and not found["cols"].passed
    assert found["st"].samples == [{"id": 2, "status": "bogus", "amount": 3.0, "customer": 9}]
    assert found["open"].failure_rate == 0.5 and found["open"].scope == "silver"
    assert found["pred"].passed and found["pred"].samples == []


def test_unique_reports_rows_and_duplicated_values_and_ignores_null_keys() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE output AS SELECT * FROM (VALUES (1), (1), (1), (2), (2), (3), "
        "(NULL), (NULL)) AS t(id)"
    )
    report = evaluate(con, "output", [rule(name="u", check_type="unique", column="id")], "job")
    outcome = report.outcomes[0]
    assert (outcome.rows_failing, outcome.observed_value) == (5, 2.0)


def test_row_count_per_day_counts_empty_days() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE output AS SELECT * FROM (VALUES (DATE '2024-01-01'), "
        "(DATE '2024-01-01'), (DATE '2024-01-03')) AS t(day)"
    )
    outcome = evaluate(
        con, "output", [rule(name="daily", check_type="row_count", date_column="day", min=2)], "j"
    ).outcomes[0]
    assert not outcome.passed and outcome.observed_value == 2.0 and outcome.rows_failing == 1
    assert outcome.samples == [{"day": "2024-01-02", "rows": 0}, {"day": "2024-01-03", "rows": 1}]


def test_freshness_uses_the_run_time() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE output AS SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' AS at")
    con.execute("SET VARIABLE run_time = TIMESTAMPTZ '2024-01-02 06:00:00+00'")
    fresh = rule(name="fresh", check_type="freshness", column="at", max_age="1 day")
    outcome = evaluate(con, "output", [fresh], "j").outcomes[0]
    assert not outcome.passed and outcome.observed_value == 30 * 3600
    looser = fresh.model_copy(update={"max_age": "2 days"})
    assert evaluate(con, "output", [looser], "j").outcomes[0].passed


def test_metric_change_against_the_previous_value(con: duckdb.DuckDBPyConnection) -> None:
    change = rule(name="chg", check_type="metric_change", metric="sum(amount)", max_change_pct=10)
    first = evaluate(con, "output", [change], "j").outcomes[0]
    assert first.passed and "no previous value" in first.message and first.observed_value == 9.0
    assert evaluate(con, "output", [change], "j", previous={"chg": 8.5}).outcomes[0].passed
    moved = evaluate(con, "output", [change], "j", previous={"chg": 5.0}).outcomes[0]
    assert not moved.passed and "80.00%" in moved.message
    absolute = change.model_copy(update={"max_change": 1.0, "max_change_pct": None})
    assert not evaluate(con, "output", [absolute], "j", previous={"chg": 7.0}).outcomes[0].passed


def test_quarantine_keeps_each_row_once_with_every_failing_rule(
    con: duckdb.DuckDBPyConnection,
) -> None:
    report = evaluate(
        con,
        "output",
        [
            rule(name="id_present", check_type="not_null", column="id", action_on_violation="drop"),
            rule(
                name="positive",
                check_type="range",
                column="amount",
                min=0,
                action_on_violation="quarantine",
            ),
            rule(
                name="id_unique", check_type="unique", column="id", action_on_violation="quarantine"
            ),
            rule(
                name="known",
                check_type="accepted_values",
                column="status",
                values=["placed", "shipped"],
            ),
        ],
        "job",
        run_id="run-7",
    )
    assert (report.dropped_rows, report.quarantined_rows) == (1, 2)
    assert con.sql("SELECT id, status FROM output").fetchall() == [(1, "placed")]
    quarantined = con.sql(
        f"SELECT id, status, _rules, _reason, _run_id FROM {report.quarantine_table} ORDER BY amount"
    ).fetchall()
    assert quarantined == [
        (
            2,
            "shipped",
            "positive,id_unique",
            "positive: `amount` is outside [0, inf); id_unique: (`id`) is not unique",
            "run-7",
        ),
        (
            2,
            "bogus",
            "id_unique,known",
            "id_unique: (`id`) is not unique; known: `amount` is not one of placed, shipped".replace(
                "`amount`", "`status`"
            ),
            "run-7",
        ),
    ]


def test_fail_blocks_whatever_the_severity(con: duckdb.DuckDBPyConnection) -> None:
    blocking = rule(
        name="has_rows", check_type="row_count", min=10, severity="info", action_on_violation="fail"
    )
    with pytest.raises(
        DataQualityError,
        match=r"rule `has_rows` \(row_count\): 4 row\(s\), "
        r"expected >= 10",
    ) as raised:
        evaluate(con, "output", [blocking], "job")
    assert raised.value.outcomes[0].rule == "has_rows"
    assert con.sql("SELECT count(*) FROM output").fetchall() == [(4,)]


def test_auto_fix_changes_failing_rows_then_checks_again() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE VIEW output AS SELECT * FROM (VALUES (' placed', NULL), ('SHIPPED', 2), "
        "('placed', 3)) AS t(status, qty)"
    )
    report = evaluate(
        con,
        "output",
        [
            rule(
                name="trimmed",
                check_type="regex",
                column="status",
                pattern="\\S+",
                auto_fix={"type": "trim"},
            ),
            rule(
                name="known",
                check_type="accepted_values",
                column="status",
                values=["placed", "shipped"],
                auto_fix={"type": "lower"},
            ),
            rule(
                name="qty_set",
                check_type="not_null",
                column="qty",
                auto_fix={"type": "default", "value": 0},
            ),
        ],
        "job",
    )
    found = by_rule(report)
    assert [(o.rows_fixed, o.passed) for o in found.values()] == [(1, True)] * 3
    assert sorted(con.sql("SELECT * FROM output").fetchall()) == [
        ("placed", 0),
        ("placed", 3),
        ("shipped", 2),
    ]


def test_a_broken_rule_is_named(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(DQRuleError, match=r"rule `ghost` .*`column`"):
        evaluate(
            con,
            "output",
            [
                rule(name="id_present", check_type="not_null", column="id"),
                rule(name="ghost", check_type="not_null", column="nope"),
            ],
            "job",
        )
    with pytest.raises(DQRuleError, match=r"rule `m` .*`metric`"):
        evaluate(
            con,
            "output",
            [rule(name="m", check_type="metric_threshold", metric="sum(nope)", min=0)],
            "job",
        )


def test_referenced_datasets_are_listed_once() -> None:
    fk = {"check_type": "relationships", "column": "c", "to": "silver.customers", "field": "id"}
    rules = [
        rule(name="a", **fk),
        rule(name="b", **fk),
        rule(name="c", check_type="not_null", column="x"),
    ]
    assert referenced_datasets(rules) == ["silver.customers"]
    assert reference_name("silver.customers") == "__dq_ref_silver__customers"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"check_type": "regex", "column": "s"}, "rule `r`: `pattern` is required for `regex`"),
        ({"check_type": "regex", "column": "s", "pattern": "("}, "`pattern` is not a regex"),
        ({"check_type": "relationships", "column": "c", "to": "silver.x"}, "`field` is required"),
        ({"check_type": "freshness", "column": "at"}, "`max_age` is required"),
        ({"check_type": "freshness", "column": "at", "max_age": "soon"}, "`max_age` `soon`"),
        ({"check_type": "custom_sql"}, "`condition` is required for `custom_sql`"),
        (
            {"check_type": "custom_sql", "condition": "SELECT 1", "action_on_violation": "drop"},
            "cannot `drop` rows",
        ),
        (
            {
                "check_type": "schema",
                "action_on_violation": "quarantine",
                "columns_expected": {"a": "int"},
            },
            "cannot `quarantine` rows",
        ),
        ({"check_type": "metric_threshold", "metric": "sum(a)"}, "`min`, `max` or both"),
        ({"check_type": "metric_change", "metric": "sum(a)"}, "`max_change`, `max_change_pct`"),
        ({"check_type": "unique", "column": "a", "auto_fix": {"type": "trim"}}, "`auto_fix`"),
        (
            {"check_type": "not_null", "column": "a", "auto_fix": {"type": "default"}},
            "`auto_fix.value` is required",
        ),
        (
            {"check_type": "not_null", "column": "a", "auto_fix": {"type": "cast"}},
            "`auto_fix.to_type` is required",
        ),
    ],
)
def test_rule_validation_names_rule_and_field(fields: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(expected)):
        DQRule.model_validate({"name": "r", **fields})


def test_quarantined_rows_are_appended_to_the_quarantine_table(tmp_path: Path) -> None:
    context = open_context(tmp_path / "ws", run_id="run-1")
    put(context, "bronze.src", [{"id": 1, "amount": 5}, {"id": 2, "amount": -1}])
    job = dataset_job(
        inputs=[{"dataset": "bronze.src"}],
        sql_text="SELECT * FROM src",
        data_quality=[
            {
                "name": "positive",
                "check_type": "range",
                "column": "amount",
                "min": 0,
                "action_on_violation": "quarantine",
            }
        ],
    )
    result = run(context, job)
    assert (result.rows_written, result.quarantined_rows) == (1, 1)
    assert rows(context, "silver.t") == [(1, 5)]
    quarantine = context.lake.open_table(tmp_path / "ws" / "lake" / "quarantine" / "silver" / "t")
    assert quarantine.to_pyarrow_table().select(["id", "_rules", "_run_id"]).to_pylist() == [
        {"id": 2, "_rules": "positive", "_run_id": "run-1"}
    ]


def test_relationships_read_the_referenced_dataset_in_a_job(tmp_path: Path) -> None:
    context = open_context(tmp_path / "ws")
    put(context, "bronze.customers", [{"id": 1}])
    put(context, "bronze.orders", [{"id": 10, "customer": 1}, {"id": 11, "customer": 2}])
    job = dataset_job(
        inputs=[{"dataset": "bronze.orders"}],
        sql_text="SELECT * FROM orders",
        data_quality=[
            {
                "name": "known_customer",
                "check_type": "relationships",
                "column": "customer",
                "to": "bronze.customers",
                "field": "id",
                "action_on_violation": "drop",
            }
        ],
    )
    result = run(context, job)
    assert (result.rows_written, result.dropped_rows) == (1, 1)
    assert result.dq[0].samples == [{"id": 11, "customer": 2}]
