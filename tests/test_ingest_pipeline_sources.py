"""S3 and API ingest jobs through the real runner (papermill, real kernels): the file manifest and
the watermark ledger across runs, a failed run that records neither, and no secret in the record.

One scenario, four runs of one pipeline (an S3 prefix job and an API job side by side):
1. first load;  2. one object added: only it loads;  3. a new good object and an unparseable one:
the S3 job fails;  4. the bad object removed: the good one from run 3 is retried and loads.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable
from moto.server import ThreadedMotoServer

import tests.test_source_api as api_tests
from lakebook.metadata import RunStatus
from lakebook.runs import RunSummary
from lakebook.workspace import Workspace
from tests.conftest import write_pipeline
from tests.test_source_s3 import KEY_ID, KEY_ID_ENV, SECRET, SECRET_ENV

pytestmark = pytest.mark.slow

TOKEN, TOKEN_ENV = api_tests.TOKEN, api_tests.TOKEN_ENV
PIPELINE = """
name: feeds
ingest_jobs:
  - name: orders
    source_type: s3
    format: csv
    incremental_mode: incremental
    watermark_column: updated
    schema_mode: user
    user_schema:
      - {{name: id, type: integer, nullable: false}}
      - {{name: amount, type: double}}
      - {{name: updated, type: date}}
    error_handling: fail
    config: {{file: {{s3_uri: "s3://{bucket}/orders/", connection_id: lake_s3}}}}
  - name: events
    source_type: api
    incremental_mode: incremental
    watermark_column: updated_at
    config:
      api:
        url: "{api}/feed"
        records_path: data
        pagination: {{page_param: page, page_size: 10}}
        auth: {{type: bearer, connection_id: feed_api}}
        watermark: {{param_name: updated_since}}
"""
CONNECTIONS = {
    "lake_s3": {
        "endpoint_url": "{endpoint}",
        "region": "us-east-1",
        "access_key_id_env": KEY_ID_ENV,
        "secret_access_key_env": SECRET_ENV,
    },
    "feed_api": {"token_env": TOKEN_ENV},
}


@dataclass
class Snapshot:
    """What one run did and what the workspace held right after it."""

    summary: RunSummary
    fingerprints: dict[str, frozenset[str]]
    watermarks: dict[str, str | None]
    bronze_ids: dict[str, list[int]]


@dataclass
class Scenario:
    workspace: Workspace
    bucket: str
    api: api_tests.FakeApi
    runs: list[Snapshot] = field(default_factory=list)
    updated_since: list[list[str | None]] = field(default_factory=list)  # per run, per request

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def bronze_ids(root: Path, name: str) -> list[int]:
    folder = root / "lake" / "bronze" / name
    if not (folder / "_delta_log").exists():
        return []
    return sorted(DeltaTable(str(folder)).to_pyarrow_table().column("id").to_pylist())


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(KEY_ID_ENV, KEY_ID)
        monkeypatch.setenv(SECRET_ENV, SECRET)
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        feed = [dict(row) for row in api_tests.RECORDS]
        monkeypatch.setattr(api_tests, "FEED", feed)

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        httpd = api_tests.ApiServer(("127.0.0.1", 0), api_tests.Handler)
        httpd.api = api_tests.FakeApi(base_url=f"http://127.0.0.1:{httpd.server_address[1]}")
        thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
        thread.start()
        try:
            host, port = moto.get_host_and_port()
            s3 = pafs.S3FileSystem(
                endpoint_override=f"{host}:{port}",
                scheme="http",
                region="us-east-1",
                access_key=KEY_ID,
                secret_key=SECRET,
                allow_bucket_creation=True,
            )
            bucket = f"lakebook-{uuid.uuid4().hex[:12]}"
            s3.create_dir(bucket)

            def put(key: str, content: bytes) -> None:
                with s3.open_output_stream(f"{bucket}/{key}", compression=None) as out:
                    out.write(content)

            root = Workspace.init(tmp_path_factory.mktemp("sources") / "ws").root
            connections = repr(CONNECTIONS).replace("{endpoint}", f"http://{host}:{port}")
            config = root / "jupyter_config.py"
            config.write_text(config.read_text() + f"\nc.Lakebook.connections = {connections}\n")
            write_pipeline(root, "feeds", PIPELINE.format(bucket=bucket, api=httpd.api.base_url))
            scene = Scenario(Workspace.open(root), bucket, httpd.api)

            def run() -> None:
                httpd.api.seen.clear()
                summary = scene.workspace.run("feeds")
                store = scene.workspace.store
                jobs = ("orders", "events")
                scene.runs.append(
                    Snapshot(
                        summary,
                        {job: store.loaded_fingerprints("feeds", job) for job in jobs},
                        {job: store.current_watermark("feeds", job) for job in jobs},
                        {job: bronze_ids(root, job) for job in jobs},
                    )
                )
                scene.updated_since.append(
                    [seen.query.get("updated_since", [None])[0] for seen in httpd.api.seen]
                )

            put("orders/a.csv", b"id,amount,updated\n1,10,2026-01-01\n2,20,2026-01-02\n")
            put("orders/b.csv", b"id,amount,updated\r\n3,30,2026-01-03\r\n")
            run()
            put("orders/2026/c.csv", b"id,amount,updated\n4,40,2026-01-04\n")
            feed.append({"id": 26, "name": "new", "updated_at": "2026-01-26T00:00:00Z"})
            run()
            put("orders/d.csv", b"id,amount,updated\n5,50,2026-01-05\n")
            put("orders/e.csv", b"id,amount,updated\nsix,60,2026-01-06\n")
            run()
            s3.delete_file(f"{bucket}/orders/e.csv")
            run()
            yield scene
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join()
            moto.stop()


def test_first_run_loads_every_object_and_the_whole_feed(scenario: Scenario) -> None:
    first = scenario.runs[0]
    assert first.summary.status == RunStatus.SUCCEEDED, [j.error for j in first.summary.jobs]
    orders = first.summary.job("orders")
    assert (orders.rows_read, orders.rows_written, orders.watermark_after) == (3, 3, "2026-01-03")
    assert first.bronze_ids["orders"] == [1, 2, 3]
    assert {fp.split("|")[0] for fp in first.fingerprints["orders"]} == {
        scenario.uri("orders/a.csv"),
        scenario.uri("orders/b.csv"),
    }
    assert first.watermarks["orders"] == "2026-01-03"
    events = first.summary.job("events")
    assert (events.rows_read, events.rows_written) == (25, 25)
    assert events.watermark_after is not None
    assert first.watermarks["events"] == events.watermark_after
    assert set(scenario.updated_since[0]) == {None}  # no watermark yet
    assert first.fingerprints["events"] == frozenset()  # an API has no file manifest


def test_second_run_loads_only_the_new_object(scenario: Scenario) -> None:
    first, second = scenario.runs[0], scenario.runs[1]
    assert second.summary.status == RunStatus.SUCCEEDED, [j.error for j in second.summary.jobs]
    orders = second.summary.job("orders")
    assert (orders.rows_read, orders.rows_written, orders.deduplicated_rows) == (1, 1, 0)
    assert (orders.watermark_before, orders.watermark_after) == ("2026-01-03", "2026-01-04")
    assert second.bronze_ids["orders"] == [1, 2, 3, 4]
    added = second.fingerprints["orders"] - first.fingerprints["orders"]
    assert first.fingerprints["orders"] < second.fingerprints["orders"]
    assert [fp.split("|")[0] for fp in added] == [scenario.uri("orders/2026/c.csv")]
    assert second.watermarks["orders"] == "2026-01-04"


def test_second_run_of_the_api_job_resumes_from_the_ledger(scenario: Scenario) -> None:
    first, second = scenario.runs[0], scenario.runs[1]
    events = second.summary.job("events")
    assert events.watermark_before == first.watermarks["events"]
    # The bound goes with every page request (a page of two rows, then the empty last page).
    assert scenario.updated_since[1] == [first.watermarks["events"]] * 2
    # Row 25 comes back at the `>=` boundary and is already in Bronze.
    assert (events.rows_read, events.rows_written, events.deduplicated_rows) == (2, 1, 1)
    assert second.bronze_ids["events"] == [*range(1, 27)]
    assert second.watermarks["events"] == events.watermark_after != first.watermarks["events"]


def test_failed_run_records_no_manifest_entry_and_no_watermark(scenario: Scenario) -> None:
    second, third = scenario.runs[1], scenario.runs[2]
    assert third.summary.status == RunStatus.FAILED
    orders = third.summary.job("orders")
    assert orders.status == RunStatus.FAILED
    assert "1 row(s) failed validation" in str(orders.error)
    assert "e.csv row 1: column `id`: cannot read 'six' as integer" in str(orders.error)
    # d.csv was fetched and is fine, but nothing of the failed run is recorded.
    assert third.fingerprints["orders"] == second.fingerprints["orders"]
    assert third.watermarks["orders"] == second.watermarks["orders"] == "2026-01-04"
    history = scenario.workspace.watermark_history("feeds", "orders")
    assert third.summary.run_id not in {entry.run_id for entry in history}
    assert third.bronze_ids["orders"] == second.bronze_ids["orders"]
    assert third.summary.job("events").status == RunStatus.SUCCEEDED  # independent job


def test_the_run_after_a_failure_retries_its_files(scenario: Scenario) -> None:
    third, fourth = scenario.runs[2], scenario.runs[3]
    assert fourth.summary.status == RunStatus.SUCCEEDED, [j.error for j in fourth.summary.jobs]
    orders = fourth.summary.job("orders")
    assert (orders.rows_read, orders.rows_written) == (1, 1)
    assert (orders.watermark_before, orders.watermark_after) == ("2026-01-04", "2026-01-05")
    added = fourth.fingerprints["orders"] - third.fingerprints["orders"]
    assert [fp.split("|")[0] for fp in added] == [scenario.uri("orders/d.csv")]
    assert fourth.bronze_ids["orders"] == [1, 2, 3, 4, 5]
    assert fourth.watermarks["orders"] == "2026-01-05"


def test_no_secret_reaches_the_run_records_or_the_workspace(scenario: Scenario) -> None:
    root = scenario.workspace.root
    records = [path for path in (root / "runs").rglob("*") if path.is_file()]
    assert len(records) == 4 * 3  # run.json and both jobs' notebooks, failed run included
    # Every kernel resolved both secrets (both jobs reached their source in every run) ...
    assert all(job.rows_read is not None for run in scenario.runs[:2] for job in run.summary.jobs)
    # ... and neither is in the run records, nor anywhere else in the workspace (lake, metadata).
    for path in root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for secret in (SECRET, TOKEN):
                assert secret.encode() not in content, path
