"""The S3 source against a real S3 API (moto's server on 127.0.0.1): single keys, prefixes with
`filename_pattern`, byte-for-byte Landing, the manifest across runs, and helpful errors that never
show a secret."""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable
from moto.server import ThreadedMotoServer

import lakebook.ingest
from lakebook.connections import resolve_connection
from lakebook.errors import ConnectionNotFoundError, IngestError, LakebookError
from lakebook.results import JobResult
from lakebook.runtime import JobContext
from lakebook.sources import Fetched, FetchRequest, source_for
from lakebook.sources import s3 as s3_source
from lakebook.specs import IngestJob

KEY_ID = "AKIALAKEBOOKTEST0001"
SECRET = "lakebook-test-secret-9f2c1e7b"
KEY_ID_ENV = "LAKEBOOK_TEST_S3_KEY_ID"
SECRET_ENV = "LAKEBOOK_TEST_S3_SECRET"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3 API (moto) on 127.0.0.1 for the whole session, as `http://host:port`."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass
class Bucket:
    """A fresh bucket on the test S3 endpoint, with a writer for objects."""

    name: str
    endpoint: str
    filesystem: pafs.S3FileSystem

    def put(self, key: str, content: bytes) -> None:
        """Write (or overwrite) one object byte-for-byte."""
        with self.filesystem.open_output_stream(f"{self.name}/{key}", compression=None) as out:
            out.write(content)


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A new, empty bucket; the `s3test` connection's secrets are set in the environment."""
    monkeypatch.setenv(KEY_ID_ENV, KEY_ID)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    filesystem = pafs.S3FileSystem(
        endpoint_override=moto_endpoint.removeprefix("http://"),
        scheme="http",
        region="us-east-1",
        access_key=KEY_ID,
        secret_key=SECRET,
        allow_bucket_creation=True,
    )
    name = f"lakebook-{uuid.uuid4().hex[:12]}"
    filesystem.create_dir(name)
    return Bucket(name, moto_endpoint, filesystem)


def connections(endpoint: str, **extra: Any) -> dict[str, dict[str, Any]]:
    """The workspace's connections: `s3test` points at the test endpoint, secrets from env."""
    return {
        "s3test": {
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "access_key_id_env": KEY_ID_ENV,
            "secret_access_key_env": SECRET_ENV,
            **extra,
        }
    }


def make_job(file: dict[str, Any], **fields: Any) -> IngestJob:
    base: dict[str, Any] = {"name": "things", "source_type": "s3", "format": "csv"}
    return IngestJob.model_validate(
        {**base, **fields, "config": {"file": {"connection_id": "s3test", **file}}}
    )


_landings = iter(range(1_000_000))


def fetch(
    tmp_path: Path,
    job: IngestJob,
    endpoint: str,
    loaded: frozenset[str] = frozenset(),
    known: dict[str, dict[str, Any]] | None = None,
) -> Fetched:
    """Run the job's source once into a fresh, empty Landing folder."""
    landing = tmp_path / f"landing{next(_landings)}"
    landing.mkdir()
    known = connections(endpoint) if known is None else known
    request = FetchRequest(
        job=job,
        landing=landing,
        workspace=tmp_path,
        pipeline_dir=tmp_path,
        lower_bound=None,
        loaded=loaded,
        connection=lambda name: resolve_connection(known, name),
    )
    return source_for(job).fetch(request)


def fingerprints(fetched: Fetched) -> frozenset[str]:
    return frozenset(entry.fingerprint for entry in fetched.manifest)


def helpful(error: pytest.ExceptionInfo[LakebookError], *fragments: str) -> str:
    """The error's message, checked for the given fragments and for the absence of the secret."""
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    chained: BaseException | None = error.value
    while chained is not None:
        assert SECRET not in str(chained) and SECRET not in repr(chained)
        chained = chained.__cause__ or chained.__context__
    return message


def test_single_key_lands_that_object(tmp_path: Path, bucket: Bucket) -> None:
    bucket.put("in/orders.csv", b"id,amount\n1,10\n")
    bucket.put("in/other.csv", b"id,amount\n2,20\n")
    job = make_job({"s3_uri": f"s3://{bucket.name}/in/orders.csv"})
    fetched = fetch(tmp_path, job, bucket.endpoint)
    assert [(f.path.name, f.format, f.source_uri) for f in fetched.files] == [
        ("orders.csv", "csv", f"s3://{bucket.name}/in/orders.csv")
    ]
    assert fetched.files[0].path.read_bytes() == b"id,amount\n1,10\n"
    assert sorted(p.name for p in fetched.files[0].path.parent.iterdir()) == ["orders.csv"]
    [entry] = fetched.manifest
    assert entry.uri == f"s3://{bucket.name}/in/orders.csv"
    uri, size, mtime = entry.fingerprint.split("|")
    assert (uri, size) == (entry.uri, "15") and int(mtime) > 0


def test_prefix_loads_matching_objects_and_ignores_the_rest(tmp_path: Path, bucket: Bucket) -> None:
    bucket.put("in/orders_1.csv", b"id\n1\n")
    bucket.put("in/orders_2.csv", b"id\n2\n")
    bucket.put("in/customers.csv", b"id\n3\n")
    bucket.put("in/orders_3.txt", b"id\n4\n")
    bucket.put("in/2026/orders_4.csv", b"id\n5\n")  # every object under the prefix
    bucket.put("elsewhere/orders_9.csv", b"id\n9\n")
    job = make_job({"bucket": bucket.name, "prefix": "in/"}, filename_pattern="orders_*.csv")
    fetched = fetch(tmp_path, job, bucket.endpoint)
    assert [f.source_uri for f in fetched.files] == [
        f"s3://{bucket.name}/in/2026/orders_4.csv",
        f"s3://{bucket.name}/in/orders_1.csv",
        f"s3://{bucket.name}/in/orders_2.csv",
    ]
    assert [f.path.read_bytes() for f in fetched.files] == [b"id\n5\n", b"id\n1\n", b"id\n2\n"]
    assert [e.uri for e in fetched.manifest] == [f.source_uri for f in fetched.files]


def test_prefix_uses_the_format_default_pattern(tmp_path: Path, bucket: Bucket) -> None:
    bucket.put("feed/a.jsonl", b'{"id": 1}\n')
    bucket.put("feed/b.json", b'[{"id": 2}]')
    bucket.put("feed/c.csv", b"id\n3\n")
    fetched = fetch(
        tmp_path, make_job({"s3_uri": f"s3://{bucket.name}/feed"}, format="jsonl"), bucket.endpoint
    )
    assert [(f.path.name, f.format) for f in fetched.files] == [("a.jsonl", "jsonl")]


def test_whole_bucket_and_same_basenames_get_distinct_landing_names(
    tmp_path: Path, bucket: Bucket
) -> None:
    bucket.put("2026/01/data.csv", b"id\n1\n")
    bucket.put("2026/02/data.csv", b"id\n2\n")
    fetched = fetch(tmp_path, make_job({"s3_uri": f"s3://{bucket.name}"}), bucket.endpoint)
    assert [f.path.name for f in fetched.files] == ["00000_data.csv", "00001_data.csv"]
    assert [f.path.read_bytes() for f in fetched.files] == [b"id\n1\n", b"id\n2\n"]


def test_crlf_bom_and_compressed_objects_land_byte_for_byte(tmp_path: Path, bucket: Bucket) -> None:
    crlf = b"id,name,city\r\n1,Ann,Oslo\r\n2,Bob,Rome\r\n"
    bom = "\ufeffid,name,city\n1,Åse,Tromsø\n2,Zoë,Köln\n".encode()
    gzipped = b"\x1f\x8b\x08\x00" + bytes(range(256))  # not decompressed on the way
    bucket.put("raw/crlf.csv", crlf)
    bucket.put("raw/bom.csv", bom)
    bucket.put("raw/packed.csv.gz", gzipped)
    fetched = fetch(tmp_path, make_job({"s3_uri": f"s3://{bucket.name}/raw"}), bucket.endpoint)
    landed = {f.path.name: f.path.read_bytes() for f in fetched.files}
    assert landed == {"bom.csv": bom, "crlf.csv": crlf}
    gz_job = make_job({"s3_uri": f"s3://{bucket.name}/raw"}, filename_pattern="*.csv.gz")
    [packed] = fetch(tmp_path, gz_job, bucket.endpoint).files
    assert packed.path.read_bytes() == gzipped


def test_objects_are_streamed_in_chunks(
    tmp_path: Path, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_source, "CHUNK_SIZE", 1000)  # each read is one ranged GET
    content = b"id,value\r\n" + b"".join(f"{i},{i * i}\r\n".encode() for i in range(1000))
    bucket.put("big.csv", content)
    [landed] = fetch(
        tmp_path, make_job({"s3_uri": f"s3://{bucket.name}/big.csv"}), bucket.endpoint
    ).files
    assert landed.path.read_bytes() == content


def test_manifest_skips_loaded_objects_and_fetches_only_new_ones(
    tmp_path: Path, bucket: Bucket
) -> None:
    bucket.put("in/a.csv", b"id\n1\n")
    bucket.put("in/b.csv", b"id\n2\n")
    job = make_job({"s3_uri": f"s3://{bucket.name}/in/"})
    first = fetch(tmp_path, job, bucket.endpoint)
    assert len(first.files) == len(first.manifest) == 2
    loaded = fingerprints(first)

    again = fetch(tmp_path, job, bucket.endpoint, loaded)
    assert again.files == [] and again.manifest == []

    bucket.put("in/c.csv", b"id\n3\n")
    third = fetch(tmp_path, job, bucket.endpoint, loaded)
    assert [f.source_uri for f in third.files] == [f"s3://{bucket.name}/in/c.csv"]
    assert [e.uri for e in third.manifest] == [f"s3://{bucket.name}/in/c.csv"]


def test_a_rewritten_object_is_fetched_again(tmp_path: Path, bucket: Bucket) -> None:
    bucket.put("in/a.csv", b"id\n1\n")
    bucket.put("in/b.csv", b"id\n2\n")
    job = make_job({"s3_uri": f"s3://{bucket.name}/in"})
    loaded = fingerprints(fetch(tmp_path, job, bucket.endpoint))
    # A different size: S3 reports modification times in whole seconds, so a same-size rewrite
    # within the same second cannot be told apart by size and time (the fingerprint's contract).
    bucket.put("in/a.csv", b"id\n1\n10\n")
    refetched = fetch(tmp_path, job, bucket.endpoint, loaded)
    assert [f.source_uri for f in refetched.files] == [f"s3://{bucket.name}/in/a.csv"]
    assert refetched.files[0].path.read_bytes() == b"id\n1\n10\n"
    assert fingerprints(refetched).isdisjoint(loaded)


def test_missing_bucket_is_named(tmp_path: Path, bucket: Bucket) -> None:
    for file in (
        {"s3_uri": "s3://no-such-bucket-lakebook/in/"},
        {"bucket": "no-such-bucket-lakebook"},
    ):
        with pytest.raises(IngestError) as error:
            fetch(tmp_path, make_job(file), bucket.endpoint)
        helpful(
            error,
            "`things`",
            "`no-such-bucket-lakebook`",
            "does not exist",
            "connection `s3test`",
            "endpoint_url",
        )


def test_no_matching_objects_names_location_and_pattern(tmp_path: Path, bucket: Bucket) -> None:
    bucket.put("in/a.txt", b"x")
    with pytest.raises(IngestError) as error:
        fetch(tmp_path, make_job({"s3_uri": f"s3://{bucket.name}/in"}), bucket.endpoint)
    helpful(error, "`things`", f"`s3://{bucket.name}/in`", "`*.csv`", "filename_pattern")
    with pytest.raises(IngestError) as error:
        fetch(tmp_path, make_job({"s3_uri": f"s3://{bucket.name}/nothing/here"}), bucket.endpoint)
    helpful(error, f"`s3://{bucket.name}/nothing/here`", "no objects match")
    with pytest.raises(IngestError) as error:
        fetch(tmp_path, make_job({"s3_uri": f"s3://{bucket.name}"}), bucket.endpoint)
    helpful(error, f"`s3://{bucket.name}`", "no objects match")


@pytest.fixture
def enforced_auth(moto_endpoint: str) -> Iterator[None]:
    """moto checks credentials (unknown access keys are refused) for the test's duration."""

    def reset_auth(count: str) -> None:
        request = urllib.request.Request(
            f"{moto_endpoint}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    reset_auth("0")
    try:
        yield
    finally:
        reset_auth("inf")


def test_wrong_credentials_say_access_denied_without_the_secret(
    tmp_path: Path, bucket: Bucket, enforced_auth: None
) -> None:
    for uri in (f"s3://{bucket.name}/in/a.csv", f"s3://{bucket.name}/in/"):
        with pytest.raises(IngestError) as error:
            fetch(tmp_path, make_job({"s3_uri": uri}), bucket.endpoint)
        helpful(
            error,
            "`things`",
            "denied",
            "connection `s3test`",
            "secret_access_key_env",
            f"`{bucket.name}`",
        )


def test_unreachable_endpoint_is_named(tmp_path: Path, bucket: Bucket) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = f"http://127.0.0.1:{port}"
    with pytest.raises(IngestError) as error:
        fetch(tmp_path, make_job({"s3_uri": f"s3://{bucket.name}/in"}), closed)
    helpful(error, "`things`", "could not reach", closed, "endpoint_url")


def test_unknown_connection_is_named(tmp_path: Path, bucket: Bucket) -> None:
    job = make_job({"s3_uri": f"s3://{bucket.name}/in", "connection_id": "warehouse"})
    with pytest.raises(ConnectionNotFoundError) as error:
        fetch(tmp_path, job, bucket.endpoint)
    helpful(error, "`things`", "`warehouse`", "`s3test`", "c.Lakebook.connections")


def test_unset_secret_variable_is_named(
    tmp_path: Path, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ConnectionNotFoundError) as error:
        fetch(tmp_path, make_job({"s3_uri": f"s3://{bucket.name}/in"}), bucket.endpoint)
    helpful(error, f"`{SECRET_ENV}`", "Export it")


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [("https://bucket/key.csv", "s3://bucket/prefix"), ("s3:///key.csv", "s3://bucket/prefix")],
)
def test_malformed_s3_uri_is_named(tmp_path: Path, bucket: Bucket, uri: str, fragment: str) -> None:
    with pytest.raises(IngestError) as error:
        fetch(tmp_path, make_job({"s3_uri": uri}), bucket.endpoint)
    helpful(error, "`config.file.s3_uri`", f"`{uri}`", fragment)


@pytest.mark.parametrize(
    ("endpoint", "fragment"),
    [
        (f"http://{KEY_ID}:{SECRET}@127.0.0.1:9", "without credentials"),
        ("127.0.0.1:9000", "`http://host:port`"),
        ("http://127.0.0.1:9000/s3", "must not have a path"),
    ],
)
def test_bad_endpoint_url_is_named_without_secrets(
    tmp_path: Path, bucket: Bucket, endpoint: str, fragment: str
) -> None:
    with pytest.raises(IngestError) as error:
        fetch(tmp_path, make_job({"s3_uri": f"s3://{bucket.name}/in"}), endpoint)
    helpful(error, "connection `s3test`", fragment)


def test_connection_without_credentials_reads_anonymously(tmp_path: Path, bucket: Bucket) -> None:
    bucket.put("public/a.csv", b"id\n1\n")
    known = {"s3test": {"endpoint_url": bucket.endpoint}}
    job = make_job({"s3_uri": f"s3://{bucket.name}/public"})
    [landed] = fetch(tmp_path, job, bucket.endpoint, known=known).files
    assert landed.path.read_bytes() == b"id\n1\n"


def test_half_configured_credentials_are_refused(tmp_path: Path, bucket: Bucket) -> None:
    known = {"s3test": {"endpoint_url": bucket.endpoint, "secret_access_key_env": SECRET_ENV}}
    with pytest.raises(IngestError) as error:
        fetch(
            tmp_path, make_job({"s3_uri": f"s3://{bucket.name}/in"}), bucket.endpoint, known=known
        )
    helpful(error, "`access_key_id`", "`secret_access_key`", "Set both")


def test_s3_source_is_registered() -> None:
    assert isinstance(source_for(make_job({"s3_uri": "s3://b/k.csv"})), s3_source.S3Source)


# Through the loader: `ingest()` in a workspace whose jupyter_config.py defines the connection. ----

RUN_DATE = "2026-11-30"
ORDERS_1 = b"id,amount,updated\r\n1,10.5,2026-01-01\r\n2,20,2026-01-02\r\n"
ORDERS_2 = "\ufeffid,amount,updated\n3,30,2026-01-03\n".encode()
ORDERS_3 = b"id,amount,updated\n4,40,2026-01-04\n5,50,2026-01-05\n"


def s3_workspace(root: Path, endpoint: str) -> Path:
    """The workspace with the `s3test` connection (secrets as `*_env` keys) in jupyter_config.py."""
    config = root / "jupyter_config.py"
    config.write_text(
        config.read_text() + f"\nc.Lakebook.connections = {connections(endpoint)!r}\n"
    )
    assert SECRET not in config.read_text()
    return root


def s3_context(workspace: Path, run_id: str) -> JobContext:
    return JobContext.open(str(workspace), "demo", run_id, RUN_DATE)


def assert_accounting(result: JobResult) -> None:
    assert result.rows_read == (
        result.rows_written + result.quarantined_rows + result.deduplicated_rows
    )


def bronze(workspace: Path, name: str = "things") -> list[dict[str, Any]]:
    table = DeltaTable(str(workspace / "lake" / "bronze" / name)).to_pyarrow_table()
    return sorted(table.to_pylist(), key=lambda row: row["id"])


def test_ingest_loads_every_matching_object_of_a_prefix_into_bronze(
    empty_workspace: Path, bucket: Bucket
) -> None:
    workspace = s3_workspace(empty_workspace, bucket.endpoint)
    objects = {"in/orders_1.csv": ORDERS_1, "in/orders_2.csv": ORDERS_2}
    objects["in/2026/orders_3.csv"] = ORDERS_3
    for key, content in objects.items():
        bucket.put(key, content)
    bucket.put("in/readme.txt", b"not data")
    bucket.put("out/orders_9.csv", b"id,amount,updated\n9,90,2026-01-09\n")
    job = make_job({"s3_uri": f"s3://{bucket.name}/in/"})

    result, sample = lakebook.ingest.ingest(s3_context(workspace, "r1"), job, None)

    assert (result.rows_read, result.rows_written, result.quarantined_rows) == (5, 5, 0)
    assert_accounting(result)
    landing = Path("landing/demo/things/2026/11/30/r1")
    names = ["orders_3.csv", "orders_1.csv", "orders_2.csv"]  # sorted by key
    assert result.source_files == [str(landing / name) for name in names]
    assert [entry["uri"] for entry in result.manifest] == [
        f"s3://{bucket.name}/{key}"
        for key in ("in/2026/orders_3.csv", "in/orders_1.csv", "in/orders_2.csv")
    ]
    # Landing holds exactly the matching objects, byte-for-byte (CRLF and BOM included).
    folder = workspace / "lake" / landing
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == {
        key.rsplit("/", 1)[-1]: content for key, content in objects.items()
    }
    rows = bronze(workspace)
    assert [(row["id"], row["amount"], str(row["updated"])) for row in rows] == [
        (1, 10.5, "2026-01-01"),
        (2, 20.0, "2026-01-02"),
        (3, 30.0, "2026-01-03"),
        (4, 40.0, "2026-01-04"),
        (5, 50.0, "2026-01-05"),
    ]
    assert [row["_source_file"] for row in rows] == [
        str(landing / name)
        for name in ("orders_1.csv", "orders_1.csv", "orders_2.csv", "orders_3.csv", "orders_3.csv")
    ]
    assert {row["_run_id"] for row in rows} == {"r1"} and {row["dt"] for row in rows} == {
        "2026-11-30"
    }
    assert sample.num_rows == 5


def incremental_job(bucket: Bucket) -> IngestJob:
    return make_job(
        {"s3_uri": f"s3://{bucket.name}/in"},
        incremental_mode="incremental",
        watermark_column="updated",
    )


def test_incremental_prefix_run_lands_only_objects_the_manifest_has_not_seen(
    empty_workspace: Path, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = s3_workspace(empty_workspace, bucket.endpoint)
    bucket.put("in/orders_1.csv", ORDERS_1)
    bucket.put("in/orders_2.csv", ORDERS_2)
    job = incremental_job(bucket)
    first, _ = lakebook.ingest.ingest(s3_context(workspace, "r1"), job, None)
    assert (first.rows_read, first.rows_written, first.watermark_after) == (3, 3, "2026-01-03")

    bucket.put("in/orders_3.csv", ORDERS_3)
    context = s3_context(workspace, "r2")
    loaded = frozenset(entry["fingerprint"] for entry in first.manifest)
    monkeypatch.setattr(
        context, "loaded_fingerprints", lambda name: loaded
    )  # what the runner records
    second, _ = lakebook.ingest.ingest(context, job, first.watermark_after)

    assert second.source_files == ["landing/demo/things/2026/11/30/r2/orders_3.csv"]
    assert [entry["uri"] for entry in second.manifest] == [f"s3://{bucket.name}/in/orders_3.csv"]
    assert (second.rows_read, second.rows_written, second.deduplicated_rows) == (2, 2, 0)
    assert (second.watermark_before, second.watermark_after) == ("2026-01-03", "2026-01-05")
    assert_accounting(second)
    assert [row["id"] for row in bronze(workspace)] == [1, 2, 3, 4, 5]


def test_a_late_object_below_the_watermark_is_not_silently_lost(
    empty_workspace: Path, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = s3_workspace(empty_workspace, bucket.endpoint)
    bucket.put("in/orders_1.csv", ORDERS_1)
    bucket.put("in/orders_2.csv", ORDERS_2)
    job = incremental_job(bucket)
    first, _ = lakebook.ingest.ingest(s3_context(workspace, "r1"), job, None)

    bucket.put("in/late.csv", b"id,amount,updated\n6,60,2026-01-02\n")  # arrives after the run
    bucket.put("in/orders_3.csv", ORDERS_3)
    context = s3_context(workspace, "r2")
    loaded = frozenset(entry["fingerprint"] for entry in first.manifest)
    monkeypatch.setattr(context, "loaded_fingerprints", lambda name: loaded)
    second, _ = lakebook.ingest.ingest(context, job, first.watermark_after)

    # late.csv is in the manifest the runner will record, so no later run reads it again.
    assert f"s3://{bucket.name}/in/late.csv" in [entry["uri"] for entry in second.manifest]
    assert second.rows_read == 3  # every row of the two new objects is accounted for
    assert second.rows_written + second.dropped_rows == 3
