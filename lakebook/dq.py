"""Data-quality rules compiled to SQL and evaluated by DuckDB over a job's output before commit.

Row-level rules are evaluated in one pass: each becomes a boolean flag column of one query.
"""

from __future__ import annotations

import duckdb

from lakebook.errors import LakebookError
from lakebook.results import RuleOutcome
from lakebook.specs import DQRule
from lakebook.sql import quote_identifier as q
from lakebook.sql import quote_literal

BLOCKING_SEVERITIES = ("error", "critical")


class DataQualityError(LakebookError):
    """A blocking rule failed; nothing was committed."""


def failing_row_predicate(rule: DQRule) -> str:
    """SQL that is true for a row that violates a row-level rule."""
    if rule.check_type == "not_null":
        return f"{q(str(rule.column))} IS NULL"
    if rule.check_type == "accepted_values":
        values = ", ".join(quote_literal(value) for value in rule.values)
        return f"({q(str(rule.column))} IS NOT NULL AND {q(str(rule.column))} NOT IN ({values}))"
    if rule.check_type == "range":
        column = q(str(rule.column))
        parts = []
        if rule.min is not None:
            parts.append(f"{column} < {rule.min!r}")
        if rule.max is not None:
            parts.append(f"{column} > {rule.max!r}")
        return f"({column} IS NOT NULL AND ({' OR '.join(parts)}))"
    if rule.check_type == "unique":
        keys = ", ".join(q(column) for column in rule.key_columns)
        return f"(count(*) OVER (PARTITION BY {keys}) > 1)"
    raise ValueError(f"{rule.check_type} is not a row-level check")


def evaluate(
    con: duckdb.DuckDBPyConnection, table: str, rules: list[DQRule], job: str
) -> tuple[list[RuleOutcome], int]:
    """Evaluate `rules` on `table`; drop rows for `drop` rules; raise if a blocking rule fails.

    Returns the outcomes and the number of rows dropped.
    """
    if not rules:
        return [], 0
    row_rules = [rule for rule in rules if rule.check_type != "row_count"]
    flags = [f"{failing_row_predicate(rule)} AS __rule_{i}" for i, rule in enumerate(row_rules)]
    flagged = f"SELECT *{''.join(', ' + f for f in flags)} FROM {table}"
    counts = "".join(f", coalesce(count_if(__rule_{i}), 0)" for i in range(len(row_rules)))
    # One pass computes every row-level rule's count; nothing is materialised unless rows drop.
    row = con.sql(f"SELECT count(*){counts} FROM ({flagged})").fetchall()[0]
    total = int(row[0])
    outcomes = []
    for i, rule in enumerate(row_rules):
        failing = int(row[i + 1])
        outcomes.append(_outcome(rule, total, failing))
    for rule in rules:
        if rule.check_type == "row_count":
            too_few = rule.min is not None and total < rule.min
            too_many = rule.max is not None and total > rule.max
            outcomes.append(_outcome(rule, total, total if (too_few or too_many) else 0))

    blocking = [
        outcome
        for outcome in outcomes
        if not outcome.passed
        and outcome.action == "fail"
        and outcome.severity in BLOCKING_SEVERITIES
    ]
    if blocking:
        details = "; ".join(
            f"rule `{o.rule}` ({o.check_type}): {o.rows_failing} of {o.rows_checked} rows fail"
            for o in blocking
        )
        raise DataQualityError(
            f"Job `{job}`: data-quality check failed, nothing was committed: {details}. "
            "Fix the data or the rule; the previous table version is unchanged."
        )

    dropped = 0
    drop_flags = [
        f"__rule_{i}" for i, rule in enumerate(row_rules) if rule.action_on_violation == "drop"
    ]
    if drop_flags:
        keep = " AND ".join(f"NOT {flag}" for flag in drop_flags)
        before = total
        columns = ", ".join(q(name) for (name, *_rest) in con.sql(f"DESCRIBE {table}").fetchall())
        con.execute(f"CREATE TABLE __kept AS SELECT {columns} FROM ({flagged}) WHERE {keep}")
        is_view = con.sql(
            f"SELECT count(*) FROM duckdb_views() WHERE view_name = {quote_literal(table)}"
        ).fetchall()[0][0]
        con.execute(f"DROP {'VIEW' if is_view else 'TABLE'} {table}")
        con.execute(f"ALTER TABLE __kept RENAME TO {table}")
        dropped = before - int(con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    return outcomes, dropped


def _outcome(rule: DQRule, checked: int, failing: int) -> RuleOutcome:
    return RuleOutcome(
        rule=rule.name,
        check_type=rule.check_type,
        severity=rule.severity,
        action=rule.action_on_violation,
        rows_checked=checked,
        rows_failing=failing,
        passed=failing == 0,
    )
