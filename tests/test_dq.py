"""Data-quality rules on a DuckDB table: one pass, counts per rule, drop, warn and fail."""

from __future__ import annotations

import duckdb
import pytest

from lakebook.dq import DataQualityError, evaluate
from lakebook.specs import DQRule


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
    outcomes, dropped = evaluate(
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
    failing = {outcome.rule: outcome.rows_failing for outcome in outcomes}
    assert failing == {"id_present": 1, "id_unique": 2, "known": 1, "positive": 1, "enough": 4}
    assert dropped == 0 and all(outcome.rows_checked == 4 for outcome in outcomes)


def test_drop_removes_only_failing_rows(con: duckdb.DuckDBPyConnection) -> None:
    _, dropped = evaluate(
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
    assert dropped == 2
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
