"""Refresh modes of dataset jobs (one commit each), failures that commit nothing, the write lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from lakebook.dq import DataQualityError
from lakebook.errors import TransformError
from lakebook.runtime import JobContext
from lakebook.storage import DatasetLockTimeoutError
from lakebook.transform import refresh_window, window_days
from tests.dataset_jobs import dataset_job, open_context, put, rows, run, version


@pytest.fixture
def context(tmp_path: Path) -> JobContext:
    """A workspace whose run date is 2024-01-04."""
    return open_context(tmp_path / "ws", run_date="2024-01-04")


def days(*values: tuple[str, int]) -> pa.Table:
    """Rows of (day, amount) with a DATE column `day`."""
    return pa.table(
        {
            "day": pa.array([date.fromisoformat(d) for d, _ in values], pa.date32()),
            "amount": pa.array([a for _, a in values], pa.int64()),
        }
    )


def test_full_refresh_replaces_the_table_in_one_commit(context: JobContext) -> None:
    put(context, "bronze.src", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}])
    job = dataset_job(inputs=[{"dataset": "bronze.src"}], sql_text="SELECT id, v FROM src")
    assert run(context, job).table_version == 0
    put(context, "bronze.src", [{"id": 3, "v": "c"}])
    result = run(context, job)
    assert (result.table_version, result.rows_written) == (1, 1)
    assert rows(context, "silver.t") == [(3, "c")]


def test_append_adds_rows_and_an_empty_result_commits_nothing(context: JobContext) -> None:
    put(context, "bronze.src", [{"id": 1}, {"id": 2}])
    job = dataset_job(
        inputs=[{"dataset": "bronze.src"}], sql_text="SELECT id FROM src", refresh_mode="append"
    )
    run(context, job)
    assert run(context, job).table_version == 1
    assert rows(context, "silver.t") == [(1,), (1,), (2,), (2,)]
    put(context, "bronze.src", pa.table({"id": pa.array([], pa.int64())}))
    assert run(context, job).table_version == 1
    assert version(context, "silver.t") == 1


WINDOW_SQL = (
    "SELECT day, amount FROM src "
    "WHERE day BETWEEN getvariable('window_start') AND getvariable('window_end')"
)


def window_job(**fields: Any) -> Any:
    return dataset_job(
        inputs=[{"dataset": "bronze.src"}],
        refresh_mode="overwrite_partition",
        partitioning=["day"],
        **{"sql_text": WINDOW_SQL, "refresh_window": "2 days", **fields},
    )


def test_overwrite_partition_replaces_only_the_window(context: JobContext) -> None:
    context.lake.write_table(
        context.lake.table_path("silver.t"),
        days(("2024-01-01", 1), ("2024-01-02", 2), ("2024-01-03", 3), ("2024-01-04", 4)),
        mode="overwrite",
        partition_by=["day"],
    )
    # Run date 2024-01-04, window "2 days": 01-03 and 01-04. The source changed 01-03, has no
    # rows for 01-04 any more, and rows outside the window that must not be touched.
    put(context, "bronze.src", days(("2024-01-02", 20), ("2024-01-03", 30), ("2024-01-03", 31)))
    result = run(context, window_job())
    assert (result.table_version, result.rows_written) == (1, 2)
    assert rows(context, "silver.t") == [
        (date(2024, 1, 1), 1),
        (date(2024, 1, 2), 2),
        (date(2024, 1, 3), 30),
        (date(2024, 1, 3), 31),
    ]


def test_overwrite_partition_first_run_creates_the_partitioned_table(context: JobContext) -> None:
    put(context, "bronze.src", days(("2024-01-04", 4), ("2024-01-01", 1)))
    assert run(context, window_job(refresh_window=None)).table_version == 0
    assert rows(context, "silver.t") == [(date(2024, 1, 4), 4)]
    assert context.lake.table("silver.t").metadata().partition_columns == ["day"]


def test_overwrite_partition_refuses_rows_outside_the_window(context: JobContext) -> None:
    put(context, "silver.t", days(("2024-01-01", 1)))
    put(context, "bronze.src", days(("2024-01-01", 10), ("2024-01-02", 20), ("2024-01-04", 40)))
    with pytest.raises(TransformError) as caught:
        run(context, window_job(sql_text="SELECT day, amount FROM src"))
    message = str(caught.value)
    assert "Job `t`: 2 row(s) of the result have `day` outside the refresh window" in message
    assert "2024-01-03 to 2024-01-04" in message and "getvariable('window_start')" in message
    assert version(context, "silver.t") == 0
    assert rows(context, "silver.t") == [(date(2024, 1, 1), 1)]


def test_overwrite_partition_needs_a_date_column_and_a_readable_window(
    context: JobContext,
) -> None:
    put(context, "bronze.src", days(("2024-01-04", 4)))
    with pytest.raises(TransformError, match=r"`day` to be a DATE, but it is VARCHAR"):
        run(context, window_job(sql_text="SELECT CAST(day AS VARCHAR) AS day FROM src"))
    with pytest.raises(ValidationError, match=r"`refresh_window` `3 months` is not a window"):
        window_job(refresh_window="3 months")  # refused when the pipeline file is read


@pytest.mark.parametrize(
    ("text", "expected"), [(None, 1), ("1 day", 1), ("3 days", 3), (" 2 Weeks ", 14)]
)
def test_refresh_window_counts_back_from_the_run_date(text: str | None, expected: int) -> None:
    job = window_job(refresh_window=text)
    assert window_days(job) == expected
    window = refresh_window(job, date(2024, 1, 31))
    assert (window.end - window.start).days == expected - 1 and window.end == date(2024, 1, 31)


def upsert_job(**fields: Any) -> Any:
    return dataset_job(
        inputs=[{"dataset": "bronze.src"}],
        sql_text="SELECT * FROM src",
        refresh_mode="upsert",
        **{"unique_key": ["id"], **fields},
    )


def test_upsert_updates_matches_inserts_new_keys_and_keeps_the_rest(context: JobContext) -> None:
    put(context, "bronze.src", [{"id": 1, "v": "a", "n": 1}, {"id": 2, "v": "b", "n": 2}])
    assert run(context, upsert_job()).table_version == 0  # the first run creates the table
    put(context, "bronze.src", [{"id": 2, "v": "b", "n": 20}, {"id": 3, "v": "c", "n": 3}])
    assert run(context, upsert_job()).table_version == 1
    assert rows(context, "silver.t") == [(1, "a", 1), (2, "b", 20), (3, "c", 3)]
    # The same rows again change nothing, so nothing is committed.
    assert run(context, upsert_job()).table_version == 1
    # A new column: matched rows gain it, the others keep NULL.
    put(context, "bronze.src", [{"id": 3, "v": "c", "n": 3, "tier": "gold"}])
    assert run(context, upsert_job()).table_version == 2
    assert rows(context, "silver.t") == [
        (1, "a", 1, None),
        (2, "b", 20, None),
        (3, "c", 3, "gold"),
    ]


def test_upsert_refuses_null_and_repeated_keys(context: JobContext) -> None:
    put(context, "bronze.src", [{"id": 1, "v": "a"}])
    run(context, upsert_job())
    put(context, "bronze.src", [{"id": 2, "v": "a"}, {"id": 2, "v": "b"}])
    with pytest.raises(TransformError, match=r"key \(id=2\) appears 2 times in the result"):
        run(context, upsert_job())
    put(context, "bronze.src", [{"id": None, "v": "a"}, {"id": 3, "v": "b"}])
    with pytest.raises(TransformError, match=r"1 row\(s\) of the result have a null `unique_key`"):
        run(context, upsert_job())
    with pytest.raises(TransformError, match=r"`unique_key` column\(s\) `nope` are not in the"):
        run(context, upsert_job(unique_key=["nope"]))
    assert version(context, "silver.t") == 0


@pytest.mark.parametrize("mode", ["full_refresh", "append", "overwrite_partition", "upsert"])
def test_a_job_failing_after_its_build_leaves_the_table_as_it_was(
    context: JobContext, mode: str
) -> None:
    put(context, "bronze.src", days(("2024-01-04", 4)))
    fields: dict[str, Any] = {
        "inputs": [{"dataset": "bronze.src"}],
        "sql_text": "SELECT * FROM src",
        "refresh_mode": mode,
        "partitioning": ["day"] if mode == "overwrite_partition" else [],
        "unique_key": ["day"] if mode == "upsert" else [],
    }
    run(context, dataset_job(**fields))
    before = rows(context, "silver.t")
    put(context, "bronze.src", days(("2024-01-04", -5)))
    blocking = [{"name": "positive", "check_type": "range", "column": "amount", "min": 0}]
    with pytest.raises(DataQualityError):
        run(context, dataset_job(**fields, data_quality=blocking))
    assert version(context, "silver.t") == 0
    assert rows(context, "silver.t") == before


# -- the write lock -----------------------------------------------------------------------


def lock_holder_process(context: JobContext, dataset: str) -> subprocess.Popen[str]:
    """Another process that takes the dataset's write lock as run `other-run` and keeps it."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from lakebook.storage import Lake\n"
        f"with Lake(Path({str(context.lake.root)!r})).write_lock({dataset!r}, timeout=5, "
        "run='other-run', job='t'):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process


def test_a_second_writer_waits_for_the_lock_then_commits(context: JobContext) -> None:
    put(context, "bronze.src", [{"id": 1}])
    job = dataset_job(inputs=[{"dataset": "bronze.src"}], sql_text="SELECT id FROM src")
    finished = threading.Event()
    errors: list[BaseException] = []

    def second_run() -> None:
        try:
            run(context, job)
        except BaseException as error:  # reported to the test thread below
            errors.append(error)
        finished.set()

    with context.lake.write_lock("silver.t", timeout=1, run="first-run", job="t"):
        holder = context.lake.lock_holder("silver.t")
        assert holder is not None
        assert (holder["run"], holder["pid"]) == ("first-run", os.getpid())
        waiter = threading.Thread(target=second_run)
        waiter.start()
        assert not finished.wait(0.5)  # blocked while the lock is held
        assert not context.lake.exists("silver.t")
    waiter.join(10)
    assert finished.is_set() and not errors, errors
    assert rows(context, "silver.t") == [(1,)]
    assert context.lake.lock_holder("silver.t") is None


def test_a_writer_gives_up_after_the_timeout_naming_the_holder(context: JobContext) -> None:
    put(context, "bronze.src", [{"id": 1}])
    job = dataset_job(inputs=[{"dataset": "bronze.src"}], sql_text="SELECT id FROM src")
    context.settings.lock_timeout_seconds = 0.3
    holder = lock_holder_process(context, "silver.t")
    try:
        started = time.monotonic()
        with pytest.raises(DatasetLockTimeoutError) as caught:
            run(context, job)
        assert 0.3 <= time.monotonic() - started < 3
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert "Dataset `silver.t` is being written by another run" in message
    assert "run other-run" in message and f"pid {holder.pid}" in message
    assert "`c.Lakebook.lock_timeout_seconds`" in message
    assert not context.lake.exists("silver.t")


def test_a_killed_holder_releases_the_lock(context: JobContext) -> None:
    put(context, "bronze.src", [{"id": 1}])
    job = dataset_job(inputs=[{"dataset": "bronze.src"}], sql_text="SELECT id FROM src")
    context.settings.lock_timeout_seconds = 5
    holder = lock_holder_process(context, "silver.t")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert run(context, job).table_version == 0


def test_concurrent_upserts_into_one_dataset_both_land(context: JobContext) -> None:
    put(context, "bronze.a", [{"id": i, "v": "a"} for i in range(0, 50)])
    put(context, "bronze.b", [{"id": i, "v": "b"} for i in range(25, 75)])
    jobs = [
        dataset_job(
            inputs=[{"dataset": f"bronze.{name}", "alias": "src"}],
            sql_text="SELECT * FROM src",
            refresh_mode="upsert",
            unique_key=["id"],
        )
        for name in ("a", "b")
    ]
    put(
        context,
        "silver.t",
        pa.table({"id": pa.array([], pa.int64()), "v": pa.array([], pa.string())}),
    )
    results: list[int | None] = []
    threads = [
        threading.Thread(target=lambda job=job: results.append(run(context, job).table_version))
        for job in jobs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [1, 2]  # type: ignore[type-var]  # one after the other, never both at once
    table = rows(context, "silver.t")
    assert [row[0] for row in table] == list(range(75))
    assert all(value in ("a", "b") for _, value in table)
