"""The database source against a SQLite file and a real PostgreSQL server: snapshots, pushed-down
incremental reads, batching into Parquet parts, types, and errors that say what to do."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from deltalake import DeltaTable

import lakebook.ingest
from lakebook.connections import resolve_connection
from lakebook.errors import ConnectionNotFoundError, IngestError
from lakebook.results import JobResult
from lakebook.runtime import JobContext
from lakebook.sources import Fetched, FetchRequest, source_for
from lakebook.sources import database as database_source
from lakebook.specs import IngestJob
from tests.postgres_server import PostgresServer

ORDERS = [
    {
        "id": number,
        "customer": name,
        "amount": Decimal(f"{number}0.50"),
        "weight": number / 4,
        "paid": number % 2 == 1,
        "order_date": date(2024, 1, number),
        "updated_at": datetime(2024, 1, number, 10, 30),
    }
    for number, name in enumerate(["ann", "bob", "cid", "dee", "eve"], start=1)
]
ORDER_TYPES = {
    "id": pa.int64(),
    "customer": pa.string(),
    "amount": pa.decimal128(10, 2),
    "weight": pa.float64(),
    "paid": pa.bool_(),
    "order_date": pa.date32(),
    "updated_at": pa.timestamp("us"),
}

_database_counter = iter(range(10_000))


@dataclass
class Database:
    """A source database for one test: its URL and an engine to set it up with."""

    url: str
    engine: sa.Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty source database: a SQLite file, and (second run) a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'source.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"source_test_{next(_database_counter)}")
    engine = sa.create_engine(url)
    yield Database(url, engine)
    engine.dispose()


def create_orders(
    database: Database,
    rows: list[dict[str, Any]] | None = None,
    name: str = "orders",
    schema: str | None = None,
) -> None:
    """A table of orders with one column of each common type."""
    metadata = sa.MetaData(schema=schema)
    table = sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer", sa.String(50)),
        sa.Column("amount", sa.Numeric(10, 2)),
        sa.Column("weight", sa.Float),
        sa.Column("paid", sa.Boolean),
        sa.Column("order_date", sa.Date),
        sa.Column("updated_at", sa.DateTime),
    )
    with database.engine.begin() as connection:
        if schema is not None:
            connection.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
        metadata.create_all(connection)
        rows = ORDERS if rows is None else rows
        if rows:
            connection.execute(table.insert(), rows)


def make_job(**fields: Any) -> IngestJob:
    db = {"connection_id": "warehouse", "table_name": "orders", **fields.pop("db", {})}
    base: dict[str, Any] = {
        "name": "orders",
        "source_type": "database",
        "format": "parquet",
        "config": {"db": db},
    }
    return IngestJob.model_validate({**base, **fields})


def incremental(column: str, **fields: Any) -> IngestJob:
    return make_job(incremental_mode="incremental", watermark_column=column, **fields)


def fetch(
    database: Database | str,
    job: IngestJob,
    landing: Path,
    lower_bound: str | None = None,
    connection: dict[str, Any] | None = None,
) -> Fetched:
    """Run the database source once, the way the ingest loader does."""
    landing.mkdir(parents=True, exist_ok=True)
    url = database if isinstance(database, str) else database.url
    connections = {"warehouse": connection or {"url": url}}
    request = FetchRequest(
        job=job,
        landing=landing,
        workspace=landing.parent,
        pipeline_dir=landing.parent,
        lower_bound=lower_bound,
        loaded=frozenset(),
        connection=lambda name: resolve_connection(connections, name),
    )
    return source_for(job).fetch(request)


def landed(fetched: Fetched) -> pa.Table:
    """Every landed part, in order, as one table (the parts must share one schema)."""
    return pa.concat_tables([pq.read_table(item.path) for item in fetched.files])


def ids(fetched: Fetched) -> list[int]:
    return [int(value) for value in landed(fetched).column("id").to_pylist()]


def test_the_registry_finds_the_database_source() -> None:
    assert isinstance(source_for(make_job()), database_source.DatabaseSource)


def test_full_snapshot_of_a_table_keeps_every_row_and_its_types(
    database: Database, tmp_path: Path
) -> None:
    create_orders(database)
    fetched = fetch(database, make_job(), tmp_path / "landing")
    assert [item.path.name for item in fetched.files] == ["part-00001.parquet"]
    assert fetched.files[0].path.parent == tmp_path / "landing"
    assert {item.format for item in fetched.files} == {"parquet"}
    assert {item.source_uri for item in fetched.files} == {"db://warehouse/orders"}
    assert (fetched.manifest, fetched.watermark_pushed_down) == ([], False)
    table = landed(fetched)
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == ORDER_TYPES
    assert sorted(table.to_pylist(), key=lambda row: row["id"]) == ORDERS


def test_a_query_is_read_as_it_is_written(database: Database, tmp_path: Path) -> None:
    create_orders(database)
    # `%` and `:name` inside the query reach the database untouched.
    query = (
        "SELECT id, customer, ':not_a_parameter' AS note, weight * 2 AS double_weight "
        "FROM orders WHERE customer LIKE '%e%' ORDER BY id;"
    )
    fetched = fetch(database, make_job(db={"table_name": None, "query": query}), tmp_path / "l")
    table = landed(fetched)
    assert {item.source_uri for item in fetched.files} == {"db://warehouse/query"}
    assert table.to_pylist() == [
        {"id": 4, "customer": "dee", "note": ":not_a_parameter", "double_weight": 2.0},
        {"id": 5, "customer": "eve", "note": ":not_a_parameter", "double_weight": 2.5},
    ]
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("double_weight").type == pa.float64()


@pytest.mark.postgres
def test_schema_qualified_table_on_postgresql(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database(f"source_test_{next(_database_counter)}")
    database = Database(url, sa.create_engine(url))
    try:
        create_orders(database)
        create_orders(database, ORDERS[:2], schema="sales")
        job = make_job(db={"table_name": "sales.orders"})
        fetched = fetch(database, job, tmp_path / "landing")
        assert ids(fetched) == [1, 2]
        assert {item.source_uri for item in fetched.files} == {"db://warehouse/sales.orders"}
        fetched = fetch(
            database, incremental("id", db={"table_name": "sales.orders"}), tmp_path / "i", "2"
        )
        assert ids(fetched) == [2]
    finally:
        database.engine.dispose()


def test_identifiers_are_quoted_for_the_dialect(database: Database, tmp_path: Path) -> None:
    metadata = sa.MetaData()
    table = sa.Table(
        "order",  # a reserved word, with reserved and mixed-case column names
        metadata,
        sa.Column("select", sa.Integer),
        sa.Column("Group Name", sa.String(20)),
    )
    with database.engine.begin() as connection:
        metadata.create_all(connection)
        connection.execute(
            table.insert(), [{"select": n, "Group Name": f"g{n}"} for n in (1, 2, 3)]
        )
    job = incremental("select", db={"table_name": "order"})
    fetched = fetch(database, job, tmp_path / "landing", "2")
    assert landed(fetched).to_pylist() == [
        {"select": 2, "Group Name": "g2"},
        {"select": 3, "Group Name": "g3"},
    ]


@pytest.mark.parametrize(
    ("column", "lower_bound"),
    [("id", "3"), ("updated_at", "2024-01-03 10:30:00"), ("order_date", "2024-01-03")],
)
@pytest.mark.parametrize("form", ["table", "query"])
def test_incremental_reads_rows_at_or_past_the_lower_bound_in_the_database(
    database: Database, tmp_path: Path, column: str, lower_bound: str, form: str
) -> None:
    create_orders(database)
    query = "SELECT * FROM orders -- every order\n;"  # wrapped as a subquery all the same
    db = {} if form == "table" else {"table_name": None, "query": query}
    fetched = fetch(database, incremental(column, db=db), tmp_path / "landing", lower_bound)
    assert fetched.watermark_pushed_down is True
    assert sorted(ids(fetched)) == [3, 4, 5]  # the row equal to the bound is included


def test_first_incremental_run_without_a_bound_reads_everything(
    database: Database, tmp_path: Path
) -> None:
    create_orders(database)
    fetched = fetch(database, incremental("updated_at"), tmp_path / "landing")
    assert fetched.watermark_pushed_down is False
    assert sorted(ids(fetched)) == [1, 2, 3, 4, 5]


def test_incremental_filter_uses_the_source_name_of_a_renamed_watermark(
    database: Database, tmp_path: Path
) -> None:
    create_orders(database)
    job = incremental("changed", rename_map={"updated_at": "changed"})
    fetched = fetch(database, job, tmp_path / "landing", "2024-01-04 10:30:00")
    assert sorted(ids(fetched)) == [4, 5]


def test_incremental_over_a_computed_query_column(database: Database, tmp_path: Path) -> None:
    create_orders(database)
    # An expression has no declared type (SQLite): the bound is still compared as a number.
    query = "SELECT id, id * 10 AS version FROM orders"
    job = incremental("version", db={"table_name": None, "query": query})
    assert sorted(ids(fetch(database, job, tmp_path / "landing", "30"))) == [3, 4, 5]


def test_rows_arrive_in_batches_each_its_own_part(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_source, "BATCH_ROWS", 2)
    rows = [
        {**ORDERS[0], "id": number, "customer": None if number < 3 else "x"}
        for number in range(1, 8)
    ]
    create_orders(database, rows)
    for form, db in (
        ("table", {}),
        ("query", {"table_name": None, "query": "SELECT id, customer FROM orders"}),
    ):
        fetched = fetch(database, make_job(db=db), tmp_path / form)
        names = [item.path.name for item in fetched.files]
        assert names == [f"part-0000{n}.parquet" for n in (1, 2, 3, 4)]
        schemas = {pq.read_schema(item.path) for item in fetched.files}
        assert len(schemas) == 1  # one schema, even where the first batch is all NULL
        assert [pq.read_metadata(item.path).num_rows for item in fetched.files] == [2, 2, 2, 1]
        assert sorted(ids(fetched)) == list(range(1, 8))  # every row exactly once


def test_empty_result_lands_one_empty_part_with_the_columns(
    database: Database, tmp_path: Path
) -> None:
    create_orders(database, rows=[])
    fetched = fetch(database, make_job(), tmp_path / "full")
    assert [item.path.name for item in fetched.files] == ["part-00001.parquet"]
    table = landed(fetched)
    assert table.num_rows == 0
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == ORDER_TYPES

    create_orders(database, rows=ORDERS, name="more_orders")
    job = incremental("id", db={"table_name": "more_orders"})
    table = landed(fetch(database, job, tmp_path / "incremental", "99"))
    assert (table.num_rows, table.schema.names) == (0, list(ORDER_TYPES))


@pytest.mark.postgres
def test_postgresql_types_from_a_query(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database(f"source_test_{next(_database_counter)}")
    query = (
        "SELECT 1::smallint AS small, 2::bigint AS big, 1.25::numeric(6, 2) AS exact, "
        "3.5::numeric AS unbounded, 1.5::real AS single, true AS flag, DATE '2024-01-02' AS day, "
        "TIMESTAMP '2024-01-02 03:04:05' AS local_time, "
        "TIMESTAMPTZ '2024-01-02 03:04:05+02' AS instant, '{\"a\": [1]}'::jsonb AS document, "
        "ARRAY[1, 2] AS numbers, '11:30'::time AS clock, 'x'::varchar(3) AS code"
    )
    table = landed(fetch(url, make_job(db={"table_name": None, "query": query}), tmp_path / "l"))
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == {
        "small": pa.int64(),
        "big": pa.int64(),
        "exact": pa.decimal128(6, 2),
        "unbounded": pa.float64(),
        "single": pa.float64(),
        "flag": pa.bool_(),
        "day": pa.date32(),
        "local_time": pa.timestamp("us"),
        "instant": pa.timestamp("us", tz="UTC"),
        "document": pa.string(),
        "numbers": pa.string(),
        "clock": pa.string(),
        "code": pa.string(),
    }
    row = table.to_pylist()[0]
    assert row["instant"] == datetime(2024, 1, 2, 1, 4, 5, tzinfo=timezone.utc)
    assert (row["document"], row["numbers"], row["clock"]) == ('{"a": [1]}', "[1, 2]", "11:30:00")
    assert row["exact"] == Decimal("1.25")


def test_sqlite_values_that_change_type_midway_fail_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_source, "BATCH_ROWS", 2)
    url = f"sqlite:///{tmp_path / 'loose.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE loose (id INTEGER, anything)")
        connection.exec_driver_sql("INSERT INTO loose VALUES (1, 10), (2, 20), (3, 'thirty')")
    engine.dispose()
    job = make_job(db={"table_name": None, "query": "SELECT * FROM loose"})
    with pytest.raises(IngestError) as raised:
        fetch(url, job, tmp_path / "landing")
    message = str(raised.value)
    assert "Job `orders`" in message and "connection `warehouse`" in message
    assert "column `anything`" in message and "CAST" in message


def test_missing_table_lists_the_tables_there(database: Database, tmp_path: Path) -> None:
    create_orders(database)
    with pytest.raises(IngestError) as raised:
        fetch(database, make_job(db={"table_name": "ordres"}), tmp_path / "landing")
    message = str(raised.value)
    assert message.startswith("Job `orders`: table `ordres` through connection `warehouse`")
    assert "does not exist" in message and "`orders`" in message
    assert "Fix `config.db.table_name`" in message


def test_unknown_connection_is_named(database: Database, tmp_path: Path) -> None:
    job = make_job(db={"connection_id": "nowhere"})
    with pytest.raises(ConnectionNotFoundError, match="`nowhere` is not defined"):
        fetch(database, job, tmp_path / "landing")


@pytest.mark.parametrize("form", ["table", "query"])
def test_missing_watermark_column_lists_the_columns(
    database: Database, tmp_path: Path, form: str
) -> None:
    create_orders(database)
    db = {} if form == "table" else {"table_name": None, "query": "SELECT id, customer FROM orders"}
    for lower_bound in (None, "3"):
        with pytest.raises(IngestError) as raised:
            fetch(database, incremental("changed_at", db=db), tmp_path / "l", lower_bound)
        message = str(raised.value)
        assert "Job `orders`" in message and "connection `warehouse`" in message
        assert "`watermark_column` `changed_at` is not in the result" in message
        assert "`id`, `customer`" in message and "Set `watermark_column`" in message


def test_a_failing_query_names_the_job_and_connection(database: Database, tmp_path: Path) -> None:
    job = make_job(db={"table_name": None, "query": "SELECT nope FROM nowhere"})
    with pytest.raises(IngestError) as raised:
        fetch(database, job, tmp_path / "landing")
    message = str(raised.value)
    assert message.startswith("Job `orders`: `config.db.query` through connection `warehouse`")
    assert "could not run the query" in message and "nowhere" in message


def test_connection_without_url(database: Database, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="connection `warehouse` has no `url`"):
        fetch(database, make_job(), tmp_path / "landing", connection={"host": "db"})


def test_unreachable_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'source.db'}"
    with pytest.raises(IngestError) as raised:
        fetch(url, make_job(), tmp_path / "landing")
    message = str(raised.value)
    assert "could not connect to the database" in message and "connection `warehouse`" in message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def everything_said(error: BaseException) -> str:
    """The error's message and those of every exception chained to it, shown or suppressed."""
    said: list[str] = []
    current: BaseException | None = error
    while current is not None:
        said.append("".join(traceback.format_exception_only(current)))
        current = current.__cause__ or current.__context__
    return "\n".join(said)


@pytest.mark.postgres
def test_password_comes_from_the_environment_and_is_never_shown(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-Pa55word"
    monkeypatch.setenv("LAKEBOOK_TEST_PG_PASSWORD", secret)
    database_name = f"source_test_{next(_database_counter)}"
    url = postgres.create_database(database_name)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE ROLE reader LOGIN PASSWORD '{secret}'")
        connection.exec_driver_sql("CREATE TABLE orders (id integer)")
        connection.exec_driver_sql("INSERT INTO orders VALUES (1), (2)")
        connection.exec_driver_sql("GRANT SELECT ON orders TO reader")
    engine.dispose()
    reader_url = f"postgresql+psycopg://reader@{postgres.host}:{postgres.port}/{database_name}"
    connection = {"url": reader_url, "password_env": "LAKEBOOK_TEST_PG_PASSWORD"}
    # The test server trusts 127.0.0.1, so this proves the plumbing, not the password check.
    fetched = fetch(reader_url, make_job(), tmp_path / "ok", connection=connection)
    assert ids(fetched) == [1, 2]

    unreachable = {**connection, "url": f"postgresql+psycopg://reader@127.0.0.1:{closed_port()}/db"}
    with pytest.raises(IngestError) as raised:
        fetch(reader_url, make_job(), tmp_path / "down", connection=unreachable)
    message = str(raised.value)
    assert "could not connect to the database" in message
    assert "postgresql+psycopg://reader:***@127.0.0.1" in message
    assert secret not in everything_said(raised.value)

    with pytest.raises(IngestError) as raised:
        fetch(
            reader_url,
            make_job(db={"table_name": "missing"}),
            tmp_path / "m",
            connection=connection,
        )
    assert "does not exist" in str(raised.value)
    assert secret not in everything_said(raised.value)

    inline = {"url": f"postgresql+psycopg://reader:{secret}@127.0.0.1:{closed_port()}/db"}
    with pytest.raises(IngestError) as raised:
        fetch(reader_url, make_job(), tmp_path / "inline", connection=inline)
    assert secret not in everything_said(raised.value)


def test_an_unparsable_url_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as raised:
        fetch("not a url :secret@", make_job(), tmp_path / "landing")
    assert "is not a SQLAlchemy URL" in str(raised.value)
    assert "secret" not in everything_said(raised.value)


# End to end: `lakebook.ingest.ingest` fetching through this source into Bronze.

RUN_DATE = "2026-11-30"
BRONZE_COLUMNS = ("_run_id", "_ingested_at", "_source_file", "dt")


def configure_connection(
    workspace: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Name the source database `warehouse` in the workspace (PostgreSQL: with a password from
    the environment, which the trusting test server accepts)."""
    connection = {"url": database.url}
    if database.dialect == "postgresql":
        monkeypatch.setenv("LAKEBOOK_TEST_WAREHOUSE_PASSWORD", "not-checked-by-the-test-server")
        connection["password_env"] = "LAKEBOOK_TEST_WAREHOUSE_PASSWORD"
    config = workspace / "jupyter_config.py"
    setting = f"c.Lakebook.connections = {{'warehouse': {connection!r}}}"
    config.write_text(config.read_text() + f"\n{setting}\n")


def run(workspace: Path, job: IngestJob, run_id: str, watermark: str | None) -> JobResult:
    result, _ = lakebook.ingest.ingest(
        JobContext.open(str(workspace), "demo", run_id, RUN_DATE), job, watermark
    )
    assert result.rows_read == (
        result.rows_written + result.quarantined_rows + result.deduplicated_rows
    )
    return result


def bronze(workspace: Path) -> list[dict[str, Any]]:
    """Bronze's data rows by id, without its own columns."""
    table = DeltaTable(str(workspace / "lake" / "bronze" / "orders")).to_pyarrow_table()
    rows = [
        {key: value for key, value in row.items() if key not in BRONZE_COLUMNS}
        for row in table.to_pylist()
    ]
    return sorted(rows, key=lambda row: int(row["id"]))


def insert(database: Database, rows: list[dict[str, Any]]) -> None:
    table = sa.Table("orders", sa.MetaData(), autoload_with=database.engine)
    with database.engine.begin() as connection:
        connection.execute(table.insert(), rows)


def test_full_runs_replace_bronze_with_the_table(
    database: Database, empty_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_connection(empty_workspace, database, monkeypatch)
    create_orders(database)
    first = run(empty_workspace, make_job(), "r1", None)
    assert (first.rows_read, first.rows_written, first.watermark_after) == (5, 5, None)
    assert first.source_files == ["landing/demo/orders/2026/11/30/r1/part-00001.parquet"]
    assert bronze(empty_workspace) == ORDERS  # values and types survive into Bronze
    table = DeltaTable(str(empty_workspace / "lake" / "bronze" / "orders")).to_pyarrow_table()
    assert table.schema.field("amount").type == pa.decimal128(10, 2)

    insert(database, [{**ORDERS[0], "id": 6, "customer": "fay"}])
    second = run(empty_workspace, make_job(), "r2", None)
    assert (second.rows_read, second.rows_written) == (6, 6)
    assert [row["id"] for row in bronze(empty_workspace)] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("form", "column", "watermarks"),
    [
        ("table", "updated_at", ("2024-01-05 10:30:00", "2024-01-06 10:30:00")),
        ("query", "id", ("5", "7")),
    ],
)
def test_incremental_runs_append_only_new_rows(
    database: Database,
    empty_workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    form: str,
    column: str,
    watermarks: tuple[str, str],
) -> None:
    configure_connection(empty_workspace, database, monkeypatch)
    create_orders(database)
    db = {} if form == "table" else {"table_name": None, "query": "SELECT * FROM orders"}
    job = incremental(column, db=db)

    first = run(empty_workspace, job, "r1", None)
    assert (first.rows_read, first.rows_written, first.watermark_after) == (5, 5, watermarks[0])

    # A new row, and a late one stamped exactly at the watermark: `>=` must not miss it.
    late = datetime(2024, 1, 5, 10, 30)
    insert(
        database,
        [
            {**ORDERS[0], "id": 6, "customer": "fay", "updated_at": datetime(2024, 1, 6, 10, 30)},
            {**ORDERS[0], "id": 7, "customer": "gus", "updated_at": late},
        ],
    )
    second = run(empty_workspace, job, "r2", first.watermark_after)
    # Read again at the boundary: row 5, already in Bronze, is counted as a duplicate.
    assert (second.rows_read, second.rows_written, second.deduplicated_rows) == (3, 2, 1)
    assert (second.watermark_before, second.watermark_after) == watermarks
    rows = bronze(empty_workspace)
    assert [row["id"] for row in rows] == [1, 2, 3, 4, 5, 6, 7]  # each row exactly once
    assert rows[6]["customer"] == "gus"

    third = run(empty_workspace, job, "r3", second.watermark_after)
    assert (third.rows_written, third.watermark_after) == (0, watermarks[1])
    assert third.rows_read == third.deduplicated_rows
    assert len(bronze(empty_workspace)) == 7


@pytest.mark.postgres
def test_incremental_on_a_timestamptz_watermark(
    postgres: PostgresServer, empty_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.create_database(f"source_test_{next(_database_counter)}")
    database = Database(url, sa.create_engine(url))
    try:
        with database.engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE orders (id integer, changed timestamptz)")
            connection.exec_driver_sql(
                "INSERT INTO orders VALUES (1, '2024-01-01 10:00+02'), (2, '2024-01-02 10:00+02')"
            )
        configure_connection(empty_workspace, database, monkeypatch)
        job = incremental("changed")
        first = run(empty_workspace, job, "r1", None)
        assert first.rows_written == 2
        assert first.watermark_after is not None
        assert datetime.fromisoformat(first.watermark_after) == datetime(
            2024, 1, 2, 8, tzinfo=timezone.utc
        )
        with database.engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO orders VALUES (3, '2024-01-02 09:00+01')")
        second = run(empty_workspace, job, "r2", first.watermark_after)
        assert (second.rows_read, second.rows_written, second.deduplicated_rows) == (2, 1, 1)
        assert [row["id"] for row in bronze(empty_workspace)] == [1, 2, 3]
    finally:
        database.engine.dispose()
