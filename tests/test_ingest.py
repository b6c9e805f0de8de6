"""Ingest through the library (real DuckDB, real Delta tables): Landing, Bronze, accounting, errors."""

from __future__ import annotations

import hashlib
import math
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

import lakebook.ingest
from lakebook.errors import IngestError, PathOutsideWorkspaceError
from lakebook.results import JobResult
from lakebook.runtime import JobContext
from lakebook.specs import IngestJob
from tests.conftest import JAFFLE_DATA

RUN_DATE = "2026-11-30"


def ingest(context: JobContext, job: IngestJob, watermark: str | None) -> tuple[JobResult, Any]:
    """`lakebook.ingest.ingest`, looked up at call time so conftest's accounting check applies."""
    return lakebook.ingest.ingest(context, job, watermark)


def make_context(workspace: Path, run_id: str = "run1", run_date: str = RUN_DATE) -> JobContext:
    return JobContext.open(str(workspace), "demo", run_id, run_date)


def make_job(**fields: Any) -> IngestJob:
    base: dict[str, Any] = {"name": "things", "source_type": "local_path", "format": "csv"}
    return IngestJob.model_validate({**base, **fields})


def source(workspace: Path, name: str, content: bytes) -> str:
    folder = workspace / "pipelines" / "demo" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    return f"data/{name}"


def assert_accounting(result: JobResult) -> None:
    """Every ingest run accounts for every row it read."""
    assert result.rows_read == (
        result.rows_written + result.quarantined_rows + result.deduplicated_rows
    )


def bronze_rows(workspace: Path, name: str = "things") -> list[dict[str, Any]]:
    table = DeltaTable(str(workspace / "lake" / "bronze" / name)).to_pyarrow_table()
    return sorted(table.to_pylist(), key=lambda row: str(row.get("id")))


def test_lf_and_crlf_csv_load_identically(empty_workspace: Path) -> None:
    lf = source(empty_workspace, "lf.csv", b"id,name,city\n1,Ann,Oslo\n2,Bob,Rome\n")
    crlf = source(empty_workspace, "crlf.csv", b"id,name,city\r\n1,Ann,Oslo\r\n2,Bob,Rome\r\n")
    context = make_context(empty_workspace)
    results = []
    for name, path in (("lf", lf), ("crlf", crlf)):
        result, _ = ingest(context, make_job(name=name, config={"file": {"path": path}}), None)
        assert_accounting(result)
        results.append(bronze_rows(empty_workspace, name))
    strip = ("_run_id", "_ingested_at", "_source_file")
    lf_rows, crlf_rows = (
        [{k: v for k, v in r.items() if k not in strip} for r in rs] for rs in results
    )
    assert lf_rows == crlf_rows
    assert lf_rows[1]["city"] == "Rome"  # no stray carriage return in the last column


def test_jaffle_orders_crlf_file_loads_every_row(empty_workspace: Path) -> None:
    raw = (JAFFLE_DATA / "raw_orders.csv").read_bytes()
    assert b"\r\n" in raw
    path = source(empty_workspace, "raw_orders.csv", raw)
    result, sample = ingest(
        make_context(empty_workspace), make_job(config={"file": {"path": path}}), None
    )
    assert result.rows_read == result.rows_written == raw.count(b"\r\n") - 1
    statuses = {row["status"] for row in bronze_rows(empty_workspace)}
    assert statuses == {"placed", "shipped", "completed", "return_pending", "returned"}
    assert sample.num_rows == 10


def test_landing_keeps_the_raw_file_byte_for_byte(empty_workspace: Path) -> None:
    content = 'id,name\r\n1,Zoë\r\n2,"quoted, comma"\r\n'.encode()
    path = source(empty_workspace, "raw.csv", content)
    result, _ = ingest(
        make_context(empty_workspace, "r42"), make_job(config={"file": {"path": path}}), None
    )
    landed = empty_workspace / "lake" / result.source_files[0]
    assert landed == empty_workspace / "lake/landing/demo/things/2026/11/30/r42/raw.csv"
    assert hashlib.sha256(landed.read_bytes()).digest() == hashlib.sha256(content).digest()
    assert [row["name"] for row in bronze_rows(empty_workspace)] == ["Zoë", "quoted, comma"]


@pytest.mark.parametrize(
    ("pattern", "folder"),
    [("yyyy/MM/dd", "dt=2026-11-30"), ("yyyy/MM", "dt=2026-11"), ("yyyy", "dt=2026")],
)
def test_bronze_is_partitioned_by_ingest_date(
    empty_workspace: Path, pattern: str, folder: str
) -> None:
    path = source(empty_workspace, "a.csv", b"id\n1\n2\n")
    job = make_job(partition_pattern=pattern, config={"file": {"path": path}})
    ingest(make_context(empty_workspace), job, None)
    table_dir = empty_workspace / "lake" / "bronze" / "things"
    assert [p.name for p in table_dir.iterdir() if p.name.startswith("dt=")] == [folder]
    assert DeltaTable(str(table_dir)).metadata().partition_columns == ["dt"]
    rows = bronze_rows(empty_workspace)
    assert {row["_run_id"] for row in rows} == {"run1"}
    assert all(row["_source_file"].endswith("a.csv") for row in rows)


def test_partition_mode_none_writes_no_dt_column(empty_workspace: Path) -> None:
    path = source(empty_workspace, "a.csv", b"id\n1\n")
    ingest(
        make_context(empty_workspace),
        make_job(partition_mode="none", config={"file": {"path": path}}),
        None,
    )
    assert "dt" not in bronze_rows(empty_workspace)[0]


@pytest.mark.parametrize(
    ("fmt", "content"),
    [
        ("json", b'[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]'),
        ("jsonl", b'{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n'),
        ("json", b'{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n'),
    ],
)
def test_json_arrays_and_newline_delimited_json(
    empty_workspace: Path, fmt: str, content: bytes
) -> None:
    path = source(empty_workspace, f"data.{fmt}", content)
    result, _ = ingest(
        make_context(empty_workspace), make_job(format=fmt, config={"file": {"path": path}}), None
    )
    assert result.rows_written == 2
    assert [row["name"] for row in bronze_rows(empty_workspace)] == ["a", "b"]


USER_SCHEMA = [
    {"name": "id", "type": "integer", "nullable": False},
    {"name": "amount", "type": "double"},
    {"name": "day", "type": "date"},
]
BAD_ROWS = b"id,amount,day\n1,1.5,2024-01-01\n2,abc,2024-01-02\n,3,2024-01-03\n4,4,not-a-date\n5,5,2024-01-05\n"


def test_invalid_rows_fail_the_job_naming_row_and_column(empty_workspace: Path) -> None:
    path = source(empty_workspace, "bad.csv", BAD_ROWS)
    job = make_job(schema_mode="user", user_schema=USER_SCHEMA, config={"file": {"path": path}})
    with pytest.raises(IngestError) as caught:
        ingest(make_context(empty_workspace), job, None)
    message = str(caught.value)
    assert "3 row(s) failed validation" in message
    assert "bad.csv row 2: column `amount`: cannot read 'abc' as double" in message
    assert "bad.csv row 3: column `id`: a value is required" in message
    assert "bad.csv row 4: column `day`: cannot read 'not-a-date' as date" in message
    assert "error_handling: quarantine" in message
    assert not (empty_workspace / "lake" / "bronze" / "things" / "_delta_log").exists()


def test_failed_ingest_leaves_previous_bronze_version_intact(empty_workspace: Path) -> None:
    good = source(empty_workspace, "good.csv", b"id,amount,day\n1,1,2024-01-01\n")
    job = make_job(schema_mode="user", user_schema=USER_SCHEMA, config={"file": {"path": good}})
    ingest(make_context(empty_workspace, "first"), job, None)
    bad = source(empty_workspace, "bad.csv", BAD_ROWS)
    bad_job = job.model_copy(update={"config": make_job(config={"file": {"path": bad}}).config})
    with pytest.raises(IngestError):
        ingest(make_context(empty_workspace, "second"), bad_job, None)
    table = DeltaTable(str(empty_workspace / "lake" / "bronze" / "things"))
    assert table.version() == 0
    assert [row["_run_id"] for row in table.to_pyarrow_table().to_pylist()] == ["first"]


def test_quarantine_keeps_bad_rows_with_reason_file_and_row(empty_workspace: Path) -> None:
    path = source(empty_workspace, "bad.csv", BAD_ROWS)
    job = make_job(
        schema_mode="user",
        user_schema=USER_SCHEMA,
        error_handling="quarantine",
        quarantine_path="quarantine/things",
        max_invalid_ratio=0.8,
        config={"file": {"path": path}},
    )
    result, _ = ingest(make_context(empty_workspace), job, None)
    assert (result.rows_read, result.rows_written, result.quarantined_rows) == (5, 2, 3)
    assert_accounting(result)
    assert [row["id"] for row in bronze_rows(empty_workspace)] == [1, 5]
    quarantine = DeltaTable(str(empty_workspace / "lake" / "quarantine" / "things"))
    rows = sorted(quarantine.to_pyarrow_table().to_pylist(), key=lambda row: row["_source_row"])
    assert [(row["_source_row"], row["amount"]) for row in rows] == [(2, "abc"), (3, "3"), (4, "4")]
    assert rows[0]["_reason"] == "column `amount`: cannot read 'abc' as double"
    assert all(row["_run_id"] == "run1" and row["_source_file"].endswith("bad.csv") for row in rows)


def test_missing_required_column_fails_even_with_quarantine(empty_workspace: Path) -> None:
    path = source(empty_workspace, "a.csv", b"id,amount\n1,2\n")
    job = make_job(
        schema_mode="user",
        user_schema=USER_SCHEMA,
        error_handling="quarantine",
        quarantine_path="quarantine/things",
        config={"file": {"path": path}},
    )
    with pytest.raises(IngestError, match=r"missing required column\(s\) `day`"):
        ingest(make_context(empty_workspace), job, None)


def test_dedupe_keys_count_removed_duplicates(empty_workspace: Path) -> None:
    path = source(empty_workspace, "a.csv", b"id,v\n1,first\n2,x\n1,second\n3,y\n2,z\n")
    result, _ = ingest(
        make_context(empty_workspace),
        make_job(dedupe_keys=["id"], config={"file": {"path": path}}),
        None,
    )
    assert (result.rows_read, result.rows_written, result.deduplicated_rows) == (5, 3, 2)
    assert_accounting(result)
    assert [row["v"] for row in bronze_rows(empty_workspace)] == ["first", "x", "y"]


def test_rename_map_and_unknown_column(empty_workspace: Path) -> None:
    path = source(empty_workspace, "a.csv", b"ID,Full Name\n1,Ann\n")
    job = make_job(rename_map={"ID": "id", "Full Name": "name"}, config={"file": {"path": path}})
    ingest(make_context(empty_workspace), job, None)
    assert bronze_rows(empty_workspace)[0]["name"] == "Ann"
    bad = make_job(rename_map={"nope": "x"}, config={"file": {"path": path}})
    with pytest.raises(IngestError, match="`nope`"):
        ingest(make_context(empty_workspace), bad, None)


def test_incremental_loads_only_rows_past_the_watermark(empty_workspace: Path) -> None:
    path = source(
        empty_workspace, "a.csv", b"id,updated\n1,2024-01-01\n2,2024-01-02\n3,2024-01-03\n"
    )
    job = make_job(
        incremental_mode="incremental", watermark_column="updated", config={"file": {"path": path}}
    )
    first, _ = ingest(make_context(empty_workspace, "r1"), job, None)
    assert (first.rows_written, first.watermark_before, first.watermark_after) == (
        3,
        None,
        "2024-01-03",
    )
    source(empty_workspace, "a.csv", b"id,updated\n3,2024-01-03\n4,2024-01-04\n")
    second, _ = ingest(make_context(empty_workspace, "r2"), job, first.watermark_after)
    assert (second.rows_written, second.watermark_after) == (1, "2024-01-04")
    assert_accounting(second)
    assert [row["id"] for row in bronze_rows(empty_workspace)] == [1, 2, 3, 4]


def test_full_mode_replaces_the_table_in_one_new_version(empty_workspace: Path) -> None:
    path = source(empty_workspace, "a.csv", b"id\n1\n2\n")
    job = make_job(config={"file": {"path": path}})
    ingest(make_context(empty_workspace, "r1"), job, None)
    result, _ = ingest(make_context(empty_workspace, "r2", str(date(2026, 12, 1))), job, None)
    assert result.table_version == 1
    assert [row["_run_id"] for row in bronze_rows(empty_workspace)] == ["r2", "r2"]


def test_source_paths_cannot_leave_the_workspace(empty_workspace: Path) -> None:
    job = make_job(config={"file": {"path": "../../../../etc/passwd"}})
    with pytest.raises(PathOutsideWorkspaceError, match="outside"):
        ingest(make_context(empty_workspace), job, None)


def test_quarantine_path_cannot_leave_the_lake(empty_workspace: Path) -> None:
    path = source(empty_workspace, "bad.csv", BAD_ROWS)
    job = make_job(
        schema_mode="user",
        user_schema=USER_SCHEMA,
        error_handling="quarantine",
        quarantine_path="../../outside",
        max_invalid_ratio=1,
        config={"file": {"path": path}},
    )
    with pytest.raises(PathOutsideWorkspaceError):
        ingest(make_context(empty_workspace), job, None)


def test_missing_source_file_names_the_path(empty_workspace: Path) -> None:
    job = make_job(config={"file": {"path": "data/nope.csv"}})
    with pytest.raises(IngestError, match=r"`data/nope.csv` does not exist"):
        ingest(make_context(empty_workspace), job, None)


def test_folder_source_with_filename_pattern(empty_workspace: Path) -> None:
    source(empty_workspace, "part1.csv", b"id\n1\n")
    source(empty_workspace, "part2.csv", b"id\n2\n")
    source(empty_workspace, "notes.txt", b"ignore me")
    job = make_job(filename_pattern="part*.csv", config={"file": {"path": "data"}})
    result, _ = ingest(make_context(empty_workspace), job, None)
    assert result.rows_written == 2
    assert len(result.source_files) == 2


def test_file_upload_reads_from_the_uploads_folder(empty_workspace: Path) -> None:
    (empty_workspace / "uploads" / "batch.csv").write_bytes(b"id\n7\n")
    job = make_job(source_type="file_upload", config={"file": {"path": "batch.csv"}})
    result, _ = ingest(make_context(empty_workspace), job, None)
    assert result.rows_written == 1


def test_too_many_invalid_rows_fail_even_with_quarantine(empty_workspace: Path) -> None:
    path = source(empty_workspace, "bad.csv", BAD_ROWS)
    job = make_job(
        schema_mode="user",
        user_schema=USER_SCHEMA,
        error_handling="quarantine",
        quarantine_path="quarantine/things",
        max_invalid_ratio=0.5,
        config={"file": {"path": path}},
    )
    with pytest.raises(IngestError, match=r"3 of 5 rows \(60.0%\) are invalid, more than"):
        ingest(make_context(empty_workspace), job, None)
    assert not (empty_workspace / "lake" / "bronze" / "things").exists()
    assert not (empty_workspace / "lake" / "quarantine" / "things").exists()


def test_workspace_default_invalid_share_applies(empty_workspace: Path) -> None:
    config = empty_workspace / "jupyter_config.py"
    config.write_text(config.read_text() + "\nc.Lakebook.max_invalid_ratio = 0.7\n")
    path = source(empty_workspace, "bad.csv", BAD_ROWS)
    job = make_job(
        schema_mode="user",
        user_schema=USER_SCHEMA,
        error_handling="quarantine",
        quarantine_path="quarantine/things",
        config={"file": {"path": path}},
    )
    result, _ = ingest(make_context(empty_workspace), job, None)
    assert result.quarantined_rows == 3


def test_boundary_rows_are_deduplicated_by_keys_and_updates_kept(empty_workspace: Path) -> None:
    job = make_job(
        incremental_mode="incremental",
        watermark_column="updated",
        dedupe_keys=["id"],
        config={"file": {"path": "data/a.csv"}},
    )
    source(empty_workspace, "a.csv", b"id,v,updated\n1,a,2024-01-01\n2,b,2024-01-02\n")
    first, _ = ingest(make_context(empty_workspace, "r1"), job, None)
    # Re-delivers id 2 at the watermark (a duplicate), updates id 1 later, adds id 3.
    source(
        empty_workspace, "a.csv", b"id,v,updated\n2,b,2024-01-02\n1,a2,2024-01-05\n3,c,2024-01-03\n"
    )
    second, _ = ingest(make_context(empty_workspace, "r2"), job, first.watermark_after)
    assert (second.rows_read, second.rows_written, second.deduplicated_rows) == (3, 2, 1)
    assert second.watermark_after == "2024-01-05"
    assert_accounting(second)
    versions = [(row["id"], row["v"]) for row in bronze_rows(empty_workspace)]
    assert sorted(versions) == [(1, "a"), (1, "a2"), (2, "b"), (3, "c")]


def test_watermark_lag_rereads_late_rows_without_duplicating(empty_workspace: Path) -> None:
    job = make_job(
        incremental_mode="incremental",
        watermark_column="ts",
        watermark_lag="2 hours",
        config={"file": {"path": "data/a.csv"}},
    )
    source(empty_workspace, "a.csv", b"id,ts\n1,2024-01-01 10:00:00\n2,2024-01-01 12:00:00\n")
    first, _ = ingest(make_context(empty_workspace, "r1"), job, None)
    assert first.watermark_after == "2024-01-01 12:00:00"
    # id 3 arrived late inside the look-back window (from 10:00); ids 1 and 2 are re-read.
    source(
        empty_workspace,
        "a.csv",
        b"id,ts\n1,2024-01-01 10:00:00\n2,2024-01-01 12:00:00\n3,2024-01-01 11:00:00\n",
    )
    second, _ = ingest(make_context(empty_workspace, "r2"), job, first.watermark_after)
    assert (second.rows_read, second.rows_written, second.deduplicated_rows) == (3, 1, 2)
    assert second.watermark_after == "2024-01-01 12:00:00"
    assert [row["id"] for row in bronze_rows(empty_workspace)] == [1, 2, 3]


def test_incremental_run_with_nothing_new_makes_no_commit(empty_workspace: Path) -> None:
    job = make_job(
        incremental_mode="incremental",
        watermark_column="n",
        config={"file": {"path": "data/a.csv"}},
    )
    source(empty_workspace, "a.csv", b"n\n1\n2\n")
    first, _ = ingest(make_context(empty_workspace, "r1"), job, None)
    second, _ = ingest(make_context(empty_workspace, "r2"), job, first.watermark_after)
    # A file source re-reads a file whole; every row is in Bronze already.
    assert (second.rows_read, second.rows_written, second.deduplicated_rows) == (2, 0, 2)
    assert second.watermark_after == "2"
    assert DeltaTable(str(empty_workspace / "lake" / "bronze" / "things")).version() == 0


@pytest.mark.parametrize("codec", ["snappy", "zstd", "gzip", "none"])
def test_compression_codec_is_used_for_bronze_files(empty_workspace: Path, codec: str) -> None:
    import pyarrow.parquet as pq

    path = source(empty_workspace, "a.csv", b"id,name\n1,a\n2,b\n")
    ingest(
        make_context(empty_workspace),
        make_job(compression=codec, config={"file": {"path": path}}),
        None,
    )
    files = list((empty_workspace / "lake" / "bronze" / "things").rglob("*.parquet"))
    expected = {"none": "UNCOMPRESSED"}.get(codec, codec.upper())
    assert files and all(
        pq.ParquetFile(f).metadata.row_group(0).column(0).compression == expected for f in files
    )


@pytest.mark.parametrize(
    ("encoding", "content"),
    [
        ("utf-8-sig", "\ufeffid,name\n1,Zoë\n".encode()),
        ("utf-8", "\ufeffid,name\n1,Zoë\n".encode()),
        ("latin-1", "id,name\n1,Zoë\n".encode("latin-1")),
    ],
)
def test_csv_encodings(empty_workspace: Path, encoding: str, content: bytes) -> None:
    path = source(empty_workspace, "a.csv", content)
    job = make_job(config={"file": {"path": path, "encoding": encoding}})
    ingest(make_context(empty_workspace), job, None)
    rows = bronze_rows(empty_workspace)
    assert rows[0]["id"] == 1 and rows[0]["name"] == "Zoë"


def test_csv_delimiter_quote_and_no_header(empty_workspace: Path) -> None:
    path = source(empty_workspace, "a.csv", b"1;'x;y'\n2;'z'\n")
    job = make_job(config={"file": {"path": path, "delimiter": ";", "quote": "'", "header": False}})
    ingest(make_context(empty_workspace), job, None)
    rows = bronze_rows(empty_workspace, "things")
    assert [
        (row["column0"], row["column1"]) for row in sorted(rows, key=lambda r: r["column0"])
    ] == [
        (1, "x;y"),
        (2, "z"),
    ]


def test_parquet_source_keeps_its_types(empty_workspace: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = empty_workspace / "pipelines" / "demo" / "data"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"id": [1, 2], "price": [1.5, 2.5]}), folder / "a.parquet")
    job = make_job(format="parquet", config={"file": {"path": "data/a.parquet"}})
    _, sample = ingest(make_context(empty_workspace), job, None)
    assert str(sample.schema.field("price").type) == "double"


def test_landing_retention_purges_old_run_folders(empty_workspace: Path) -> None:
    import os

    path = source(empty_workspace, "a.csv", b"id\n1\n")
    job = make_job(landing_retention_days=7, config={"file": {"path": path}})
    ingest(make_context(empty_workspace, "old", "2026-11-01"), job, None)
    old = empty_workspace / "lake/landing/demo/things/2026/11/01/old"
    assert old.is_dir()
    long_ago = old.stat().st_mtime - 30 * 86_400
    os.utime(old, (long_ago, long_ago))
    ingest(make_context(empty_workspace, "new"), job, None)
    assert not old.exists()
    assert (empty_workspace / "lake/landing/demo/things/2026/11/30/new/a.csv").is_file()


def test_unparseable_csv_lines_are_quarantined_with_the_line(empty_workspace: Path) -> None:
    path = source(empty_workspace, "a.csv", b"id,name\n1,a\n2,b,extra\n3\n4,d\n")
    job = make_job(
        error_handling="quarantine",
        quarantine_path="quarantine/things",
        max_invalid_ratio=0.6,
        config={"file": {"path": path}},
    )
    result, _ = ingest(make_context(empty_workspace), job, None)
    assert (result.rows_read, result.rows_written, result.quarantined_rows) == (4, 2, 2)
    assert [row["id"] for row in bronze_rows(empty_workspace)] == [1, 4]
    quarantine = DeltaTable(str(empty_workspace / "lake" / "quarantine" / "things"))
    rows = sorted(quarantine.to_pyarrow_table().to_pylist(), key=lambda row: row["_source_row"])
    assert [(row["_source_row"], row["_raw_line"]) for row in rows] == [(2, "2,b,extra"), (3, "3")]
    assert rows[0]["_reason"].startswith("line could not be parsed: Expected Number of Columns")


def test_unparseable_csv_line_fails_the_job_when_error_handling_is_fail(
    empty_workspace: Path,
) -> None:
    path = source(empty_workspace, "a.csv", b"id,name\n1,a\n2,b,extra\n")
    with pytest.raises(IngestError, match="could not be read"):
        ingest(make_context(empty_workspace), make_job(config={"file": {"path": path}}), None)


def test_incremental_dedupe_keeps_the_newest_version_of_a_key(empty_workspace: Path) -> None:
    path = source(empty_workspace, "a.csv", b"id,v,updated\n1,new,2024-01-05\n1,old,2024-01-01\n")
    job = make_job(
        incremental_mode="incremental",
        watermark_column="updated",
        dedupe_keys=["id"],
        config={"file": {"path": path}},
    )
    result, _ = ingest(make_context(empty_workspace), job, None)
    assert (result.rows_written, result.deduplicated_rows) == (1, 1)
    assert bronze_rows(empty_workspace)[0]["v"] == "new"


def test_numeric_watermark_lag_keeps_integer_watermarks_integral() -> None:
    import duckdb

    from lakebook.ingest import _lower_bound

    job = make_job(
        incremental_mode="incremental",
        watermark_column="seq",
        watermark_lag="5",
        config={"file": {"path": "x.csv"}},
    )
    assert _lower_bound(duckdb.connect(), job, "100") == "95"


def test_full_snapshot_of_an_empty_api_result_empties_the_table(empty_workspace: Path) -> None:
    from lakebook.ingest import _load_nothing

    path = source(empty_workspace, "a.csv", b"id\n1\n")
    job = make_job(config={"file": {"path": path}})
    ingest(make_context(empty_workspace), job, None)
    result = JobResult(job="things", dataset="bronze.things")
    _load_nothing(make_context(empty_workspace, "r2"), job, False, result)
    assert result.table_version == 1
    assert bronze_rows(empty_workspace) == []


# The one-pass load (`lakebook.ingest._load_fast`) must write exactly what the full path writes,
# and leave anything it is not sure about to the full path.
TRICKY_SCHEMA = [
    {"name": "id", "type": "integer", "nullable": False},
    {"name": "big", "type": "bigint"},
    {"name": "amount", "type": "double"},
    {"name": "price", "type": "decimal"},
    {"name": "day", "type": "date"},
    {"name": "at", "type": "timestamp"},
    {"name": "flag", "type": "boolean"},
    {"name": "name", "type": "string"},
    {"name": "code", "type": "string", "nullable": False},
]
TRICKY_HEADER = b"id,big,amount,price,day,at,flag,name,code\n"
TRICKY_CLEAN = TRICKY_HEADER + (
    b" 1 , 1000000000000 , 2.5 , 3.50 , 2024-01-02 ,2024-01-01 10:00:00+02, true ,  padded  ,a\n"
    b'"2","","","","","","",,"b"\n'
    b'3,-7,1e3,1.1234567891234,2024-1-2,2024-01-01T10:00:00Z,TRUE,"",c c\n'
    b'4,+5,-0,-0.5,2024-02-29,2024-01-01,t,NULL,"x,y"\n'
    b"5,0,nan,0,2000-01-01,2024-06-30 23:59:59.123456,1,null,  z\n"
    b'6,,inf,12345678901234567890.5,1999-12-31,2024-01-01 00:00:00-05:30,f," q ",0\n'
    b'7,8,1.5e-3,0.000000001,2024-01-01,2024-01-01 12:00,0,"""quoted""",yes\n'
)
# Values lakebook may or may not read (booleans like `yes`, integers like `1.5`), values it
# cannot read, required values missing (a blank required string too), and an unparseable line.
TRICKY_DIRTY = TRICKY_HEADER + (
    b"1,1,1,1,2024-01-01,2024-01-01,yes,a,a\n"
    b"2,1.5,1,1,2024-01-01,2024-01-01,no,b,b\n"
    b"3,1,1,1,2024-01-01,2024-01-01,true,c,   \n"
    b"4,1,1,1,2024-01-01,2024-01-01,maybe,d,d\n"
    b" ,1,1,1,2024-01-01,2024-01-01,true,e,e\n"
    b"6,1,1,1,2024-13-01,2024-01-01 25:00,true,f,f\n"
    b"7,1,1,1,2024-01-01,2024-01-01,true,g,g,extra\n"
    b"8,1,abc,x,2024-01-01,2024-01-01,false,h,h\n"
    b"9,1,1,1,2024-01-01,2024-01-01,false,i,i\n"
    b"10,1,1,1,2024-01-01,2024-01-01,false,j,j\n"
)


def same(row: dict[str, Any], drop: str, job: str) -> dict[str, Any]:
    """The row without its timestamp `drop`, and its Landing path without the job's name."""
    row = {k: v for k, v in row.items() if k != drop}
    row = {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
    if row.get("_source_file"):
        row["_source_file"] = row["_source_file"].replace(f"/{job}/", "/JOB/")
    return row


# The same without the unparseable line: DuckDB reads it all, lakebook's checks find the errors.
TRICKY_INVALID = TRICKY_DIRTY.replace(b"7,1,1,1,2024-01-01,2024-01-01,true,g,g,extra\n", b"")


def run_both_paths(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, **fields: Any
) -> tuple[list[Any], list[Any], list[bool]]:
    """Ingest `content` with the fast path on, then off (datasets `fast` and `full`); returns
    what each did (result counts, Bronze rows, quarantined rows, or the error) and whether the
    fast path committed."""
    path = source(workspace, "tricky.csv", content)
    committed: list[bool] = []
    load_fast = lakebook.ingest._load_fast

    def spy(*args: Any) -> Any:
        sample = load_fast(*args)
        committed.append(sample is not None)
        return sample

    monkeypatch.setattr(lakebook.ingest, "_load_fast", spy)
    outcomes = []
    for name, fast in (("fast", True), ("full", False)):
        monkeypatch.setattr(lakebook.ingest, "FAST_PATH", fast)
        extra = {}
        if fields.get("error_handling") == "quarantine":
            extra["quarantine_path"] = f"quarantine/{name}"
        job = make_job(
            name=name, schema_mode="user", config={"file": {"path": path}}, **fields, **extra
        )
        try:
            result, sample = ingest(make_context(workspace), job, None)
        except IngestError as error:
            outcomes.append(["error", str(error).replace("fast", "full")])
            continue
        counts = (result.rows_read, result.rows_written, result.quarantined_rows)

        rows, schema = [], ""
        if (workspace / "lake" / "bronze" / name).exists():
            rows = [same(row, "_ingested_at", name) for row in bronze_rows(workspace, name)]
            table_path = str(workspace / "lake" / "bronze" / name)
            schema = str(DeltaTable(table_path).schema().to_arrow())  # names, order, types
        quarantined = []
        if (workspace / "lake" / "quarantine" / name).exists():
            table = DeltaTable(str(workspace / "lake" / "quarantine" / name)).to_pyarrow_table()
            quarantined = sorted(
                (same(row, "_quarantined_at", name) for row in table.to_pylist()),
                key=lambda row: row["_source_row"],
            )
        head = sorted((same(row, "_ingested_at", name) for row in sample.to_pylist()), key=str)
        outcomes.append([counts, rows, quarantined, head, schema])
    return outcomes[0], outcomes[1], committed


def test_fast_path_writes_what_the_full_path_writes(
    empty_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, full, committed = run_both_paths(
        empty_workspace, monkeypatch, TRICKY_CLEAN, user_schema=TRICKY_SCHEMA
    )
    assert committed == [True]  # the clean file took the one-pass load
    assert fast == full
    counts, rows, _, _, _ = fast
    assert counts == (7, 7, 0)
    by_id = {row["id"]: row for row in rows}
    assert by_id[1]["name"] == "  padded  " and by_id[1]["flag"] is True
    assert by_id[2]["big"] is None and by_id[2]["name"] is None
    assert by_id[3]["name"] is None and by_id[4]["name"] == "NULL"
    assert by_id[7]["name"] == '"quoted"' and by_id[5]["code"] == "  z"


@pytest.mark.parametrize("partition_mode", ["date", "none"])
def test_fast_path_with_rename_map_and_partitioning(
    empty_workspace: Path, monkeypatch: pytest.MonkeyPatch, partition_mode: str
) -> None:
    content = b"ID,Note,extra\n1,a,x\n2,,y\n"
    fast, full, committed = run_both_paths(
        empty_workspace,
        monkeypatch,
        content,
        user_schema=[{"name": "id", "type": "integer"}, {"name": "Note", "type": "string"}],
        rename_map={"ID": "id"},
        partition_mode=partition_mode,
    )
    assert committed == [True]
    assert fast == full
    assert [row["id"] for row in fast[1]] == [1, 2]
    assert ("dt" in fast[1][0]) == (partition_mode == "date")


@pytest.mark.parametrize("handling", ["quarantine", "fail"])
def test_dirty_file_falls_back_to_the_full_path(
    empty_workspace: Path, monkeypatch: pytest.MonkeyPatch, handling: str
) -> None:
    fast, full, committed = run_both_paths(
        empty_workspace,
        monkeypatch,
        TRICKY_DIRTY,
        user_schema=TRICKY_SCHEMA,
        error_handling=handling,
        max_invalid_ratio=0.9,
    )
    assert True not in committed  # (a line of the wrong width fails while the columns are read)
    assert fast == full
    if handling == "fail":
        assert fast[0] == "error"
        assert "row(s) failed validation" in fast[1] or "could not be read" in fast[1]
    else:
        counts, _, quarantined, _, _ = fast
        assert counts[0] == counts[1] + counts[2] == 10
        assert counts[2] >= 6  # rows 3 to 8 at least
        assert any(
            row["_raw_line"] == "7,1,1,1,2024-01-01,2024-01-01,true,g,g,extra"
            for row in quarantined
        )
    # The refused attempt left no files behind: only the committed table's own.
    bronze = empty_workspace / "lake" / "bronze" / "fast"
    if handling == "fail":
        assert not bronze.exists()
    else:
        live = {Path(p).name for p in DeltaTable(str(bronze)).file_uris()}
        assert {p.name for p in bronze.rglob("*.parquet")} == live


@pytest.mark.parametrize(
    "content",
    [
        TRICKY_HEADER,  # no rows
        TRICKY_HEADER + b"1,,,,,,,,\n",  # a required string column empty
        TRICKY_HEADER + b",,,,,,,,a\n",  # a required integer column empty
        TRICKY_HEADER + b"1,,,,,,,,a,b\n",  # an unparseable line
    ],
)
def test_fast_path_edge_cases_match_the_full_path(
    empty_workspace: Path, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    fast, full, committed = run_both_paths(
        empty_workspace,
        monkeypatch,
        content,
        user_schema=TRICKY_SCHEMA,
        error_handling="quarantine",
        max_invalid_ratio=1.0,
    )
    assert committed == [False]
    assert fast == full


@pytest.mark.parametrize("handling", ["quarantine", "fail"])
def test_invalid_values_refuse_the_fast_path(
    empty_workspace: Path, monkeypatch: pytest.MonkeyPatch, handling: str
) -> None:
    fast, full, committed = run_both_paths(
        empty_workspace,
        monkeypatch,
        TRICKY_INVALID,
        user_schema=TRICKY_SCHEMA,
        error_handling=handling,
        max_invalid_ratio=0.9,
    )
    assert committed == [False]  # tried, refused, its files deleted
    assert fast == full
    if handling == "fail":
        assert fast[0] == "error"
        assert "tricky.csv row 4: column `flag`: cannot read 'maybe' as boolean" in fast[1]
        assert "tricky.csv row 5: column `id`: a value is required" in fast[1]
        assert not (empty_workspace / "lake" / "bronze" / "fast").exists()
    else:
        counts, _, quarantined, _, _ = fast
        assert counts[0] == counts[1] + counts[2] == 9
        assert {3, 4, 5, 6, 7} <= {row["_source_row"] for row in quarantined}
        bronze = empty_workspace / "lake" / "bronze" / "fast"
        live = {Path(p).name for p in DeltaTable(str(bronze)).file_uris()}
        assert {p.name for p in bronze.rglob("*.parquet")} == live
