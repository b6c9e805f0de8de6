"""Agreement with dbt's generic tests on the jaffle-shop data and on corrupted copies of it.

Each lakebook rule has a dbt equivalent (`not_null`, `unique`, `accepted_values`,
`relationships`, dbt_utils `accepted_range`, dbt_expectations `expect_table_row_count_to_be_between`).
The expected numbers are computed here independently, in plain DuckDB SQL written the way dbt
compiles those tests. Counts compared:

- `not_null`, `relationships`, `accepted_range`: dbt returns one row per failing row, and so does
  lakebook's `rows_failing`.
- `unique`: dbt returns one row per duplicated VALUE; lakebook's `rows_failing` counts every ROW
  whose key is duplicated (each would be dropped or quarantined) and its `observed_value` is dbt's
  count. Both are compared.
- `accepted_values`: dbt returns one row per distinct unaccepted value (with its count); lakebook
  counts rows. Rows are compared with the sum of dbt's `n_records`, values with the distinct
  values in lakebook's samples.
- row count: dbt returns one row when the table is out of bounds; lakebook fails the rule and
  reports the row count as `observed_value`.
"""

from __future__ import annotations

import duckdb
import pytest

from lakebook.dq import evaluate, reference_name
from lakebook.results import RuleOutcome
from lakebook.specs import DQRule
from tests.conftest import JAFFLE_DATA

JAFFLE = JAFFLE_DATA  # the repository's copy of ../shared/data/jaffle
STATUSES = ["placed", "shipped", "completed", "return_pending", "returned"]
METHODS = ["credit_card", "coupon", "bank_transfer", "gift_card"]
MIN_CUSTOMERS = 50


def load(con: duckdb.DuckDBPyConnection) -> None:
    """The three raw tables, as dbt's seeds would load them."""
    for name in ("customers", "orders", "payments"):
        con.execute(
            f"CREATE TABLE {name} AS SELECT * FROM read_csv('{JAFFLE / f'raw_{name}.csv'}')"
        )


def corrupt(con: duckdb.DuckDBPyConnection) -> None:
    """Null and duplicate keys, unknown statuses, orphan keys, bad amounts, too few customers."""
    con.execute("DELETE FROM customers WHERE id > 40")  # too few rows (and orphan orders)
    con.execute("UPDATE customers SET id = NULL WHERE id IN (3, 4)")
    con.execute("INSERT INTO customers SELECT * FROM customers WHERE id IN (5, 7)")
    con.execute("INSERT INTO customers SELECT * FROM customers WHERE id = 5 LIMIT 1")
    con.execute("UPDATE orders SET status = 'lost' WHERE id % 10 = 0")
    con.execute("UPDATE orders SET status = 'unknown' WHERE id % 17 = 0")
    con.execute("UPDATE orders SET id = NULL WHERE id = 1")
    con.execute("INSERT INTO orders SELECT * FROM orders WHERE id BETWEEN 2 AND 4")
    con.execute("UPDATE payments SET amount = -amount WHERE id % 9 = 0")
    con.execute("UPDATE payments SET amount = 999999 WHERE id % 25 = 0")
    con.execute("UPDATE payments SET order_id = order_id + 1000 WHERE id % 13 = 0")
    con.execute("UPDATE payments SET payment_method = 'bitcoin' WHERE id % 11 = 0")
    con.execute("INSERT INTO payments SELECT * FROM payments WHERE id IN (20, 21)")


def warn(**fields: object) -> DQRule:
    return DQRule.model_validate({"severity": "warn", "action_on_violation": "warn", **fields})


RULES = {
    "customers": [
        warn(name="customer_id_not_null", check_type="not_null", column="id"),
        warn(name="customer_id_unique", check_type="unique", column="id"),
        warn(name="enough_customers", check_type="row_count", min=MIN_CUSTOMERS),
    ],
    "orders": [
        warn(name="order_id_not_null", check_type="not_null", column="id"),
        warn(name="order_id_unique", check_type="unique", column="id"),
        warn(
            name="status_known",
            check_type="accepted_values",
            column="status",
            values=STATUSES,
            sample_size=100,
        ),
        warn(
            name="order_customer_exists",
            check_type="relationships",
            column="user_id",
            to="silver.customers",
            field="id",
        ),
    ],
    "payments": [
        warn(name="payment_id_unique", check_type="unique", column="id"),
        warn(
            name="method_known",
            check_type="accepted_values",
            column="payment_method",
            values=METHODS,
            sample_size=100,
        ),
        warn(name="amount_in_range", check_type="range", column="amount", min=0, max=100000),
        warn(
            name="payment_order_exists",
            check_type="relationships",
            column="order_id",
            to="silver.orders",
            field="id",
        ),
    ],
}


def dbt_failures(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Failure counts of the equivalent dbt tests, compiled by hand as dbt compiles them."""

    def count(sql: str) -> int:
        return int(con.sql(f"SELECT count(*) FROM ({sql})").fetchall()[0][0])

    def total(sql: str) -> int:
        return int(con.sql(f"SELECT coalesce(sum(n_records), 0) FROM ({sql})").fetchall()[0][0])

    def unique(table: str, column: str) -> int:
        return count(
            f"SELECT {column} AS unique_field, count(*) AS n_records FROM {table} "
            f"WHERE {column} IS NOT NULL GROUP BY {column} HAVING count(*) > 1"
        )

    def accepted(table: str, column: str, values: list[str]) -> str:
        listed = ", ".join(f"'{value}'" for value in values)
        return (
            f"SELECT {column} AS value_field, count(*) AS n_records FROM {table} "
            f"GROUP BY {column} HAVING {column} NOT IN ({listed})"
        )

    def relationship(child: str, column: str, parent: str, field: str) -> int:
        return count(
            f"SELECT child.{column} FROM {child} AS child LEFT JOIN "
            f"(SELECT {field} AS to_field FROM {parent}) AS parent "
            f"ON child.{column} = parent.to_field "
            f"WHERE child.{column} IS NOT NULL AND parent.to_field IS NULL"
        )

    customers_rows = count("SELECT * FROM customers")
    return {
        "customer_id_not_null": count("SELECT id FROM customers WHERE id IS NULL"),
        "customer_id_unique": unique("customers", "id"),
        "enough_customers": count(f"SELECT 1 WHERE NOT ({customers_rows} >= {MIN_CUSTOMERS})"),
        "order_id_not_null": count("SELECT id FROM orders WHERE id IS NULL"),
        "order_id_unique": unique("orders", "id"),
        "status_known": count(accepted("orders", "status", STATUSES)),
        "order_customer_exists": relationship("orders", "user_id", "customers", "id"),
        "payment_id_unique": unique("payments", "id"),
        "method_known": count(accepted("payments", "payment_method", METHODS)),
        "amount_in_range": count(
            "SELECT * FROM payments WHERE NOT (amount >= 0 AND amount <= 100000)"
        ),
        "payment_order_exists": relationship("payments", "order_id", "orders", "id"),
        # Rows behind dbt's grouped tests, for lakebook's row counts.
        "status_known_rows": total(accepted("orders", "status", STATUSES)),
        "method_known_rows": total(accepted("payments", "payment_method", METHODS)),
        "customer_id_unique_rows": total(
            "SELECT count(*) AS n_records FROM customers WHERE id IS NOT NULL "
            "GROUP BY id HAVING count(*) > 1"
        ),
        "order_id_unique_rows": total(
            "SELECT count(*) AS n_records FROM orders WHERE id IS NOT NULL "
            "GROUP BY id HAVING count(*) > 1"
        ),
        "payment_id_unique_rows": total(
            "SELECT count(*) AS n_records FROM payments WHERE id IS NOT NULL "
            "GROUP BY id HAVING count(*) > 1"
        ),
        "customers_rows": customers_rows,
    }


def lakebook_outcomes(con: duckdb.DuckDBPyConnection) -> dict[str, RuleOutcome]:
    """Every rule's outcome, each table checked in one pass."""
    con.execute(f"CREATE VIEW {reference_name('silver.customers')} AS SELECT * FROM customers")
    con.execute(f"CREATE VIEW {reference_name('silver.orders')} AS SELECT * FROM orders")
    found: dict[str, RuleOutcome] = {}
    for table, rules in RULES.items():
        for outcome in evaluate(con, table, rules, f"check_{table}").outcomes:
            found[outcome.rule] = outcome
    return found


@pytest.mark.parametrize("corrupted", [False, True], ids=["clean", "corrupted"])
def test_lakebook_flags_what_dbt_flags_with_the_same_counts(corrupted: bool) -> None:
    con = duckdb.connect()
    load(con)
    if corrupted:
        corrupt(con)
    expected = dbt_failures(con)
    found = lakebook_outcomes(con)

    # The same tests fail (dbt: a test fails when its query returns rows).
    failed_in_dbt = {name for name in found if expected[name] > 0}
    failed_in_lakebook = {name for name, outcome in found.items() if not outcome.passed}
    assert failed_in_lakebook == failed_in_dbt
    if corrupted:
        assert failed_in_dbt == set(found)  # every corruption is caught
    else:
        assert failed_in_dbt == set()

    # Row-level tests: identical failing-row counts.
    for name in (
        "customer_id_not_null",
        "order_id_not_null",
        "order_customer_exists",
        "amount_in_range",
        "payment_order_exists",
    ):
        assert found[name].rows_failing == expected[name], name
    # Grouped tests: dbt's count is distinct values, lakebook's rows_failing is rows.
    for name in ("customer_id_unique", "order_id_unique", "payment_id_unique"):
        assert found[name].observed_value == expected[name], name
        assert found[name].rows_failing == expected[f"{name}_rows"], name
    for name in ("status_known", "method_known"):
        assert found[name].rows_failing == expected[f"{name}_rows"], name
        bad_values = {sample[RULES_COLUMN[name]] for sample in found[name].samples}
        assert len(bad_values) == expected[name], name
    # Row count: one failing dbt row when out of bounds; lakebook reports the count.
    assert found["enough_customers"].observed_value == expected["customers_rows"]


RULES_COLUMN = {"status_known": "status", "method_known": "payment_method"}


def test_corruptions_have_the_sizes_the_test_expects() -> None:
    """Guards the fixture: the corrupted copy really has each kind of defect, more than once."""
    con = duckdb.connect()
    load(con)
    corrupt(con)
    expected = dbt_failures(con)
    assert expected["customer_id_not_null"] == 2
    assert (expected["customer_id_unique"], expected["customer_id_unique_rows"]) == (2, 5)
    assert expected["customers_rows"] < MIN_CUSTOMERS
    assert expected["status_known"] == 2 and expected["status_known_rows"] > 2
    assert expected["order_customer_exists"] > 0 and expected["payment_order_exists"] > 0
    assert expected["amount_in_range"] > 0
