"""Conforming several sources into one row per key: mappings, priority, latest wins, errors."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from lakebook.errors import TransformError
from lakebook.runtime import JobContext
from tests.dataset_jobs import dataset_job, open_context, put, rows, run


@pytest.fixture
def context(tmp_path: Path) -> JobContext:
    """Two customer sources that disagree: a CRM and a billing system."""
    context = open_context(tmp_path / "ws")
    put(
        context,
        "bronze.crm",
        [
            {"customer_id": 1, "full_name": "ann", "country": "no", "changed": at(3)},
            {"customer_id": 2, "full_name": "bob", "country": "it", "changed": at(1)},
            {"customer_id": 3, "full_name": "cy", "country": None, "changed": None},
        ],
    )
    put(
        context,
        "bronze.billing",
        [
            {"cust_no": "2", "name": "Robert", "updated": at(2)},
            {"cust_no": "3", "name": "Cyrus", "updated": at(1)},
            {"cust_no": "4", "name": "Dee", "updated": at(5)},
        ],
    )
    return context


def at(day: int) -> datetime:
    return datetime(2024, 1, day, tzinfo=timezone.utc)


CRM = {
    "input": "crm",
    "columns": {
        "customer_id": "customer_id",
        "name": "upper(left(full_name, 1)) || substr(full_name, 2)",  # an expression
        "country": "upper(country)",
        "updated_at": "changed",
    },
}
BILLING = {
    "input": "billing",
    "source_system": "billing_v2",
    "columns": {
        "customer_id": "CAST(cust_no AS BIGINT)",
        "name": "name",
        "updated_at": "updated",
    },
}


def conform_job(**config: Any) -> Any:
    return dataset_job(
        dataset_type="dimension",
        inputs=[{"dataset": "bronze.crm"}, {"dataset": "bronze.billing"}],
        transform_type="conform_sources",
        conform={"key_columns": ["customer_id"], "mappings": [CRM, BILLING], **config},
    )


COLUMNS = ["customer_id", "name", "country", "source_system"]


def test_priority_keeps_the_most_trusted_sources_row(context: JobContext) -> None:
    run(context, conform_job(priority=["billing", "crm"]))
    assert context.lake.read("silver.t").column_names == [
        "customer_id",
        "name",
        "country",
        "updated_at",
        "source_system",
    ]
    assert rows(context, "silver.t", COLUMNS) == [
        (1, "Ann", "NO", "crm"),  # only in the CRM
        (2, "Robert", None, "billing_v2"),  # whole rows win: no country from the CRM
        (3, "Cyrus", None, "billing_v2"),
        (4, "Dee", None, "billing_v2"),
    ]


def test_priority_defaults_to_mapping_order(context: JobContext) -> None:
    run(context, conform_job())
    assert rows(context, "silver.t", COLUMNS) == [
        (1, "Ann", "NO", "crm"),
        (2, "Bob", "IT", "crm"),
        (3, "Cy", None, "crm"),
        (4, "Dee", None, "billing_v2"),
    ]


def test_latest_updated_row_wins_and_null_counts_as_oldest(context: JobContext) -> None:
    run(context, conform_job(resolution="latest", updated_at_column="updated_at"))
    assert rows(context, "silver.t", [*COLUMNS, "updated_at"]) == [
        (1, "Ann", "NO", "crm", "01-03"),
        (2, "Robert", None, "billing_v2", "01-02"),  # billing updated later
        (3, "Cyrus", None, "billing_v2", "01-01"),  # the CRM row has no update time
        (4, "Dee", None, "billing_v2", "01-05"),
    ]


def test_a_tie_on_updated_at_goes_to_the_higher_priority(context: JobContext) -> None:
    put(
        context,
        "bronze.billing",
        [{"cust_no": "1", "name": "Annie", "updated": at(3)}],  # same time as the CRM row
    )
    for priority, winner in [(["crm"], "Ann"), (["billing"], "Annie")]:
        run(
            context,
            conform_job(resolution="latest", updated_at_column="updated_at", priority=priority),
        )
        assert rows(context, "silver.t", ["customer_id", "name"])[0] == (1, winner)


def test_source_system_column_can_be_renamed_or_left_out(context: JobContext) -> None:
    run(context, conform_job(source_system_column="origin"))
    assert "origin" in context.lake.read("silver.t").column_names
    run(context, conform_job(source_system_column=None))
    assert context.lake.read("silver.t").column_names == [
        "customer_id",
        "name",
        "country",
        "updated_at",
    ]


def test_conformed_rows_can_be_upserted(context: JobContext) -> None:
    job = conform_job().model_copy(update={"refresh_mode": "upsert", "unique_key": ["customer_id"]})
    run(context, job)
    put(context, "bronze.billing", [{"cust_no": "5", "name": "Eve", "updated": at(6)}])
    assert run(context, job).table_version == 1
    assert [row[0] for row in rows(context, "silver.t", ["customer_id"])] == [1, 2, 3, 4, 5]


def test_rows_of_one_source_that_cannot_be_told_apart_fail_naming_the_key(
    context: JobContext,
) -> None:
    put(
        context,
        "bronze.billing",
        [
            {"cust_no": "7", "name": "Gus", "updated": at(1)},
            {"cust_no": "7", "name": "Gustav", "updated": at(1)},
        ],
    )
    with pytest.raises(TransformError) as caught:
        run(context, conform_job())
    assert "key (customer_id=7) has 2 rows from source `billing_v2` with no" in str(caught.value)
    with pytest.raises(TransformError, match=r"with the same `updated_at_column` value"):
        run(context, conform_job(updated_at_column="updated_at"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"mappings": [CRM, {**BILLING, "input": "erp"}]},
            r"`conform.mappings` names input\(s\) `erp`, but the job's inputs are `crm`, `billing`",
        ),
        (
            {"mappings": [CRM, {**BILLING, "columns": {"name": "name"}}]},
            r"the mapping of input `billing` does not map the key column\(s\) `customer_id`",
        ),
        ({"priority": ["crm", "sap"]}, r"`conform.priority` names `sap`, which is not a mapped"),
        ({"resolution": "latest"}, r"`conform.updated_at_column` is required when"),
        (
            {"mappings": [CRM, {**BILLING, "columns": {"customer_id": "no_such_column"}}]},
            r"the mapping of input `billing` does not work on it: .*no_such_column",
        ),
        (
            {"source_system_column": "name"},
            r"`conform.source_system_column` `name` is also a mapped column",
        ),
    ],
)
def test_config_problems_are_named(
    context: JobContext, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(TransformError, match=message):
        run(context, conform_job(**change))


def test_null_keys_fail_naming_the_source(context: JobContext) -> None:
    put(context, "bronze.billing", [{"cust_no": None, "name": "Nobody", "updated": at(1)}])
    with pytest.raises(
        TransformError, match=r"1 row\(s\) from source `billing_v2` have a null key column"
    ):
        run(context, conform_job())


def test_an_input_without_a_mapping_is_an_error(context: JobContext) -> None:
    put(context, "bronze.extra", [{"id": 1}])
    job = conform_job().model_copy(
        update={
            "inputs": [
                *conform_job().inputs,
                *dataset_job(inputs=[{"dataset": "bronze.extra"}], sql_text="SELECT 1").inputs,
            ]
        }
    )
    with pytest.raises(TransformError, match=r"input\(s\) `extra` have no mapping"):
        run(context, job)
