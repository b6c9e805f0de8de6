"""SCD2 dimensions over several batches: hand-checked tables after changes, untracked changes,
deletes and re-inserts, late keys and no-op reruns; the checks that refuse a bad commit.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
import pyarrow as pa
import pytest

from lakebook.errors import TransformError
from lakebook.metadata import RunStatus
from lakebook.runtime import JobContext
from lakebook.transforms import scd2
from lakebook.workspace import Workspace
from tests.conftest import write_pipeline
from tests.dataset_jobs import Clock, dataset_job, open_context, put, rows, run, version

SCD = ["effective_from", "effective_to", "is_current"]


@pytest.fixture
def context(tmp_path: Path) -> JobContext:
    return open_context(tmp_path / "ws")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def scd2_job(source: str = "bronze.customers", **config: Any) -> Any:
    return dataset_job(
        dataset_type="dimension",
        inputs=[{"dataset": source}],
        transform_type="scd2_dimension",
        scd2={"business_key_columns": ["id"], **config},
    )


def batch(context: JobContext, clock: Clock, day: str, snapshot: list[dict[str, Any]]) -> Any:
    """Load a snapshot of the source and run the dimension job on `day`."""
    clock.set(day)
    put(context, "bronze.customers", snapshot)
    return run(context, job_for_batches)


job_for_batches = scd2_job(change_detection_columns=["city"], hard_deletes="close")


def test_a_sequence_of_batches_builds_the_expected_history(
    context: JobContext, clock: Clock
) -> None:
    columns = ["id", "city", "name", *SCD]
    batch(
        context,
        clock,
        "2024-01-01",
        [{"id": 1, "city": "a", "name": "x"}, {"id": 2, "city": "b", "name": "y"}],
    )
    assert rows(context, "silver.t", columns) == [
        (1, "a", "x", "01-01", None, True),
        (2, "b", "y", "01-01", None, True),
    ]
    # 1 changes a tracked column, 2 only the untracked `name`, 3 is a late key.
    second = batch(
        context,
        clock,
        "2024-01-02",
        [
            {"id": 1, "city": "a2", "name": "x"},
            {"id": 2, "city": "b", "name": "y2"},
            {"id": 3, "city": "c", "name": "z"},
        ],
    )
    assert (second.table_version, second.rows_written) == (1, 4)
    assert rows(context, "silver.t", columns) == [
        (1, "a", "x", "01-01", "01-02", False),
        (1, "a2", "x", "01-02", None, True),
        (2, "b", "y2", "01-01", None, True),  # untracked change: updated in place
        (3, "c", "z", "01-02", None, True),
    ]
    # 2 disappears from the source: its version is closed (hard_deletes: close).
    third = [{"id": 1, "city": "a2", "name": "x"}, {"id": 3, "city": "c", "name": "z"}]
    assert batch(context, clock, "2024-01-03", third).table_version == 2
    after_delete = [
        (1, "a", "x", "01-01", "01-02", False),
        (1, "a2", "x", "01-02", None, True),
        (2, "b", "y2", "01-01", "01-03", False),
        (3, "c", "z", "01-02", None, True),
    ]
    assert rows(context, "silver.t", columns) == after_delete
    # The same snapshot again: nothing to do, no commit.
    rerun = batch(context, clock, "2024-01-04", third)
    assert (rerun.table_version, rerun.rows_written) == (2, 0)
    assert version(context, "silver.t") == 2
    assert rows(context, "silver.t", columns) == after_delete
    # 2 comes back: a new current version from the run time.
    fifth = [*third, {"id": 2, "city": "b", "name": "y2"}]
    assert batch(context, clock, "2024-01-05", fifth).table_version == 3
    assert rows(context, "silver.t", columns) == [
        (1, "a", "x", "01-01", "01-02", False),
        (1, "a2", "x", "01-02", None, True),
        (2, "b", "y2", "01-01", "01-03", False),
        (2, "b", "y2", "01-05", None, True),
        (3, "c", "z", "01-02", None, True),
    ]


def test_tombstones_mark_deletes_and_are_closed_when_the_key_returns(
    context: JobContext, clock: Clock
) -> None:
    job = scd2_job(hard_deletes="tombstone")
    columns = ["id", "city", *SCD, "is_deleted"]
    for day, snapshot in [
        ("2024-01-01", [{"id": 1, "city": "a"}, {"id": 2, "city": "b"}]),
        ("2024-01-02", [{"id": 1, "city": "a"}]),
    ]:
        clock.set(day)
        put(context, "bronze.customers", snapshot)
        run(context, job)
    deleted = [
        (1, "a", "01-01", None, True, False),
        (2, "b", "01-01", "01-02", False, False),
        (2, None, "01-02", None, True, True),
    ]
    assert rows(context, "silver.t", columns) == deleted
    clock.set("2024-01-03")  # still deleted: nothing changes
    assert run(context, job).table_version == 1
    assert rows(context, "silver.t", columns) == deleted
    clock.set("2024-01-04")
    put(context, "bronze.customers", [{"id": 1, "city": "a"}, {"id": 2, "city": "b2"}])
    assert run(context, job).table_version == 2
    assert rows(context, "silver.t", columns) == [
        (1, "a", "01-01", None, True, False),
        (2, "b", "01-01", "01-02", False, False),
        (2, "b2", "01-04", None, True, False),
        (2, None, "01-02", "01-04", False, True),
    ]


def test_ignored_deletes_stay_current_and_commit_nothing(context: JobContext, clock: Clock) -> None:
    job = scd2_job()  # hard_deletes: ignore
    put(context, "bronze.customers", [{"id": 1, "city": "a"}, {"id": 2, "city": "b"}])
    run(context, job)
    clock.set("2024-01-02")
    put(context, "bronze.customers", [{"id": 1, "city": "a"}])
    assert run(context, job).table_version == 0
    assert rows(context, "silver.t", ["id", "city", *SCD]) == [
        (1, "a", "01-01", None, True),
        (2, "b", "01-01", None, True),
    ]


def test_hash_change_detection_stores_the_hash_of_the_tracked_columns(
    context: JobContext, clock: Clock
) -> None:
    job = scd2_job(change_detection="hash", change_detection_columns=["city", "zip"])
    columns = ["id", "city", "zip", "name", "row_hash", *SCD]

    def md5(*values: str | None) -> str:
        listed = ",".join("null" if v is None else f'"{v}"' for v in values)
        return hashlib.md5(f"[{listed}]".encode()).hexdigest()

    put(context, "bronze.customers", [{"id": 1, "city": "a", "zip": None, "name": "x"}])
    run(context, job)
    clock.set("2024-01-02")  # only the untracked name changes
    put(context, "bronze.customers", [{"id": 1, "city": "a", "zip": None, "name": "x2"}])
    run(context, job)
    assert rows(context, "silver.t", columns) == [
        (1, "a", None, "x2", md5("a", None), "01-01", None, True)
    ]
    clock.set("2024-01-03")
    put(context, "bronze.customers", [{"id": 1, "city": "a", "zip": "9", "name": "x2"}])
    run(context, job)
    assert rows(context, "silver.t", columns) == [
        (1, "a", "9", "x2", md5("a", "9"), "01-03", None, True),
        (1, "a", None, "x2", md5("a", None), "01-01", "01-03", False),
    ]
    assert run(context, job).table_version == 2  # unchanged: no commit


def test_effective_time_column_dates_versions_and_out_of_order_data_is_refused(
    context: JobContext,
) -> None:
    job = scd2_job(effective_time_column="updated_at")

    def at(day: str) -> datetime:
        return datetime.fromisoformat(day).replace(tzinfo=timezone.utc)

    columns = ["id", "city", "updated_at", *SCD]
    put(context, "bronze.customers", [{"id": 1, "city": "a", "updated_at": at("2023-06-01")}])
    run(context, job)
    put(
        context,
        "bronze.customers",
        [
            {"id": 1, "city": "b", "updated_at": at("2023-07-01")},
            {"id": 2, "city": "c", "updated_at": at("2023-07-02")},
        ],
    )
    run(context, job)
    expected = [
        (1, "a", "06-01", "06-01", "07-01", False),
        (1, "b", "07-01", "07-01", None, True),
        (2, "c", "07-02", "07-02", None, True),
    ]
    assert rows(context, "silver.t", columns) == expected
    # A newer timestamp alone is not a change (updated_at is not tracked): updated in place.
    put(
        context,
        "bronze.customers",
        [
            {"id": 1, "city": "b", "updated_at": at("2023-08-01")},
            {"id": 2, "city": "c", "updated_at": at("2023-07-02")},
        ],
    )
    assert run(context, job).table_version == 2
    expected[1] = (1, "b", "08-01", "07-01", None, True)
    assert rows(context, "silver.t", columns) == expected
    # A change dated before the current version started would overlap it: refused.
    put(context, "bronze.customers", [{"id": 1, "city": "z", "updated_at": at("2023-06-15")}])
    with pytest.raises(TransformError) as caught:
        run(context, job)
    message = str(caught.value)
    assert "refusing to commit the SCD2 dimension: business key (id=1)" in message
    assert "Nothing was written" in message and "`updated_at` values must increase" in message
    assert version(context, "silver.t") == 2
    assert rows(context, "silver.t", columns) == expected


def test_output_column_names_are_configurable(context: JobContext) -> None:
    job = scd2_job(
        effective_from_column="valid_from",
        effective_to_column="valid_to",
        is_current_column="current_flag",
    )
    put(context, "bronze.customers", [{"id": 1, "city": "a"}])
    run(context, job)
    assert context.lake.read("silver.t").column_names == [
        "id",
        "city",
        "valid_from",
        "valid_to",
        "current_flag",
    ]


def test_a_new_input_column_is_null_in_history_and_a_dropped_one_is_an_error(
    context: JobContext, clock: Clock
) -> None:
    job = scd2_job(change_detection_columns=["city"])
    put(context, "bronze.customers", [{"id": 1, "city": "a"}, {"id": 2, "city": "b"}])
    run(context, job)
    clock.set("2024-01-02")
    put(
        context,
        "bronze.customers",
        [{"id": 1, "city": "a2", "tier": "gold"}, {"id": 2, "city": "b", "tier": "silver"}],
    )
    run(context, job)
    assert rows(context, "silver.t", ["id", "city", "tier", *SCD]) == [
        (1, "a", None, "01-01", "01-02", False),
        (1, "a2", "gold", "01-02", None, True),
        (2, "b", "silver", "01-01", None, True),
    ]
    put(context, "bronze.customers", [{"id": 1, "city": "a2"}])
    with pytest.raises(TransformError, match=r"the input no longer has column\(s\) `tier`"):
        run(context, job)


@pytest.mark.parametrize(
    ("snapshot", "config", "message"),
    [
        (
            [{"id": 1, "city": "a"}, {"id": 1, "city": "b"}],
            {},
            r"business key \(id=1\) appears 2 times in the input",
        ),
        ([{"id": None, "city": "a"}], {}, r"1 input row\(s\) have a null business key \(id\)"),
        (
            [{"id": 1, "city": "a"}],
            {"change_detection_columns": ["nope"]},
            r"`scd2.change_detection_columns` names `nope`, not a column of the input",
        ),
        (
            [{"id": 1, "is_current": True}],
            {},
            r"the input already has column\(s\) `is_current`, which the SCD2 dimension adds",
        ),
        (
            [{"id": 1, "city": "a", "at": None}],
            {"effective_time_column": "at"},
            r"business key \(id=1\) has no `at` \(the effective_time_column\)",
        ),
    ],
)
def test_bad_input_or_config_fails_naming_the_problem(
    context: JobContext, snapshot: list[dict[str, Any]], config: dict[str, Any], message: str
) -> None:
    put(context, "bronze.customers", snapshot)
    with pytest.raises(TransformError, match=message):
        run(context, scd2_job(**config))


def test_scd2_needs_full_refresh(context: JobContext) -> None:
    put(context, "bronze.customers", [{"id": 1, "city": "a"}])
    job = scd2_job().model_copy(update={"refresh_mode": "append"})
    with pytest.raises(TransformError, match=r"set `refresh_mode: full_refresh`"):
        run(context, job)


def test_a_dimension_with_two_current_rows_for_a_key_is_not_committed(
    context: JobContext,
) -> None:
    day = datetime(2024, 1, 1, tzinfo=timezone.utc)
    broken = pa.table(
        {
            "id": [5, 5],
            "city": ["a", "a"],
            "effective_from": pa.array([day, day], pa.timestamp("us", tz="UTC")),
            "effective_to": pa.array([None, None], pa.timestamp("us", tz="UTC")),
            "is_current": [True, True],
        }
    )
    put(context, "silver.t", broken)
    put(context, "bronze.customers", [{"id": 5, "city": "a"}])
    with pytest.raises(TransformError, match=r"business key \(id=5\) has 2 current rows"):
        run(context, scd2_job())
    assert version(context, "silver.t") == 0


def test_two_runs_on_one_dimension_at_once_both_land_in_order(
    context: JobContext, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(context, "bronze.customers", [{"id": 1, "city": "a"}, {"id": 2, "city": "b"}])
    run(context, scd2_job())  # hard_deletes: ignore, so each run may hold only its own key
    build = scd2.build

    def slow_build(*args: Any) -> None:
        time.sleep(0.3)  # both runs would surely overlap here if nothing kept them apart
        build(*args)

    monkeypatch.setattr(scd2, "build", slow_build)
    clock.set("2024-01-02")
    put(context, "bronze.first", [{"id": 1, "city": "a2"}])
    put(context, "bronze.second", [{"id": 2, "city": "b2"}])
    jobs = [scd2_job(source=f"bronze.{name}") for name in ("first", "second")]
    # Each run reads the dimension and writes it back whole: without the lock, the second
    # writer would not see the first one's change and would lose it.
    threads = [threading.Thread(target=run, args=(context, job)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert version(context, "silver.t") == 2
    assert rows(context, "silver.t", ["id", "city", *SCD]) == [
        (1, "a", "01-01", "01-02", False),
        (1, "a2", "01-02", None, True),
        (2, "b", "01-01", "01-02", False),
        (2, "b2", "01-02", None, True),
    ]


SCD2_PIPELINE = """
name: customers
ingest_jobs:
  - name: raw_customers
    source_type: local_path
    format: csv
    config: {file: {path: data/customers.csv}}
dataset_jobs:
  - name: dim_customer
    layer: silver
    dataset_type: dimension
    inputs: [{dataset: bronze.raw_customers, alias: customers}]
    transform_type: scd2_dimension
    scd2:
      business_key_columns: [id]
      change_detection_columns: [city]
      hard_deletes: close
    data_quality:
      - {name: one_version_start_per_key, check_type: unique, columns: [id, effective_from]}
"""


@pytest.mark.slow
def test_an_scd2_pipeline_updates_its_dimension_through_real_kernels(
    empty_workspace: Path,
) -> None:
    folder = write_pipeline(empty_workspace, "customers", SCD2_PIPELINE)
    (folder / "data").mkdir()
    (folder / "data" / "customers.csv").write_text("id,city,name\n1,Oslo,Ann B\n3,Lima,Cy\n")
    workspace = Workspace.open(empty_workspace)
    # Yesterday's dimension, built in this process from yesterday's snapshot.
    (job,) = workspace.pipeline("customers").dataset_jobs
    earlier = open_context(empty_workspace, run_id="earlier")
    put(
        earlier,
        "bronze.raw_customers",
        [{"id": 1, "city": "Oslo", "name": "Ann"}, {"id": 2, "city": "Rome", "name": "Bob"}],
    )
    run(earlier, job)
    summary = workspace.run("customers")
    assert summary.status == RunStatus.SUCCEEDED, [job.error for job in summary.jobs]
    assert summary.job("dim_customer").rows_written == 3
    dimension = workspace.query(
        "SELECT id, city, name, is_current, effective_to IS NULL AS open "
        "FROM silver.dim_customer ORDER BY id"
    )
    assert [tuple(row.values()) for row in dimension.to_pylist()] == [
        (1, "Oslo", "Ann B", True, True),  # only the untracked name changed: updated in place
        (2, "Rome", "Bob", False, False),  # deleted from the source: closed
        (3, "Lima", "Cy", True, True),  # a late key
    ]
    record = nbformat.read(Path(summary.record_dir) / "dim_customer.ipynb", as_version=4)
    assert "is_current" in str([cell.get("outputs") for cell in record.cells])
