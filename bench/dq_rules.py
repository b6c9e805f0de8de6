"""Ten row-level data-quality rules over 10 million rows through `lakebook.dq.evaluate`, against
one hand-written DuckDB query computing the same ten failing-row counts, in one run.

The checked table is built in an in-memory DuckDB: N rows (default 10,000,000) of mixed columns
(bigint key, int line number, nullable customer key, status text, double amount, int quantity,
nullable e-mail text). A 99,990-row customer dimension is registered under
`lakebook.dq.reference_name("silver.customers")` for the `relationships` rule. The ten rules all
`warn` (so the table is not changed between runs); seven of them find failing rows.

Measured, on the same connection, alternating, best of three after one untimed warm-up each:

* lakebook: `lakebook.dq.evaluate(con, "orders", RULES, "bench")`: the one pass of counts, the
  failure rates, durations and up to 20 failing-row samples per failing rule;
* hand-written: one SQL statement returning the ten failing counts (what someone writing the
  checks by hand in DuckDB would run: `count_if` per rule in one scan with a left join to the
  dimension, and a `GROUP BY … HAVING count(*) > 1` per `unique` rule).

The script asserts that both give the same ten counts.

Usage::

    python bench/dq_rules.py [--rows 10000000] [--repeat 3] [--output PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from lakebook import dq
from lakebook.specs import DQRule

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH_DIR / "results" / "dq_rules.json"
DIMENSION = dq.reference_name("silver.customers")
EMAIL_PATTERN = r"[a-z0-9]+@[a-z]+\.[a-z]+"

RULES = [
    {"name": "order_id_not_null", "check_type": "not_null", "column": "order_id"},
    {"name": "order_id_unique", "check_type": "unique", "column": "order_id"},
    {"name": "order_line_unique", "check_type": "unique", "columns": ["order_id", "line_no"]},
    {
        "name": "status_accepted",
        "check_type": "accepted_values",
        "column": "status",
        "values": ["placed", "shipped", "completed", "returned"],
    },
    {"name": "amount_range", "check_type": "range", "column": "amount", "min": 0, "max": 1000},
    {
        "name": "quantity_range",
        "check_type": "range",
        "column": "quantity",
        "min": 0,
        "max": 10,
        "min_inclusive": False,
        "max_inclusive": False,
    },
    {"name": "email_format", "check_type": "regex", "column": "email", "pattern": EMAIL_PATTERN},
    {
        "name": "line_total_cap",
        "check_type": "custom_predicate",
        "condition": "amount * quantity <= 4900",
    },
    {
        "name": "customer_fk",
        "check_type": "relationships",
        "column": "customer_id",
        "to": "silver.customers",
        "field": "customer_id",
    },
    {"name": "email_not_null", "check_type": "not_null", "column": "email"},
]

# The same ten counts, in RULES order, in one statement written by hand.
HAND_WRITTEN = f"""
WITH checked AS (
    SELECT
        count_if(o.order_id IS NULL) AS order_id_not_null,
        count_if(o.status NOT IN ('placed', 'shipped', 'completed', 'returned'))
            AS status_accepted,
        count_if(o.amount < 0 OR o.amount > 1000) AS amount_range,
        count_if(o.quantity <= 0 OR o.quantity >= 10) AS quantity_range,
        count_if(NOT regexp_full_match(o.email, '{EMAIL_PATTERN}')) AS email_format,
        count_if(NOT (o.amount * o.quantity <= 4900)) AS line_total_cap,
        count_if(o.customer_id IS NOT NULL AND c.customer_id IS NULL) AS customer_fk,
        count_if(o.email IS NULL) AS email_not_null
    FROM orders AS o
    LEFT JOIN (SELECT DISTINCT customer_id FROM {DIMENSION}) AS c USING (customer_id)
)
SELECT
    order_id_not_null,
    (SELECT coalesce(sum(n), 0) FROM (
        SELECT count(*) AS n FROM orders WHERE order_id IS NOT NULL
        GROUP BY order_id HAVING count(*) > 1)) AS order_id_unique,
    (SELECT coalesce(sum(n), 0) FROM (
        SELECT count(*) AS n FROM orders WHERE order_id IS NOT NULL AND line_no IS NOT NULL
        GROUP BY order_id, line_no HAVING count(*) > 1)) AS order_line_unique,
    status_accepted, amount_range, quantity_range, email_format, line_total_cap, customer_fk,
    email_not_null
FROM checked
"""


def make_tables(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """The checked table `orders` (N rows, some rows failing seven of the ten rules) and the
    customer dimension (ids 0 to 99,989, so ids 99,990 to 99,999 in `orders` are orphans)."""
    con.execute(
        f"""
        CREATE TABLE orders AS
        SELECT
            CASE WHEN range % 1000000 = 7 THEN range - 1 ELSE range END AS order_id,
            (range % 3)::INTEGER AS line_no,
            CASE WHEN range % 50000 = 1 THEN NULL ELSE range % 100000 END AS customer_id,
            CASE WHEN range % 997 = 0 THEN 'lost'
                 ELSE ['placed', 'shipped', 'completed', 'returned'][1 + range % 4] END AS status,
            CASE WHEN range % 10007 = 0 THEN -1.0
                 ELSE ((range * 37) % 100000) / 100.0 END::DOUBLE AS amount,
            CASE WHEN range % 333333 = 0 THEN 0 ELSE 1 + range % 5 END::INTEGER AS quantity,
            CASE WHEN range % 100003 = 0 THEN NULL
                 WHEN range % 4999 = 0 THEN 'user' || range
                 ELSE 'user' || range || '@example.com' END AS email
        FROM range({rows})
        """
    )
    con.execute(
        f"CREATE TABLE {DIMENSION} AS SELECT range AS customer_id, 'c' || range AS name "
        "FROM range(99990)"
    )


def time_engine(con: duckdb.DuckDBPyConnection, rules: list[DQRule]) -> tuple[float, list[int]]:
    started = time.perf_counter()
    report = dq.evaluate(con, "orders", rules, "bench")
    seconds = time.perf_counter() - started
    return seconds, [outcome.rows_failing for outcome in report.outcomes]


def time_hand_written(con: duckdb.DuckDBPyConnection) -> tuple[float, list[int]]:
    started = time.perf_counter()
    row = con.sql(HAND_WRITTEN).fetchall()[0]
    seconds = time.perf_counter() - started
    return seconds, [int(value) for value in row]


def main() -> None:
    """Measure and print; write the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    rules = [
        DQRule.model_validate({"severity": "warn", "action_on_violation": "warn", **spec})
        for spec in RULES
    ]
    con = duckdb.connect()
    make_tables(con, args.rows)
    # One untimed warm-up each, then alternate so neither side alone meets a cold cache.
    _, engine_counts = time_engine(con, rules)
    _, hand_counts = time_hand_written(con)
    assert engine_counts == hand_counts, list(zip(engine_counts, hand_counts, strict=True))
    engine_runs, hand_runs = [], []
    for _ in range(args.repeat):
        hand_runs.append(time_hand_written(con)[0])
        engine_runs.append(time_engine(con, rules)[0])
    engine_best, hand_best = min(engine_runs), min(hand_runs)
    loads = os.getloadavg()

    figures: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": args.rows,
        "rules": len(rules),
        "cpus": os.cpu_count(),
        "duckdb": duckdb.__version__,
        "load_average_1_5_15": [round(value, 2) for value in loads],
        "failing_counts": {
            spec["name"]: count for spec, count in zip(RULES, engine_counts, strict=True)
        },
        "engine_seconds": round(engine_best, 3),
        "hand_written_seconds": round(hand_best, 3),
        "ratio": round(engine_best / hand_best, 2),
        "all_engine_seconds": [round(value, 3) for value in engine_runs],
        "all_hand_written_seconds": [round(value, 3) for value in hand_runs],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
