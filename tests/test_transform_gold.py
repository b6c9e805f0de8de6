"""Gold templates on small hand-checked tables: metrics_aggregate, snapshot, ml_training_set and
export_feed, run in-process through `run_dataset_job` (no kernels)."""

from __future__ import annotations

import csv
import json
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakebook.errors import LakebookError, PathOutsideWorkspaceError, TransformError
from lakebook.runtime import JobContext
from lakebook.specs import DatasetJob
from lakebook.transform import run_dataset_job

RUN_DATE = "2024-01-15"


@pytest.fixture
def context(empty_workspace: Path) -> JobContext:
    """A job context on a fresh workspace, run date 2024-01-15."""
    return JobContext.open(str(empty_workspace), "gold", "run-1", RUN_DATE)


def put(context: JobContext, dataset: str, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    """Write an input dataset."""
    table = pa.Table.from_pylist(rows, schema=schema)
    context.lake.write_table(context.lake.table_path(dataset), table, mode="overwrite")


def gold_job(name: str, inputs: list[str], **fields: Any) -> DatasetJob:
    """A gold dataset job reading `inputs` (dataset addresses)."""
    return DatasetJob.model_validate(
        {"name": name, "layer": "gold", "inputs": [{"dataset": d} for d in inputs], **fields}
    )


def run(context: JobContext, job: DatasetJob, *keys: str) -> list[dict[str, Any]]:
    """Run the job; the rows it committed, sorted by `keys`."""
    result, _ = run_dataset_job(context, job)
    rows = context.lake.read(job.dataset).to_pylist()
    assert result.rows_written == len(rows)
    return sorted(rows, key=lambda row: tuple((row[k] is None, row[k]) for k in keys))


def failure(context: JobContext, job: DatasetJob) -> str:
    """The message of the error the job fails with; nothing may be committed."""
    with pytest.raises(LakebookError) as caught:
        run_dataset_job(context, job)
    assert not context.lake.exists(job.dataset)
    return str(caught.value)


# metrics_aggregate --------------------------------------------------------------------------------

ORDERS_SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("ordered_at", pa.timestamp("us")),
        ("country", pa.string()),
        ("customer_id", pa.string()),
        ("amount", pa.float64()),
        ("quantity", pa.int32()),
        ("status", pa.string()),
    ]
)
ORDERS = [
    (1, datetime(2024, 1, 1, 9), "DE", "c1", 10.0, 1, "paid"),
    (2, datetime(2024, 1, 1, 17, 30), "DE", "c2", 20.0, 2, "paid"),
    (3, datetime(2024, 1, 1, 12), "FR", "c1", 5.0, 1, "refunded"),
    (4, datetime(2024, 1, 2, 8), "DE", "c1", 30.0, 3, "paid"),
    (5, datetime(2024, 1, 2, 23, 59), "FR", "c3", None, 1, "paid"),
    (6, datetime(2024, 2, 10, 10), "DE", "c2", 40.0, 4, "refunded"),
    (7, None, "DE", "c9", 99.0, 9, "paid"),  # no time: not in any period
]
METRICS = [
    {"name": "revenue", "aggregation": "sum", "column": "amount", "filter": "status = 'paid'"},
    {"name": "orders", "aggregation": "count"},
    {"name": "customers", "aggregation": "count_distinct", "column": "customer_id"},
    {"name": "avg_amount", "aggregation": "avg", "column": "amount"},
    {"name": "min_amount", "aggregation": "min", "column": "amount"},
    {"name": "max_amount", "aggregation": "max", "column": "amount"},
    {"name": "units", "aggregation": "sum", "column": "quantity"},
    {"name": "priced", "aggregation": "count", "column": "amount"},
    {"name": "refunds", "aggregation": "count", "filter": "status = 'refunded'"},
    {
        "name": "refund_rate",
        "aggregation": "ratio",
        "numerator": "refunds",
        "denominator": "orders",
    },
    {
        "name": "per_refund",
        "aggregation": "ratio",
        "numerator": "revenue",
        "denominator": "refunds",
    },
]


@pytest.fixture
def orders(context: JobContext) -> JobContext:
    """`silver.orders` written."""
    put(
        context,
        "silver.orders",
        [dict(zip(ORDERS_SCHEMA.names, row, strict=True)) for row in ORDERS],
        ORDERS_SCHEMA,
    )
    return context


def metrics_job(**metrics: Any) -> DatasetJob:
    config = {"source": "orders", "time_column": "ordered_at", "metrics": METRICS, **metrics}
    return gold_job(
        "order_metrics", ["silver.orders"], transform_type="metrics_aggregate", metrics=config
    )


def test_metrics_by_day_and_country(orders: JobContext) -> None:
    rows = run(orders, metrics_job(dimensions=["country"]), "day", "country")
    columns = ["day", "country", *(metric["name"] for metric in METRICS)]
    expected = [
        # day, country, revenue, orders, customers, avg, min, max, units, priced, refunds, rate, per
        (date(2024, 1, 1), "DE", 30.0, 2, 2, 15.0, 10.0, 20.0, 3, 2, 0, 0.0, None),
        (date(2024, 1, 1), "FR", None, 1, 1, 5.0, 5.0, 5.0, 1, 1, 1, 1.0, None),
        (date(2024, 1, 2), "DE", 30.0, 1, 1, 30.0, 30.0, 30.0, 3, 1, 0, 0.0, None),
        (date(2024, 1, 2), "FR", None, 1, 1, None, None, None, 1, 0, 0, 0.0, None),
        (date(2024, 2, 10), "DE", None, 1, 1, 40.0, 40.0, 40.0, 4, 1, 1, 1.0, None),
    ]
    assert rows == [dict(zip(columns, row, strict=True)) for row in expected]
    schema = orders.lake.read("gold.order_metrics").schema
    assert list(schema.names) == columns
    assert schema.field("day").type == pa.date32()
    assert schema.field("units").type == pa.int64()  # not DuckDB's HUGEINT
    assert schema.field("orders").type == pa.int64()
    assert schema.field("refund_rate").type == pa.float64()


def test_metrics_by_month_hour_and_week(orders: JobContext) -> None:
    metrics = [
        {"name": "revenue", "aggregation": "sum", "column": "amount"},
        {"name": "orders", "aggregation": "count"},
        {"name": "customers", "aggregation": "count_distinct", "column": "customer_id"},
        {"name": "avg_amount", "aggregation": "avg", "column": "amount"},
        {
            "name": "per_order",
            "aggregation": "ratio",
            "numerator": "revenue",
            "denominator": "orders",
        },
        {
            "name": "per_customer_order",
            "aggregation": "ratio",
            "numerator": "per_order",
            "denominator": "customers",
        },
    ]
    by_month = run(orders, metrics_job(time_grain="month", metrics=metrics), "month")
    assert by_month == [
        {
            "month": date(2024, 1, 1),
            "revenue": 65.0,
            "orders": 5,
            "customers": 3,
            "avg_amount": 16.25,
            "per_order": 13.0,
            "per_customer_order": 13.0 / 3,
        },
        {
            "month": date(2024, 2, 1),
            "revenue": 40.0,
            "orders": 1,
            "customers": 1,
            "avg_amount": 40.0,
            "per_order": 40.0,
            "per_customer_order": 40.0,
        },
    ]

    count = [{"name": "orders", "aggregation": "count"}]
    by_hour = run(orders, metrics_job(time_grain="hour", metrics=count), "hour")
    assert [(row["hour"], row["orders"]) for row in by_hour][:3] == [
        (datetime(2024, 1, 1, 9), 1),
        (datetime(2024, 1, 1, 12), 1),
        (datetime(2024, 1, 1, 17), 1),
    ]
    assert orders.lake.read("gold.order_metrics").schema.field("hour").type == pa.timestamp("us")

    by_week = run(orders, metrics_job(time_grain="week", metrics=count), "week")
    # 2024-01-01 is a Monday; 2024-02-10 is in the week starting Monday 2024-02-05.
    assert by_week == [
        {"week": date(2024, 1, 1), "orders": 5},
        {"week": date(2024, 2, 5), "orders": 1},
    ]


def test_metrics_bucket_zoned_timestamps_in_utc(context: JobContext) -> None:
    schema = pa.schema([("at", pa.timestamp("us", tz="Europe/Berlin")), ("n", pa.int64())])
    # 00:30 in Berlin on 2 January is 23:30 UTC on 1 January.
    at = datetime(2024, 1, 1, 23, 30, tzinfo=timezone.utc)
    put(context, "silver.events", [{"at": at, "n": 1}], schema)
    job = gold_job(
        "event_metrics",
        ["silver.events"],
        transform_type="metrics_aggregate",
        metrics={
            "source": "events",
            "time_column": "at",
            "metrics": [{"name": "n", "aggregation": "sum", "column": "n"}],
        },
    )
    assert run(context, job) == [{"day": date(2024, 1, 1), "n": 1}]


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (
            {"name": "revenue", "aggregation": "sum", "column": "amout"},
            "metric `revenue` (sum): column `amout` is not in input `orders`",
        ),
        (
            {"name": "revenue", "aggregation": "avg"},
            "metric `revenue` (avg): `column` is required",
        ),
        (
            {"name": "rate", "aggregation": "ratio", "numerator": "orders", "denominator": "nope"},
            "metric `rate` (ratio): `denominator` `nope` is not another metric of this table. "
            "Metrics: `orders`",
        ),
        (
            {"name": "rate", "aggregation": "ratio", "numerator": "orders"},
            "metric `rate` (ratio): `denominator` is required",
        ),
        (
            {
                "name": "rate",
                "aggregation": "ratio",
                "numerator": "orders",
                "denominator": "orders",
                "column": "amount",
            },
            "metric `rate` (ratio): a ratio takes `numerator` and `denominator`",
        ),
        (
            {"name": "paid", "aggregation": "count", "filter": "staus = 'paid'"},
            'metric `paid` (count): cannot be computed: Binder Error: Referenced column "staus"',
        ),
        (
            {"name": "orders", "aggregation": "sum", "column": "amount"},
            "two metrics are named `orders`",
        ),
        (
            {"name": "country", "aggregation": "count"},
            "metric `country` has the name of the dimension column",
        ),
    ],
)
def test_metrics_errors_name_the_metric(
    orders: JobContext, metric: dict[str, Any], message: str
) -> None:
    job = metrics_job(
        dimensions=["country"], metrics=[{"name": "orders", "aggregation": "count"}, metric]
    )
    assert message in failure(orders, job)


def test_metrics_config_errors_name_the_field(orders: JobContext) -> None:
    message = failure(orders, metrics_job(dimensions=["region"]))
    assert "`metrics.dimensions` names `region`, not in input `orders`" in message
    assert "`country`" in message  # lists the columns there are
    message = failure(orders, metrics_job(source="sales"))
    assert "`metrics.source` is `sales`, which is not one of its inputs (`orders`)" in message
    message = failure(orders, metrics_job(time_column="status"))
    assert "`metrics.time_column` `status` is VARCHAR, not a date or timestamp" in message
    ratio_cycle = [
        {"name": "a", "aggregation": "ratio", "numerator": "b", "denominator": "c"},
        {"name": "b", "aggregation": "ratio", "numerator": "a", "denominator": "c"},
        {"name": "c", "aggregation": "count"},
    ]
    message = failure(orders, metrics_job(metrics=ratio_cycle))
    assert "ratios refer to each other in a cycle: `a` -> `b` -> `a`" in message


# snapshot -----------------------------------------------------------------------------------------

DIM_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("name", pa.string()),
        ("effective_from", pa.timestamp("us")),
        ("effective_to", pa.timestamp("us")),
    ]
)
DIM_CUSTOMER = [
    ("c1", "Ann", datetime(2024, 1, 1), datetime(2024, 1, 15, 10)),
    ("c1", "Ann B", datetime(2024, 1, 15, 10), None),
    ("c2", "Bob", datetime(2024, 1, 10), datetime(2024, 1, 20)),  # deleted on the 20th
    ("c3", "Cy", datetime(2024, 2, 1), None),  # not yet known in January
]


@pytest.fixture
def dim_customer(context: JobContext) -> JobContext:
    """`silver.dim_customer`, an SCD2 dimension, written."""
    rows = [dict(zip(DIM_SCHEMA.names, row, strict=True)) for row in DIM_CUSTOMER]
    put(context, "silver.dim_customer", rows, DIM_SCHEMA)
    return context


def snapshot_job(**config: Any) -> DatasetJob:
    snapshot = {
        "source": "dim_customer",
        "key_columns": ["customer_id"],
        "valid_from_column": "effective_from",
        "valid_to_column": "effective_to",
        **config,
    }
    return gold_job(
        "customers_as_of",
        ["silver.dim_customer"],
        dataset_type="snapshot",
        transform_type="snapshot",
        snapshot=snapshot,
    )


def names_on(context: JobContext, job: DatasetJob) -> list[tuple[str, str, date]]:
    rows = run(context, job, "customer_id")
    return [(row["customer_id"], row["name"], row["snapshot_date"]) for row in rows]


def test_snapshot_of_an_scd2_dimension(dim_customer: JobContext) -> None:
    # The run date (2024-01-15): c1's new version started during the day, so it is the one shown.
    assert names_on(dim_customer, snapshot_job()) == [
        ("c1", "Ann B", date(2024, 1, 15)),
        ("c2", "Bob", date(2024, 1, 15)),
    ]
    assert names_on(dim_customer, snapshot_job(as_of="2024-01-14")) == [
        ("c1", "Ann", date(2024, 1, 14)),
        ("c2", "Bob", date(2024, 1, 14)),
    ]
    # c2's version ended at midnight starting the 20th: gone that day; c3 not yet there.
    assert names_on(dim_customer, snapshot_job(as_of="2024-01-20")) == [
        ("c1", "Ann B", date(2024, 1, 20)),
    ]
    assert names_on(dim_customer, snapshot_job(as_of="2023-12-31")) == []
    rows = run(dim_customer, snapshot_job(as_of="2024-02-01", snapshot_date_column="as_of"))
    assert [(row["customer_id"], row["as_of"]) for row in rows] == [
        ("c1", date(2024, 2, 1)),
        ("c3", date(2024, 2, 1)),
    ]
    assert list(rows[0]) == [*DIM_SCHEMA.names, "as_of"]


def test_snapshot_of_dated_versions_takes_the_latest(context: JobContext) -> None:
    schema = pa.schema([("sku", pa.string()), ("price", pa.int64()), ("changed_on", pa.date32())])
    prices = [
        ("p1", 10, date(2024, 1, 1)),
        ("p1", 12, date(2024, 1, 10)),
        ("p1", 15, date(2024, 1, 11)),
        ("p2", 5, date(2024, 1, 12)),
    ]
    put(context, "silver.prices", [dict(zip(schema.names, r, strict=True)) for r in prices], schema)
    job = gold_job(
        "prices_as_of",
        ["silver.prices"],
        dataset_type="snapshot",
        transform_type="snapshot",
        snapshot={
            "source": "prices",
            "as_of": "2024-01-10",
            "key_columns": ["sku"],
            "valid_from_column": "changed_on",
        },
    )
    assert run(context, job, "sku") == [
        {
            "sku": "p1",
            "price": 12,
            "changed_on": date(2024, 1, 10),
            "snapshot_date": date(2024, 1, 10),
        }
    ]


def test_snapshot_refuses_ambiguous_keys(context: JobContext) -> None:
    overlapping = [
        ("c1", "Ann", datetime(2024, 1, 1), None),
        ("c1", "Ann B", datetime(2024, 1, 10), None),  # the first version was never closed
        ("c2", "Bob", datetime(2024, 1, 1), None),
    ]
    rows = [dict(zip(DIM_SCHEMA.names, row, strict=True)) for row in overlapping]
    put(context, "silver.dim_customer", rows, DIM_SCHEMA)
    message = failure(context, snapshot_job())
    assert (
        "the snapshot as of 2024-01-15 has more than one row for key(s) `customer_id`='c1' "
        "(2 rows): their validity intervals overlap" in message
    )
    same_start = [*overlapping, ("c2", "Bobby", datetime(2024, 1, 1), None)]
    rows = [dict(zip(DIM_SCHEMA.names, row, strict=True)) for row in same_start]
    put(context, "silver.dim_customer", rows, DIM_SCHEMA)
    message = failure(context, snapshot_job(valid_to_column=None))
    assert "key(s) `customer_id`='c2' (2 rows): their latest rows share one `effective_from`" in (
        message
    )


def test_snapshot_config_errors(dim_customer: JobContext) -> None:
    assert "`snapshot.as_of` `15/01/2024` is not a date. Write it as YYYY-MM-DD" in failure(
        dim_customer, snapshot_job(as_of="15/01/2024")
    )
    assert "`snapshot.valid_from_column` `name` is VARCHAR, not a date or timestamp" in failure(
        dim_customer, snapshot_job(valid_from_column="name")
    )
    assert "`snapshot.key_columns` names `id`, not in input `dim_customer`" in failure(
        dim_customer, snapshot_job(key_columns=["id"])
    )
    assert "already has a column `name`. Set `snapshot.snapshot_date_column`" in failure(
        dim_customer, snapshot_job(snapshot_date_column="name")
    )


# ml_training_set ----------------------------------------------------------------------------------

LABEL_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("label_time", pa.timestamp("us")), ("churned", pa.bool_())]
)
SPEND_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("updated_at", pa.timestamp("us")),
        ("total_spend", pa.float64()),
        ("orders", pa.int64()),
    ]
)
PROFILE_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("as_of", pa.date32()), ("segment", pa.string())]
)
TEN_AM = datetime(2024, 1, 10, 10)


def training_job(**overrides: Any) -> DatasetJob:
    config = {
        "base": "labels",
        "entity_columns": ["customer_id"],
        "label_column": "churned",
        "label_timestamp_column": "label_time",
        "features": [
            {
                "input": "spend",
                "key_columns": ["customer_id"],
                "timestamp_column": "updated_at",
                "columns": ["total_spend", "orders"],
                "prefix": "spend_",
            },
            {
                "input": "profile",
                "key_columns": ["customer_id"],
                "timestamp_column": "as_of",
                "columns": ["segment"],
                "prefix": "profile_",
            },
        ],
        **overrides,
    }
    return gold_job(
        "churn_training",
        ["silver.labels", "silver.spend", "silver.profile"],
        dataset_type="ml_training_set",
        transform_type="ml_training_set",
        ml_training=config,
    )


@pytest.fixture
def churn(context: JobContext) -> JobContext:
    """Labels and two feature tables, one updated a second after a label's time."""
    labels = [
        ("c1", TEN_AM, False),
        ("c1", datetime(2024, 1, 20, 10), True),
        ("c2", TEN_AM, False),
        ("c3", datetime(2024, 1, 5), True),
    ]
    spend = [
        ("c1", datetime(2024, 1, 1), 100.0, 1),
        ("c1", TEN_AM + timedelta(seconds=1), 999.0, 9),  # known one second after the label
        ("c1", datetime(2024, 1, 15), 150.0, 2),
        ("c2", TEN_AM, 50.0, 1),  # known exactly at the label's time: usable
        ("c3", datetime(2024, 1, 6), 70.0, 1),  # after c3's only label
    ]
    profile = [("c1", date(2024, 1, 1), "gold"), ("c2", date(2024, 1, 11), "silver")]
    for dataset, schema, rows in (
        ("silver.labels", LABEL_SCHEMA, labels),
        ("silver.spend", SPEND_SCHEMA, spend),
        ("silver.profile", PROFILE_SCHEMA, profile),
    ):
        put(context, dataset, [dict(zip(schema.names, r, strict=True)) for r in rows], schema)
    return context


def test_training_set_joins_features_as_of_each_label(churn: JobContext) -> None:
    rows = run(churn, training_job(), "customer_id", "label_time")
    columns = [
        "customer_id",
        "label_time",
        "churned",
        "spend_total_spend",
        "spend_orders",
        "profile_segment",
    ]
    assert rows == [
        dict(zip(columns, row, strict=True))
        for row in [
            ("c1", TEN_AM, False, 100.0, 1, "gold"),  # not the 999 known a second later
            ("c1", datetime(2024, 1, 20, 10), True, 150.0, 2, "gold"),
            ("c2", TEN_AM, False, 50.0, 1, None),  # profile only known on the 11th
            ("c3", datetime(2024, 1, 5), True, None, None, None),
        ]
    ]
    assert list(rows[0]) == columns


def test_training_set_never_leaks_future_values(context: JobContext) -> None:
    """Random labels and feature updates against a brute-force as-of lookup."""
    rng = random.Random(7)
    start = datetime(2024, 1, 1)
    labels = [
        {
            "customer_id": f"c{rng.randrange(8)}",
            "label_time": start + timedelta(minutes=rng.randrange(5000)),
            "churned": rng.random() < 0.5,
        }
        for _ in range(300)
    ]
    updates = {
        (f"c{rng.randrange(8)}", start + timedelta(minutes=rng.randrange(5000))) for _ in range(600)
    }
    spend = [
        {"customer_id": key, "updated_at": at, "total_spend": float(n), "orders": n}
        for n, (key, at) in enumerate(sorted(updates))
    ]
    put(context, "silver.labels", labels, LABEL_SCHEMA)
    put(context, "silver.spend", spend, SPEND_SCHEMA)
    put(context, "silver.profile", [], PROFILE_SCHEMA)
    rows = run(context, training_job(), "customer_id", "label_time", "churned")
    assert len(rows) == len(labels)
    for row in rows:
        known = [
            update
            for update in spend
            if update["customer_id"] == row["customer_id"]
            and update["updated_at"] <= row["label_time"]
        ]
        latest = max(known, key=lambda update: update["updated_at"], default=None)
        assert row["spend_orders"] == (latest["orders"] if latest else None), row


def test_training_set_errors(churn: JobContext) -> None:
    features = [
        {
            "input": "spend",
            "key_columns": ["customer_id"],
            "timestamp_column": "updated_at",
            "columns": ["orders"],
        },
        {
            "input": "profile",
            "key_columns": ["customer_id"],
            "timestamp_column": "as_of",
            "columns": ["customer_id"],
        },
    ]
    assert (
        "the training set would have the column(s) `customer_id` twice. Give the feature sets "
        "distinct `prefix` values" in failure(churn, training_job(features=features))
    )
    missing = [{**features[0], "columns": ["lifetime_value"]}]
    assert (
        "`ml_training.features[0].columns` names `lifetime_value`, not in input `spend`"
        in failure(churn, training_job(features=missing))
    )
    assert "`ml_training.label_column` names `label`, not in input `labels`" in failure(
        churn, training_job(label_column="label")
    )
    other_input = [{**features[0], "input": "orders"}]
    assert "`ml_training.features[0].input` is `orders`, which is not one of its inputs" in (
        failure(churn, training_job(features=other_input))
    )
    spend = [("c1", TEN_AM, 1.0, 1), ("c1", TEN_AM, 2.0, 2)]
    put(
        churn,
        "silver.spend",
        [dict(zip(SPEND_SCHEMA.names, r, strict=True)) for r in spend],
        SPEND_SCHEMA,
    )
    assert (
        "`ml_training.features[0]` (input `spend`) has several rows for one key at one time, "
        "e.g. `customer_id`='c1', `updated_at`=2024-01-10 10:00:00"
        in failure(churn, training_job())
    )


# export_feed --------------------------------------------------------------------------------------

EXPORT_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("country", pa.string()),
        ("revenue", pa.float64()),
        ("orders", pa.int64()),
    ]
)
EXPORT_ROWS = [
    {"day": date(2024, 1, 1), "country": "DE", "revenue": 30.5, "orders": 2},
    {"day": date(2024, 1, 1), "country": 'FR, "Paris"', "revenue": None, "orders": 1},
]


def export_job(file_format: str, path: str = "finance/daily") -> DatasetJob:
    return gold_job(
        "revenue_feed",
        ["gold.daily_revenue"],
        dataset_type="export_feed",
        transform_type="export_feed",
        export={"source": "daily_revenue", "file_format": file_format, "path": path},
    )


@pytest.fixture
def revenue(context: JobContext) -> JobContext:
    put(context, "gold.daily_revenue", EXPORT_ROWS, EXPORT_SCHEMA)
    return context


def test_export_writes_a_file_per_run_and_latest(revenue: JobContext) -> None:
    rows = run(revenue, export_job("csv"), "orders")
    assert sorted(rows, key=lambda r: r["orders"], reverse=True) == EXPORT_ROWS
    folder = revenue.lake.root / "exports" / "finance" / "daily"
    text = (folder / "run-1.csv").read_text(encoding="utf-8")
    assert list(csv.DictReader(text.splitlines())) == [
        {"day": "2024-01-01", "country": "DE", "revenue": "30.5", "orders": "2"},
        {"day": "2024-01-01", "country": 'FR, "Paris"', "revenue": "", "orders": "1"},
    ]
    assert (folder / "latest.csv").read_text(encoding="utf-8") == text

    revenue.run_id = "20240116T010203Z-abc123"
    put(revenue, "gold.daily_revenue", EXPORT_ROWS[:1], EXPORT_SCHEMA)
    run(revenue, export_job("csv"))
    assert sorted(path.name for path in folder.iterdir()) == [
        "20240116T010203Z-abc123.csv",
        "latest.csv",
        "run-1.csv",
    ]
    assert len((folder / "latest.csv").read_text(encoding="utf-8").splitlines()) == 2
    assert (folder / "run-1.csv").read_text(encoding="utf-8") == text  # earlier runs kept


def test_export_parquet_and_json(revenue: JobContext) -> None:
    run(revenue, export_job("parquet", "feeds/parquet"))
    folder = revenue.lake.root / "exports" / "feeds" / "parquet"
    table = pq.read_table(folder / "run-1.parquet")
    assert table.schema == EXPORT_SCHEMA
    assert table.to_pylist() == EXPORT_ROWS
    assert pq.read_table(folder / "latest.parquet").equals(table)

    run(revenue, export_job("json", "feeds/json"))
    lines = (revenue.lake.root / "exports/feeds/json/latest.json").read_text(encoding="utf-8")
    assert [json.loads(line) for line in lines.splitlines()] == [
        {"day": "2024-01-01", "country": "DE", "revenue": 30.5, "orders": 2},
        {"day": "2024-01-01", "country": 'FR, "Paris"', "revenue": None, "orders": 1},
    ]


def test_export_path_stays_in_the_exports_folder(revenue: JobContext) -> None:
    for path in ("../silver/orders", "/tmp/feed", "a/../../b", ".", ""):
        message = failure(revenue, export_job("csv", path))
        assert f"`export.path` `{path}` does not name a folder inside the lake's `exports/`" in (
            message
        )
    outside = revenue.lake.root.parent / "outside"
    outside.mkdir()
    (revenue.lake.root / "exports").mkdir()
    (revenue.lake.root / "exports" / "link").symlink_to(outside)
    with pytest.raises(PathOutsideWorkspaceError, match="points outside"):
        run_dataset_job(revenue, export_job("csv", "link/feed"))
    assert not any(outside.iterdir())


def test_export_csv_refuses_nested_columns(context: JobContext) -> None:
    schema = pa.schema([("id", pa.int64()), ("tags", pa.list_(pa.string()))])
    put(context, "gold.daily_revenue", [{"id": 1, "tags": ["a"]}], schema)
    with pytest.raises(
        TransformError, match=r"CSV cannot hold the nested or binary column\(s\) `tags`"
    ):
        run_dataset_job(context, export_job("csv"))
    run(context, export_job("json"))
    exported = context.lake.root / "exports/finance/daily/run-1.json"
    assert json.loads(exported.read_text(encoding="utf-8")) == {"id": 1, "tags": ["a"]}
