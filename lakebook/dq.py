"""Data-quality rules compiled to SQL and evaluated by DuckDB over a job's output before commit.

Order of work in `evaluate`:

1. `auto_fix`: each fixable rule's fix is applied to its failing rows (a `cast` converts the whole
   column, a column has one type) and the changed rows are counted; the rule is then checked again
   on the fixed data like every other rule.
2. One pass: every row-level rule becomes a boolean flag column of ONE query that also computes
   the metrics (`metric_threshold`, `metric_change`), the freshness age and the row count; there
   is no scan per rule. Table-level checks that need another shape (`row_count` per day,
   `custom_sql`, `schema`) run their own small query. A `unique` rule joins its duplicated keys
   (one hash aggregate) rather than a window over every row. When no rule drops or quarantines,
   the pass keeps only the rows failing some rule, and the per-rule counts and samples are read
   from those rows (the row count and metrics from a plain aggregate): no second scan.
3. Samples: when a row-level rule fails, up to `sample_size` failing rows are kept as dicts.
4. `fail`: any failing rule whose action is `fail` raises `DataQualityError` (whatever its
   severity) before anything is removed or written.
5. `drop` / `quarantine`: rows failing such a rule leave the table. Quarantined rows are kept in
   the DuckDB table `QUARANTINE_TABLE` (the row's columns plus `_rules`, `_reason`, `_run_id`,
   `_quarantined_at`), one row per source row listing every row-level rule it fails; a row failing
   both a `drop` and a `quarantine` rule is quarantined, never lost. The job writes that table
   (see `lakebook.transform`) BEFORE committing the dataset: if the dataset commit then fails,
   the quarantine keeps rows tagged with the failed run's `_run_id` (a replay can skip them), but
   no row can vanish from both tables.

Null semantics follow dbt: `accepted_values`, `range`, `regex` and `relationships` ignore nulls
(that is `not_null`'s job), `unique` ignores rows whose key has a null, and a `custom_predicate`
that evaluates to NULL holds (as an SQL CHECK constraint). `unique` reports as `rows_failing` the
ROWS whose key appears more than once (each of them violates the rule and would be dropped or
quarantined) and as `observed_value` the number of duplicated key VALUES, which is the failure
count of dbt's `unique` test. Whole-table checks report `rows_failing = rows_checked` when they
fail and 0 when they pass.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import duckdb

from lakebook.errors import LakebookError
from lakebook.results import RuleOutcome
from lakebook.specs import ROW_LEVEL_CHECKS, DQRule
from lakebook.sql import quote_identifier as q
from lakebook.sql import quote_literal

QUARANTINE_TABLE = "__dq_quarantine"
QUARANTINE_COLUMNS = ("_rules", "_reason", "_run_id", "_quarantined_at")
ROW_ALIAS = "__dq_t"
METRIC_CHECKS = ("metric_threshold", "metric_change")
TYPE_ALIASES = {
    "string": "VARCHAR",
    "text": "VARCHAR",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "float": "DOUBLE",
    "decimal": "DECIMAL",
    "bool": "BOOLEAN",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMP WITH TIME ZONE",
}


class DataQualityError(LakebookError):
    """A rule whose action is `fail` found violations; nothing was committed."""

    def __init__(self, message: str, outcomes: list[RuleOutcome] | None = None) -> None:
        super().__init__(message)
        self.outcomes = outcomes or []


class DQRuleError(LakebookError):
    """A rule's SQL (condition, metric, column, pattern…) cannot run on the checked table."""


@dataclass
class DQReport:
    """What `evaluate` found and did: outcomes per rule, rows removed, quarantined rows."""

    outcomes: list[RuleOutcome] = field(default_factory=list)
    dropped_rows: int = 0
    quarantined_rows: int = 0
    quarantine_table: str | None = None  # DuckDB table of quarantined rows, when there are some


def referenced_datasets(rules: list[DQRule]) -> list[str]:
    """Datasets the rules read besides the checked table (`relationships` targets), in order."""
    found: list[str] = []
    for rule in rules:
        if rule.check_type == "relationships" and rule.to and rule.to not in found:
            found.append(rule.to)
    return found


def reference_name(dataset: str) -> str:
    """The DuckDB name a referenced dataset must be registered under before rules run."""
    return "__dq_ref_" + dataset.replace(".", "__")


def quarantine_location(layer: str, name: str) -> str:
    """Lake-relative folder of a dataset's quarantine table: `quarantine/<layer>/<name>`."""
    return f"quarantine/{layer}/{name}"


def failing_row_predicate(rule: DQRule) -> str:
    """SQL, over the checked table aliased `ROW_ALIAS`, true for a row violating a row-level rule."""
    column = q(str(rule.column))
    if rule.check_type == "not_null":
        return f"({column} IS NULL)"
    if rule.check_type == "accepted_values":
        values = ", ".join(quote_literal(value) for value in rule.values)
        return f"({column} IS NOT NULL AND {column} NOT IN ({values}))"
    if rule.check_type == "range":
        parts = []
        if rule.min is not None:
            parts.append(f"{column} {'<' if rule.min_inclusive else '<='} {rule.min!r}")
        if rule.max is not None:
            parts.append(f"{column} {'>' if rule.max_inclusive else '>='} {rule.max!r}")
        return f"({column} IS NOT NULL AND ({' OR '.join(parts)}))"
    if rule.check_type == "regex":
        pattern = quote_literal(str(rule.pattern))
        return (
            f"({column} IS NOT NULL AND NOT regexp_full_match(CAST({column} AS VARCHAR), "
            f"{pattern}))"
        )
    if rule.check_type == "relationships":
        parent = q(reference_name(str(rule.to)))
        return (
            f"({ROW_ALIAS}.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {parent} AS __dq_p "
            f"WHERE __dq_p.{q(str(rule.field))} = {ROW_ALIAS}.{column}))"
        )
    if rule.check_type == "custom_predicate":
        return f"(NOT coalesce(({rule.condition}), TRUE))"
    if rule.check_type == "unique":
        keys = [q(key) for key in rule.key_columns]
        present = " AND ".join(f"{key} IS NOT NULL" for key in keys)
        return f"({present} AND count(*) OVER (PARTITION BY {', '.join(keys)}) > 1)"
    raise ValueError(f"rule `{rule.name}`: {rule.check_type} is not a row-level check")


def reason(rule: DQRule) -> str:
    """A short human reason a row fails `rule`, stored in the quarantine's `_reason`."""
    column = f"`{rule.column}`"
    if rule.check_type == "not_null":
        text = f"{column} is null"
    elif rule.check_type == "unique":
        text = f"({', '.join(f'`{key}`' for key in rule.key_columns)}) is not unique"
    elif rule.check_type == "accepted_values":
        text = f"{column} is not one of {', '.join(str(value) for value in rule.values)}"
    elif rule.check_type == "range":
        low = (
            "(-inf" if rule.min is None else ("[" if rule.min_inclusive else "(") + f"{rule.min:g}"
        )
        high = (
            "inf)" if rule.max is None else f"{rule.max:g}" + ("]" if rule.max_inclusive else ")")
        )
        text = f"{column} is outside {low}, {high}"
    elif rule.check_type == "regex":
        text = f"{column} does not match `{rule.pattern}`"
    elif rule.check_type == "relationships":
        text = f"{column} has no match in `{rule.to}`.`{rule.field}`"
    else:
        text = f"`{rule.condition}` does not hold"
    return f"{rule.name}: {text}"


def evaluate(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rules: list[DQRule],
    job: str,
    *,
    layer: str | None = None,
    run_id: str = "",
    checked_at: datetime | None = None,
    previous: dict[str, float] | None = None,
) -> DQReport:
    """Check `rules` on `table`, fix, drop and quarantine rows in place; raise on `fail` rules.

    `previous` maps a `metric_change` rule's name to its value in the previous run; without it
    the rule passes with a note. Referenced datasets must be registered (`reference_name`).
    """
    if not rules:
        return DQReport()
    checked_at = checked_at or datetime.now(timezone.utc)
    fixed = {rule.name: _apply_auto_fix(con, table, rule, job) for rule in rules if rule.auto_fix}
    row_rules = [rule for rule in rules if rule.row_level]
    pass_rules = [rule for rule in rules if rule.check_type in (*METRIC_CHECKS, "freshness")]
    flagged = _flagged_query(table, row_rules)
    counts = ["count(*)"]
    for i, rule in enumerate(row_rules):
        counts.append(f"coalesce(count_if(__rule_{i}), 0)")
        if rule.check_type == "unique":
            keys = ", ".join(q(key) for key in rule.key_columns)
            counts.append(f"count(DISTINCT ({keys})) FILTER (WHERE __rule_{i})")
        else:
            counts.append("NULL")
    measures = ["count(*)", *(f"CAST(({_pass_expression(r)}) AS DOUBLE)" for r in pass_rules)]
    # Without drop/quarantine rules the one pass keeps just the rows failing some rule (their
    # samples come from them, with no second scan) and the counts are taken from those rows.
    early = bool(row_rules) and not any(
        r.action_on_violation in ("drop", "quarantine") for r in row_rules
    )
    started = time.perf_counter()
    # One pass computes every row-level rule's count and every metric.
    try:
        if early:
            any_rule = " OR ".join(f"__rule_{i}" for i in range(len(row_rules)))
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE __dq_flagged AS "
                f"SELECT * FROM ({flagged}) WHERE {any_rule}"
            )
            measured = con.sql(f"SELECT {', '.join(measures)} FROM {q(table)}").fetchall()[0]
            flag_counts = con.sql(f"SELECT {', '.join(counts)} FROM __dq_flagged").fetchall()[0]
            row = (measured[0], *flag_counts[1:], *measured[1:])
        else:
            aggregates = [*counts, *measures[1:]]
            row = con.sql(f"SELECT {', '.join(aggregates)} FROM ({flagged})").fetchall()[0]
    except duckdb.Error as error:
        if early:
            con.execute("DROP TABLE IF EXISTS __dq_flagged")
        raise _rule_error(con, table, rules, job, error) from error
    pass_ms = (time.perf_counter() - started) * 1000
    total = int(row[0])
    outcomes: dict[str, RuleOutcome] = {}
    for i, rule in enumerate(row_rules):
        failing, duplicated = int(row[1 + 2 * i]), row[2 + 2 * i]
        observed = float(duplicated) if duplicated is not None else None
        outcomes[rule.name] = _outcome(rule, layer, total, failing, pass_ms, observed=observed)
    metrics = row[1 + 2 * len(row_rules) :]
    for rule, value in zip(pass_rules, metrics, strict=True):
        observed = None if value is None else float(value)
        outcomes[rule.name] = _judge_pass_rule(rule, layer, total, observed, pass_ms, previous)
    for rule in rules:
        if rule.name in outcomes:
            continue
        started = time.perf_counter()
        try:
            outcome = _table_check(con, table, rule, layer, total)
        except duckdb.Error as error:
            raise _rule_error(con, table, [rule], job, error) from error
        outcome.duration_ms = (time.perf_counter() - started) * 1000
        outcomes[rule.name] = outcome
    for name, count in fixed.items():
        outcomes[name].rows_fixed = count
        outcomes[name].message = _join(outcomes[name].message, f"auto_fix changed {count} row(s)")

    failing_row_rules = [
        (i, rule) for i, rule in enumerate(row_rules) if not outcomes[rule.name].passed
    ]
    removing = [
        (i, r) for i, r in failing_row_rules if r.action_on_violation in ("drop", "quarantine")
    ]
    columns = [str(name) for (name, *_rest) in con.sql(f"DESCRIBE {q(table)}").fetchall()]
    if failing_row_rules:
        source = "__dq_flagged"
        if early:
            pass  # the one pass already kept the failing rows
        elif removing:  # the kept rows come from it too: materialise every row once
            con.execute(f"CREATE OR REPLACE TEMP TABLE {source} AS {flagged}")
        else:  # samples only: keep just the failing rows
            any_failing = " OR ".join(f"__rule_{i}" for i, _ in failing_row_rules)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {source} AS "
                f"SELECT * FROM ({flagged}) WHERE {any_failing}"
            )
        selected = ", ".join(q(name) for name in columns)
        for i, rule in failing_row_rules:
            if rule.sample_size:
                sample = con.sql(
                    f"SELECT {selected} FROM {source} WHERE __rule_{i} LIMIT {rule.sample_size}"
                )
                outcomes[rule.name].samples = _records(sample)
    ordered = [outcomes[rule.name] for rule in rules]
    _raise_if_blocking(ordered, job)

    report = DQReport(outcomes=ordered)
    if removing:
        report = _remove_rows(
            con, table, columns, failing_row_rules, removing, run_id, checked_at, report
        )
    if failing_row_rules or early:
        con.execute("DROP TABLE IF EXISTS __dq_flagged")
    return report


def _flagged_query(table: str, row_rules: list[DQRule]) -> str:
    """The checked table's rows with one boolean column `__rule_<i>` per row-level rule.

    A `unique` rule joins the (few) duplicated keys, aggregated once, instead of a window over
    every row: same rows flagged, a hash aggregate instead of a sort.
    """
    flags, joins = [], []
    for i, rule in enumerate(row_rules):
        if rule.check_type != "unique":
            flags.append(f"coalesce({failing_row_predicate(rule)}, FALSE) AS __rule_{i}")
            continue
        alias = f"__dq_dup_{i}"
        keys = [q(key) for key in rule.key_columns]
        named = ", ".join(f"{key} AS {alias}_k{k}" for k, key in enumerate(keys))
        present = " AND ".join(f"{key} IS NOT NULL" for key in keys)
        on = " AND ".join(f"{ROW_ALIAS}.{key} = {alias}.{alias}_k{k}" for k, key in enumerate(keys))
        joins.append(
            f" LEFT JOIN (SELECT {named}, TRUE AS {alias}_hit FROM {q(table)} WHERE {present} "
            f"GROUP BY ALL HAVING count(*) > 1) AS {alias} ON {on}"
        )
        flags.append(f"coalesce({alias}.{alias}_hit, FALSE) AS __rule_{i}")
    return (
        f"SELECT {ROW_ALIAS}.*{''.join(', ' + f for f in flags)} "
        f"FROM {q(table)} AS {ROW_ALIAS}{''.join(joins)}"
    )


def _pass_expression(rule: DQRule) -> str:
    """The aggregate a table-level rule contributes to the one pass."""
    if rule.check_type == "freshness":
        # Seconds since the newest value; run_time is the job's clock, now() outside jobs.
        now = "coalesce(getvariable('run_time'), get_current_timestamp())"
        newest = f"max(CAST({q(str(rule.column))} AS TIMESTAMPTZ))"
        return f"epoch({now}) - epoch({newest})"
    return str(rule.metric)


def _judge_pass_rule(
    rule: DQRule,
    layer: str | None,
    total: int,
    value: float | None,
    duration_ms: float,
    previous: dict[str, float] | None,
) -> RuleOutcome:
    """Pass or fail a freshness or metric rule from the value the one pass computed."""
    message = ""
    if rule.check_type == "freshness":
        limit = rule.max_age_seconds or 0.0
        passed = value is not None and value <= limit
        message = (
            f"`{rule.column}` has no value"
            if value is None
            else f"newest `{rule.column}` is {value / 3600:.2f} h old (max {rule.max_age})"
        )
    elif rule.check_type == "metric_threshold":
        passed = value is not None and _within(rule, value)
        message = f"`{rule.metric}` = {value}" + ("" if passed else f", {_bounds(rule)}")
    else:
        before = (previous or {}).get(rule.name)
        if before is None:
            passed = True
            message = f"`{rule.metric}` = {value}; no previous value to compare, so not checked"
        elif value is None:
            passed = False
            message = f"`{rule.metric}` is null (previous {before})"
        else:
            change = value - before
            pct = abs(change) / abs(before) * 100 if before else (0.0 if not change else math.inf)
            too_big = rule.max_change is not None and abs(change) > rule.max_change
            too_big_pct = rule.max_change_pct is not None and pct > rule.max_change_pct
            passed = not (too_big or too_big_pct)
            message = (
                f"`{rule.metric}` = {value}, previous {before}: change {change:+g} ({pct:.2f}%)"
            )
            if not passed:
                message += (
                    f", allowed ±{rule.max_change if rule.max_change is not None else 'any'}"
                    f" / ±{rule.max_change_pct if rule.max_change_pct is not None else 'any'}%"
                )
    outcome = _outcome(rule, layer, total, 0 if passed else total, duration_ms, observed=value)
    outcome.passed = passed
    outcome.message = message
    return outcome


def _table_check(
    con: duckdb.DuckDBPyConnection, table: str, rule: DQRule, layer: str | None, total: int
) -> RuleOutcome:
    """row_count, custom_sql and schema: checks of the table as a whole, one query each."""
    if rule.check_type == "row_count" and rule.date_column is None:
        passed = _within(rule, total)
        outcome = _outcome(rule, layer, total, 0 if passed else total, 0.0, observed=total)
        outcome.message = f"{total} row(s)" + ("" if passed else f", {_bounds(rule)}")
        return outcome
    if rule.check_type == "row_count":
        return _row_count_per_day(con, table, rule, layer, total)
    if rule.check_type == "custom_sql":
        query = f"({rule.condition})"
        failing = int(con.sql(f"SELECT count(*) FROM {query} AS __dq_bad").fetchall()[0][0])
        outcome = _outcome(rule, layer, total, failing, 0.0, observed=failing)
        if failing and rule.sample_size:
            outcome.samples = _records(
                con.sql(f"SELECT * FROM {query} AS __dq_bad LIMIT {rule.sample_size}")
            )
        outcome.message = f"the query returned {failing} bad row(s)"
        return outcome
    if rule.check_type == "schema":
        actual = {str(n): str(t) for (n, t, *_rest) in con.sql(f"DESCRIBE {q(table)}").fetchall()}
        problems = []
        for name, expected in rule.columns_expected.items():
            wanted = TYPE_ALIASES.get(expected.strip().lower(), expected.strip().upper())
            found = actual.get(name)
            if found is None:
                problems.append(f"`{name}` is missing")
            elif not (found == wanted or found.startswith(wanted + "(")):
                problems.append(f"`{name}` is {found}, expected {wanted}")
        passed = not problems
        outcome = _outcome(rule, layer, total, 0 if passed else total, 0.0)
        outcome.observed_value = float(len(problems))
        outcome.message = "; ".join(problems) or "every expected column has its type"
        return outcome
    raise ValueError(f"rule `{rule.name}`: unknown table-level check `{rule.check_type}`")


def _row_count_per_day(
    con: duckdb.DuckDBPyConnection, table: str, rule: DQRule, layer: str | None, total: int
) -> RuleOutcome:
    """Rows per day of `date_column`, days without rows between the first and last included."""
    column = q(str(rule.date_column))
    counted = con.sql(
        f"SELECT CAST({column} AS DATE) AS day, count(*) FROM {q(table)} "
        f"WHERE {column} IS NOT NULL GROUP BY ALL ORDER BY day"
    ).fetchall()
    per_day: dict[date, int] = {day: int(rows) for day, rows in counted}
    if per_day:
        day, last = min(per_day), max(per_day)
        while day <= last:
            per_day.setdefault(day, 0)
            day += timedelta(days=1)
    bad_days = {day: rows for day, rows in sorted(per_day.items()) if not _within(rule, rows)}
    empty_fails = not per_day and not _within(rule, 0)
    failing = total if empty_fails else sum(bad_days.values())
    outcome = _outcome(rule, layer, total, failing, 0.0, observed=len(bad_days))
    outcome.passed = not bad_days and not empty_fails
    outcome.samples = [
        {"day": day.isoformat(), "rows": rows}
        for day, rows in list(bad_days.items())[: rule.sample_size]
    ]
    outcome.message = (
        f"no dated rows, {_bounds(rule)}"
        if empty_fails
        else f"{len(bad_days)} of {len(per_day)} day(s) outside the bounds ({_bounds(rule)})"
    )
    return outcome


def _apply_auto_fix(con: duckdb.DuckDBPyConnection, table: str, rule: DQRule, job: str) -> int:
    """Apply `rule.auto_fix` to the rows failing `rule`; returns how many rows it changed."""
    assert rule.auto_fix is not None and rule.column is not None
    column = q(rule.column)
    fix = rule.auto_fix
    failing = f"coalesce({failing_row_predicate(rule)}, FALSE)"
    if fix.type == "cast":
        fixed = f"TRY_CAST({column} AS {fix.to_type})"  # a column has one type: cast all rows
    else:
        if fix.type in ("trim", "lower", "upper"):
            repaired = f"{fix.type}({column})"
        else:
            types = {str(n): str(t) for (n, t, *_r) in con.sql(f"DESCRIBE {q(table)}").fetchall()}
            repaired = f"CAST({quote_literal(fix.value)} AS {types.get(rule.column, 'VARCHAR')})"
        fixed = f"CASE WHEN {failing} THEN {repaired} ELSE {column} END"
    source = f"FROM {q(table)} AS {ROW_ALIAS}"
    try:
        changed = con.sql(
            f"SELECT count_if(CAST({fixed} AS VARCHAR) IS DISTINCT FROM "
            f"CAST({column} AS VARCHAR)) {source}"
        ).fetchall()[0][0]
        if changed:
            _replace_table(con, table, f"SELECT * REPLACE ({fixed} AS {column}) {source}")
    except duckdb.Error as error:
        raise DQRuleError(
            f"Job `{job}`: `auto_fix` ({fix.type}) of rule `{rule.name}` cannot run on column "
            f"`{rule.column}`: {' '.join(str(error).split())}. Fix `auto_fix` or the rule."
        ) from error
    return int(changed)


def _remove_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[str],
    failing_row_rules: list[tuple[int, DQRule]],
    removing: list[tuple[int, DQRule]],
    run_id: str,
    checked_at: datetime,
    report: DQReport,
) -> DQReport:
    """Move rows failing `quarantine` rules to `QUARANTINE_TABLE`, drop `drop` rules' rows."""
    selected = ", ".join(q(name) for name in columns)
    quarantine = [i for i, rule in removing if rule.action_on_violation == "quarantine"]
    removed = " OR ".join(f"__rule_{i}" for i, _ in removing)
    if quarantine:
        names = ", ".join(
            f"CASE WHEN __rule_{i} THEN {quote_literal(rule.name)} END"
            for i, rule in failing_row_rules
        )
        reasons = ", ".join(
            f"CASE WHEN __rule_{i} THEN {quote_literal(reason(rule))} END"
            for i, rule in failing_row_rules
        )
        con.execute(
            f"CREATE OR REPLACE TABLE {QUARANTINE_TABLE} AS SELECT {selected}, "
            f"concat_ws(',', {names}) AS _rules, concat_ws('; ', {reasons}) AS _reason, "
            f"{quote_literal(run_id)} AS _run_id, "
            f"TIMESTAMPTZ {quote_literal(checked_at.isoformat())} AS _quarantined_at "
            f"FROM __dq_flagged WHERE {' OR '.join(f'__rule_{i}' for i in quarantine)}"
        )
        report.quarantined_rows = int(
            con.sql(f"SELECT count(*) FROM {QUARANTINE_TABLE}").fetchall()[0][0]
        )
        report.quarantine_table = QUARANTINE_TABLE
    before = int(con.sql("SELECT count(*) FROM __dq_flagged").fetchall()[0][0])
    _replace_table(con, table, f"SELECT {selected} FROM __dq_flagged WHERE NOT ({removed})")
    after = int(con.sql(f"SELECT count(*) FROM {q(table)}").fetchall()[0][0])
    report.dropped_rows = before - after - report.quarantined_rows
    return report


def _replace_table(con: duckdb.DuckDBPyConnection, table: str, select: str) -> None:
    """Materialise `select` and put it in place of `table` (a table or a view)."""
    con.execute(f"CREATE OR REPLACE TABLE __dq_new AS {select}")
    is_view = con.sql(
        f"SELECT count(*) FROM duckdb_views() WHERE view_name = {quote_literal(table)}"
    ).fetchall()[0][0]
    con.execute(f"DROP {'VIEW' if is_view else 'TABLE'} {q(table)}")
    con.execute(f"ALTER TABLE __dq_new RENAME TO {q(table)}")


def _raise_if_blocking(outcomes: list[RuleOutcome], job: str) -> None:
    """Fail the job, before anything is removed or written, when a `fail` rule was violated."""
    blocking = [o for o in outcomes if not o.passed and o.action == "fail"]
    if not blocking:
        return
    details = "; ".join(
        f"rule `{o.rule}` ({o.check_type}): {o.rows_failing} of {o.rows_checked} rows fail"
        if o.check_type in (*ROW_LEVEL_CHECKS, "custom_sql")
        else f"rule `{o.rule}` ({o.check_type}): {o.message}"
        for o in blocking
    )
    raise DataQualityError(
        f"Job `{job}`: data-quality check failed, nothing was committed: {details}. "
        "Fix the data or the rule; the previous table version is unchanged.",
        outcomes,
    )


def _rule_error(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rules: list[DQRule],
    job: str,
    error: duckdb.Error,
) -> DQRuleError:
    """Name the rule whose SQL broke the query, by preparing each rule's SQL on its own."""
    for rule in rules:
        if rule.row_level:
            probe = f"SELECT {failing_row_predicate(rule)} FROM {q(table)} AS {ROW_ALIAS} LIMIT 0"
        elif rule.check_type in (*METRIC_CHECKS, "freshness"):
            probe = f"SELECT {_pass_expression(rule)} FROM {q(table)} LIMIT 0"
        elif rule.check_type == "custom_sql":
            probe = f"SELECT * FROM ({rule.condition}) LIMIT 0"
        else:
            probe = f"SELECT {q(str(rule.date_column or '*'))} FROM {q(table)} LIMIT 0"
        try:
            con.sql(probe).fetchall()
        except duckdb.Error as own:
            field_name = _rule_field(rule)
            return DQRuleError(
                f"Job `{job}`: rule `{rule.name}` ({rule.check_type}) cannot run: {' '.join(str(own).split())}. "
                f"Check its `{field_name}` against the columns of the checked table."
            )
    names = ", ".join(f"`{rule.name}`" for rule in rules)
    return DQRuleError(
        f"Job `{job}`: data-quality rules {names} cannot run: {' '.join(str(error).split())}."
    )


def _rule_field(rule: DQRule) -> str:
    """The field most likely at fault when a rule's SQL does not run."""
    if rule.check_type in ("custom_predicate", "custom_sql"):
        return "condition"
    if rule.check_type in METRIC_CHECKS:
        return "metric"
    if rule.check_type == "unique":
        return "columns" if rule.columns else "column"
    if rule.check_type == "relationships":
        return "column`/`to`/`field"
    if rule.check_type == "row_count":
        return "date_column"
    return "column"


def _within(rule: DQRule, value: float) -> bool:
    """True when `value` respects the rule's min/max with their inclusiveness."""
    too_low = rule.min is not None and (
        value < rule.min or (not rule.min_inclusive and value == rule.min)
    )
    too_high = rule.max is not None and (
        value > rule.max or (not rule.max_inclusive and value == rule.max)
    )
    return not (too_low or too_high)


def _bounds(rule: DQRule) -> str:
    """The rule's bounds as text, e.g. `expected >= 1`."""
    parts = []
    if rule.min is not None:
        parts.append(f"{'>=' if rule.min_inclusive else '>'} {rule.min:g}")
    if rule.max is not None:
        parts.append(f"{'<=' if rule.max_inclusive else '<'} {rule.max:g}")
    return "expected " + " and ".join(parts)


def _outcome(
    rule: DQRule,
    layer: str | None,
    checked: int,
    failing: int,
    duration_ms: float,
    *,
    observed: float | None = None,
) -> RuleOutcome:
    return RuleOutcome(
        rule=rule.name,
        check_type=rule.check_type,
        severity=rule.severity,
        action=rule.action_on_violation,
        rows_checked=checked,
        rows_failing=failing,
        passed=failing == 0,
        scope=rule.scope or layer,
        target=rule.target,
        failure_rate=failing / checked if checked else 0.0,
        duration_ms=duration_ms,
        observed_value=None if observed is None else float(observed),
        notification=rule.notification,
    )


def _records(relation: duckdb.DuckDBPyRelation) -> list[dict[str, Any]]:
    """Rows of `relation` as JSON-ready dicts (they travel inside the notebook's result)."""
    names = [str(name) for name in relation.columns]
    return [
        {name: _jsonable(value) for name, value in zip(names, row, strict=True)}
        for row in relation.fetchall()
    ]


def _jsonable(value: object) -> object:
    """A JSON-ready form of a DuckDB value: dates as ISO text, decimals as floats."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return str(value)


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second
