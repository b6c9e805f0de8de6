"""Database source: a table or a query read through SQLAlchemy and landed as Parquet.

A database's raw data is its rows, so Landing holds what the run fetched as `part-00001.parquet`,
`part-00002.parquet`, … one file per batch of `BATCH_ROWS` rows, all with one schema. Rows are
streamed (a server-side cursor where the driver has one), so memory stays bounded by one batch.
Incremental runs push `watermark_column >= lower_bound` down into the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import column, create_engine, inspect, text
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import URL, Connection, CursorResult, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchTableError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect

from lakebook.errors import IngestError
from lakebook.sources import Fetched, FetchRequest, LoadFile
from lakebook.specs import DbConfig, IngestJob

BATCH_ROWS = 50_000  # rows per fetch and per landed Parquet file
SUBQUERY_ALIAS = "lakebook_source"
KNOWN_TABLES_SHOWN = 20

# `:name` is a bind parameter in SQLAlchemy's text(); a user's query has none of its own, so each
# such colon is escaped (`\:name` reaches the database as `:name`). Same pattern SQLAlchemy uses.
BIND_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")

TIMESTAMP = pa.timestamp("us")
TIMESTAMP_UTC = pa.timestamp("us", tz="UTC")

# PostgreSQL's built-in type OIDs are fixed across versions; any other type lands as text.
POSTGRES_NUMERIC_OID = 1700
POSTGRES_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),  # boolean
    17: pa.binary(),  # bytea
    20: pa.int64(),  # bigint
    21: pa.int64(),  # smallint
    23: pa.int64(),  # integer
    26: pa.int64(),  # oid
    700: pa.float64(),  # real
    701: pa.float64(),  # double precision
    1082: pa.date32(),  # date
    1114: TIMESTAMP,  # timestamp
    1184: TIMESTAMP_UTC,  # timestamptz
}


def decimal_type(precision: int | None, scale: int | None) -> pa.DataType:
    """decimal128 when the database declares a precision Arrow can hold, else float64."""
    if precision is None or not 1 <= precision <= 38:
        return pa.float64()
    scale = scale or 0
    if not 0 <= scale <= precision:
        return pa.float64()
    return pa.decimal128(precision, scale)


def arrow_type_for(column_type: sqltypes.TypeEngine[Any]) -> pa.DataType | None:
    """The Arrow type for a SQLAlchemy column type; None when the database declares none."""
    if isinstance(column_type, sqltypes.NullType):
        return None
    if isinstance(column_type, sqltypes.Boolean):
        return pa.bool_()
    if isinstance(column_type, sqltypes.Integer):
        return pa.int64()
    if isinstance(column_type, sqltypes.Float):  # before Numeric: Float is a Numeric
        return pa.float64()
    if isinstance(column_type, sqltypes.Numeric):
        return decimal_type(column_type.precision, column_type.scale)
    if isinstance(column_type, sqltypes.DateTime):
        return TIMESTAMP_UTC if column_type.timezone else TIMESTAMP
    if isinstance(column_type, sqltypes.Date):
        return pa.date32()
    if isinstance(column_type, (sqltypes.LargeBinary, sqltypes.BINARY, sqltypes.VARBINARY)):
        return pa.binary()
    return pa.string()


def postgres_arrow_type(description: Sequence[Any]) -> pa.DataType:
    """The Arrow type for a PostgreSQL result column from its DB-API description."""
    type_code, precision, scale = description[1], description[4], description[5]
    if type_code == POSTGRES_NUMERIC_OID:
        return decimal_type(precision, scale)
    return POSTGRES_TYPES.get(type_code, pa.string())


# Dialects whose drivers name each result column's type in `cursor.description`.
CURSOR_TYPES: dict[str, Callable[[Sequence[Any]], pa.DataType]] = {
    "postgresql": postgres_arrow_type,
}


def inferred_type(values: Sequence[Any]) -> pa.DataType:
    """The Arrow type of the values themselves, for columns the database does not type."""
    try:
        found = pa.array(values).type
    except (pa.ArrowException, OverflowError):  # mixed kinds of values: keep them as text
        return pa.string()
    if pa.types.is_integer(found):
        return pa.int64()
    if pa.types.is_floating(found) or pa.types.is_decimal(found):
        return pa.float64()
    if pa.types.is_timestamp(found):
        return TIMESTAMP_UTC if found.tz is not None else TIMESTAMP
    if pa.types.is_date(found):
        return pa.date32()
    if pa.types.is_boolean(found) or pa.types.is_binary(found):
        return found
    return pa.string()


def as_text(value: Any) -> str | None:
    """A value for a text column: JSON for documents and arrays, `str` for anything else."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def arrow_array(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array:
    """One column of a batch as an Arrow array of `arrow_type`."""
    if pa.types.is_string(arrow_type):
        values = [as_text(value) for value in values]
    elif pa.types.is_floating(arrow_type):
        values = [float(value) if isinstance(value, Decimal) else value for value in values]
    return pa.array(values, type=arrow_type)


def bound_value(lower_bound: str, arrow_type: pa.DataType | None) -> Any:
    """The lower bound as a value of the watermark column's kind, so the database compares like
    with like; other kinds stay text, which the database converts to the column's type."""
    if arrow_type is None:  # untyped (SQLite expressions): a number when it reads as one
        for kind in (int, float):
            try:
                return kind(lower_bound)
            except ValueError:
                pass
        return lower_bound
    convert: Callable[[str], Any] | None = None
    if pa.types.is_integer(arrow_type):
        convert = int
    elif pa.types.is_floating(arrow_type):
        convert = float
    elif pa.types.is_decimal(arrow_type):
        convert = Decimal
    if convert is None:
        return lower_bound
    try:
        return convert(lower_bound)
    except (ValueError, InvalidOperation):
        return lower_bound  # the database says what is wrong with it


@dataclass(frozen=True)
class Target:
    """What a run reads, named the way its error messages name it."""

    job: IngestJob
    db: DbConfig
    url: str  # with the password hidden
    password: str | None

    @property
    def subject(self) -> str:
        """The job, the table or query, the connection and the database, for a message."""
        what = f"table `{self.db.table_name}`" if self.db.table_name else "`config.db.query`"
        return (
            f"Job `{self.job.name}`: {what} through connection `{self.db.connection_id}` "
            f"({self.url})"
        )

    def error(self, problem: str, next_step: str, detail: str = "") -> IngestError:
        """An IngestError naming the job, table and connection, with the database's own words
        (`detail`) on lines of their own; it never holds the password."""
        message = f"{self.subject}: {problem} {next_step}"
        if detail:
            indented = "\n".join(f"    {line}" for line in detail.splitlines())
            message = f"{self.subject}: {problem}\n{indented}\n{next_step}"
        if self.password:
            message = message.replace(self.password, "***")
        return IngestError(message)

    @contextmanager
    def database_errors(self, doing: str, next_step: str) -> Iterator[None]:
        """Turn a SQLAlchemy error raised while `doing` something into an IngestError."""
        try:
            yield
        except SQLAlchemyError as error:
            raise self.error(f"could not {doing}:", next_step, reason(error)) from None


def reason(error: SQLAlchemyError) -> str:
    """The database's own words for an error, without SQLAlchemy's statement and link."""
    detail: BaseException = error
    if isinstance(error, DBAPIError) and error.orig is not None:
        detail = error.orig
    return str(detail).strip() or type(detail).__name__


def connection_url(settings: dict[str, Any], job: IngestJob, db: DbConfig) -> URL:
    """The SQLAlchemy URL of a resolved connection, with its password set when it has one."""
    raw = settings.get("url")
    if not raw:
        raise IngestError(
            f"Job `{job.name}`: connection `{db.connection_id}` has no `url`. Give it a SQLAlchemy "
            "URL such as `postgresql+psycopg://user@host:5432/db` in `c.Lakebook.connections` "
            "(and the password through `password_env`)."
        )
    try:
        url = make_url(str(raw))
    except ArgumentError:
        # The message would quote the URL, which may hold a password: do not pass it on.
        raise IngestError(
            f"Job `{job.name}`: the `url` of connection `{db.connection_id}` is not a SQLAlchemy "
            "URL. Write it as `dialect+driver://user@host:port/database`."
        ) from None
    password = settings.get("password")
    return url.set(password=str(password)) if password is not None else url


def escape_bind_parameters(query: str) -> str:
    """The query with every `:name` escaped, so text() sends it to the database unchanged."""
    return BIND_PARAMETER.sub(lambda match: "\\" + match.group(0), query)


def split_table_name(table_name: str) -> tuple[str | None, str]:
    """`schema.table` as (schema, table); a bare name has no schema."""
    schema, _, name = table_name.rpartition(".")
    return schema or None, name


@dataclass
class Columns:
    """A source's column names and the Arrow types known before reading rows (None: unknown)."""

    names: list[str]
    types: list[pa.DataType | None]
    declared: list[sqltypes.TypeEngine[Any]] | None = None  # a table's column types

    def type_of(self, name: str) -> pa.DataType | None:
        """The known type of a column."""
        return self.types[self.names.index(name)]


class DatabaseSource:
    """A table (`config.db.table_name`, `schema.table` allowed) or a query (`config.db.query`)."""

    def fetch(self, request: FetchRequest) -> Fetched:
        """Stream the rows (only those at or past the watermark on incremental runs) into Landing."""
        job = request.job
        db = job.config.db
        assert db is not None  # the spec guarantees it for source_type `database`
        settings = request.connection(db.connection_id)
        url = connection_url(settings, job, db)
        password = settings.get("password")
        target = Target(
            job, db, url.render_as_string(hide_password=True), str(password) if password else None
        )
        try:
            engine = create_engine(url, poolclass=NullPool)
        except (SQLAlchemyError, ImportError) as error:
            raise target.error(
                "SQLAlchemy cannot use this URL:",
                "Check the dialect and driver in `url` and install the driver package.",
                str(error),
            ) from None
        try:
            with target.database_errors(
                "connect to the database",
                f"Check the host, port, database, user and password of connection "
                f"`{db.connection_id}` and that the database server is running.",
            ):
                connection = engine.connect()
            with connection:
                return self.land(connection, request, target)
        finally:
            engine.dispose()

    def land(self, connection: Connection, request: FetchRequest, target: Target) -> Fetched:
        """Run the statement and write its rows as Parquet parts into Landing."""
        job, db = target.job, target.db
        watermark = self.watermark_source_column(job)
        if job.incremental_mode != "incremental" and request.lower_bound is None:
            watermark = None  # a full load neither needs nor checks the watermark column
        filtered = watermark is not None and request.lower_bound is not None
        known: Columns | None = None
        if db.table_name is not None:
            known = self.table_columns(connection, target, db.table_name)
        elif watermark is not None:
            known = self.query_columns(connection, target)
        if watermark is not None and known is not None and watermark not in known.names:
            raise self.missing_watermark(target, watermark, known.names)

        statement = self.statement(connection, db, known, watermark if filtered else None)
        parameters: dict[str, Any] = {}
        if filtered:
            assert known is not None and watermark is not None and request.lower_bound is not None
            parameters["lower_bound"] = bound_value(request.lower_bound, known.type_of(watermark))
        source_uri = f"db://{db.connection_id}/{db.table_name or 'query'}"
        next_step = (
            "Check `config.db.query` against the database."
            if db.query is not None
            else "Check that the connection's user may read the table."
        )
        if filtered:
            next_step += (
                f" The run read rows whose `{watermark}` is >= `{request.lower_bound}` (the stored "
                "watermark): check that the database accepts that value for the column."
            )
        with target.database_errors("run the query", next_step):
            result = connection.execution_options(
                stream_results=True, yield_per=BATCH_ROWS
            ).execute(statement, parameters)
        if not result.returns_rows:
            raise target.error(
                "the statement returns no rows.", "`config.db.query` must be a SELECT query."
            )
        names = list(result.keys())
        if watermark is not None and known is None and watermark not in names:
            result.close()
            raise self.missing_watermark(target, watermark, names)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            result.close()
            raise target.error(
                f"the result has column(s) {', '.join(f'`{d}`' for d in duplicates)} more than once.",
                "Give every column its own name (`AS …`) in `config.db.query`.",
            )
        types = self.known_types(connection, result, known, names)
        files = self.write_parts(result, names, types, request.landing, source_uri, target)
        return Fetched(files, [], watermark_pushed_down=filtered)

    def watermark_source_column(self, job: IngestJob) -> str | None:
        """The source's name for `watermark_column`, which names the column after `rename_map`."""
        if job.watermark_column is None:
            return None
        renamed_from = {new: old for old, new in job.rename_map.items()}
        return renamed_from.get(job.watermark_column, job.watermark_column)

    def table_columns(self, connection: Connection, target: Target, table_name: str) -> Columns:
        """The table's columns and declared types; a helpful error when there is no such table."""
        schema, name = split_table_name(table_name)
        with target.database_errors(
            "read the table's columns", "Check that the connection's user may read the table."
        ):
            try:
                described = inspect(connection).get_columns(name, schema=schema)
            except NoSuchTableError:
                raise self.missing_table(connection, target, schema) from None
        if not described:  # some dialects answer an unknown table with no columns
            raise self.missing_table(connection, target, schema)
        return Columns(
            [str(item["name"]) for item in described],
            [arrow_type_for(item["type"]) for item in described],
            [item["type"] for item in described],
        )

    def missing_table(
        self, connection: Connection, target: Target, schema: str | None
    ) -> IngestError:
        """The error for a table that does not exist, listing the tables that do."""
        where = f"schema `{schema}`" if schema else "the default schema"
        try:
            inspector = inspect(connection)
            tables = sorted(
                [
                    *inspector.get_table_names(schema=schema),
                    *inspector.get_view_names(schema=schema),
                ]
            )
        except SQLAlchemyError:
            tables = []
        shown = ", ".join(f"`{table}`" for table in tables[:KNOWN_TABLES_SHOWN]) or "none"
        if len(tables) > KNOWN_TABLES_SHOWN:
            shown += f" and {len(tables) - KNOWN_TABLES_SHOWN} more"
        return target.error(
            f"the table does not exist. Tables and views in {where}: {shown}.",
            "Fix `config.db.table_name` (write `schema.table` for a table in another schema).",
        )

    def missing_watermark(self, target: Target, watermark: str, names: list[str]) -> IngestError:
        """The error for a watermark column the source does not have."""
        job = target.job
        renamed = (
            f" (renamed to `{job.watermark_column}`)" if watermark != job.watermark_column else ""
        )
        return target.error(
            f"`watermark_column` `{watermark}`{renamed} is not in the result. Its columns: "
            f"{', '.join(f'`{name}`' for name in names)}.",
            "Set `watermark_column` to one of them"
            + (", or select that column in `config.db.query`." if target.db.query else "."),
        )

    def query_columns(self, connection: Connection, target: Target) -> Columns:
        """The query's columns (and types where the driver names them) without reading rows."""
        db = target.db
        assert db.query is not None
        probe = text(f"SELECT * FROM {self.subquery(db.query)} WHERE 1 = 0")
        with target.database_errors(
            "run the query", "Check `config.db.query` against the database."
        ):
            result = connection.execute(probe)
            names = list(result.keys())
            types = self.known_types(connection, result, None, names)
            result.close()
        return Columns(names, types)

    def query_text(self, query: str) -> str:
        """The user's query for text(): no trailing `;`, colons escaped."""
        return escape_bind_parameters(query.strip().rstrip(";").rstrip())

    def subquery(self, query: str) -> str:
        """The user's query as a FROM item that a filter can be put on."""
        # The newline ends a trailing `-- comment` before the closing parenthesis.
        return f"({self.query_text(query)}\n) AS {SUBQUERY_ALIAS}"

    def statement(
        self, connection: Connection, db: DbConfig, known: Columns | None, watermark: str | None
    ) -> TextClause | TextualSelect:
        """The SELECT to stream, filtered on `watermark >= :lower_bound` when `watermark` is set.

        A table's SELECT carries its declared column types, so SQLAlchemy converts the values
        (SQLite, for one, hands dates and decimals back as text and floats)."""
        quote = connection.dialect.identifier_preparer.quote
        if db.table_name is not None:
            assert known is not None
            schema, name = split_table_name(db.table_name)
            table = quote(name) if schema is None else f"{quote(schema)}.{quote(name)}"
            selected = ", ".join(quote(name) for name in known.names)
            sql = f"SELECT {selected} FROM {table}"
        elif watermark is not None:
            assert db.query is not None
            sql = f"SELECT * FROM {self.subquery(db.query)}"
        else:
            assert db.query is not None
            return text(self.query_text(db.query))
        if watermark is not None:
            sql += f" WHERE {quote(watermark)} >= :lower_bound"
        if known is not None and known.declared is not None:
            typed = [column(n, t) for n, t in zip(known.names, known.declared, strict=True)]
            return text(sql).columns(*typed)
        return text(sql)

    def known_types(
        self,
        connection: Connection,
        result: CursorResult[Any],
        known: Columns | None,
        names: list[str],
    ) -> list[pa.DataType | None]:
        """Arrow types from the declared column types, else from the driver's cursor description."""
        declared = known.types if known is not None else [None] * len(names)
        from_cursor = CURSOR_TYPES.get(connection.dialect.name)
        description = result.cursor.description if result.cursor is not None else None
        if from_cursor is None or description is None or len(description) != len(names):
            return list(declared)
        return [
            given if given is not None else from_cursor(entry)
            for given, entry in zip(declared, description, strict=True)
        ]

    def write_parts(
        self,
        result: CursorResult[Any],
        names: list[str],
        types: list[pa.DataType | None],
        landing: Path,
        source_uri: str,
        target: Target,
    ) -> list[LoadFile]:
        """Write each batch of rows as its own Parquet file; an empty result writes one empty file."""
        compression = target.job.compression
        files: list[LoadFile] = []
        schema: pa.Schema | None = None
        for rows in self.batches(result, target):
            columns = list(zip(*rows, strict=True))
            if schema is None:
                schema = pa.schema(
                    [
                        pa.field(name, given if given is not None else inferred_type(values))
                        for name, given, values in zip(names, types, columns, strict=True)
                    ]
                )
            batch = self.batch_table(columns, schema, target)
            files.append(self.write_part(batch, landing, len(files) + 1, source_uri, compression))
        if not files:
            schema = pa.schema(
                [
                    pa.field(name, given or pa.string())
                    for name, given in zip(names, types, strict=True)
                ]
            )
            files.append(self.write_part(schema.empty_table(), landing, 1, source_uri, compression))
        return files

    def batches(self, result: CursorResult[Any], target: Target) -> Iterator[Sequence[Any]]:
        """The result's rows, `BATCH_ROWS` at a time; errors while reading become IngestErrors."""
        partitions = result.partitions(BATCH_ROWS)  # explicit: SQLite ignores `yield_per`
        while True:
            try:
                rows = next(partitions, None)
            except SQLAlchemyError as error:
                raise target.error(
                    "could not read the rows:",
                    "Check the database's log and run the job again.",
                    reason(error),
                ) from None
            except ValueError as error:  # a stored value SQLAlchemy cannot read as its column type
                raise target.error(
                    "a stored value does not match its column's declared type:",
                    "Read the table through `config.db.query` with a CAST to the values' real "
                    "type, or fix the stored values.",
                    str(error),
                ) from None
            if rows is None:
                return
            yield rows

    def batch_table(
        self, columns: Sequence[Sequence[Any]], schema: pa.Schema, target: Target
    ) -> pa.Table:
        """One batch of rows as an Arrow table with the run's schema."""
        arrays = []
        for field, values in zip(schema, columns, strict=True):
            try:
                arrays.append(arrow_array(values, field.type))
            except (pa.ArrowException, OverflowError, TypeError, ValueError) as error:
                raise target.error(
                    f"column `{field.name}` holds a value that cannot be stored as {field.type}, "
                    "the type of its declaration or of its first rows:",
                    f"CAST `{field.name}` to one type in `config.db.query`.",
                    str(error),
                ) from None
        return pa.Table.from_arrays(arrays, schema=schema)

    def write_part(
        self, table: pa.Table, landing: Path, number: int, source_uri: str, compression: str
    ) -> LoadFile:
        """Write one Parquet part into Landing."""
        path = landing / f"part-{number:05d}.parquet"
        pq.write_table(table, path, compression=compression)
        return LoadFile(path, "parquet", source_uri)
