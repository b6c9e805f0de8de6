"""SQL helpers shared by specs and jobs: parsing with sqlglot in DuckDB's dialect, quoting, and
the DuckDB connection a job computes in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

if TYPE_CHECKING:  # duckdb is imported by the jobs that connect, not by every spec reader
    import duckdb

# The DuckDB type of each `ColumnSpec.type` (user_schema, target_schema).
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "decimal": "DECIMAL(38, 9)",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}


def sql_parse_problem(sql: str) -> str | None:
    """None when `sql` parses as one DuckDB statement, else a message with line and column."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as error:
        detail = error.errors[0] if error.errors else {}
        line, column = detail.get("line"), detail.get("col")
        description = detail.get("description") or str(error).splitlines()[0]
        if line is not None:
            return f"line {line}, column {column}: {description}"
        return str(description)
    if len(statements) != 1:
        return f"expected one SELECT statement, found {len(statements)}"
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        first_word = sql.strip().split(None, 1)[0] if sql.strip() else ""
        return f"expected a SELECT (or WITH … SELECT) query, but it starts with `{first_word}`"
    return None


def quote_identifier(name: str) -> str:
    """A DuckDB identifier in double quotes, with embedded quotes escaped."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: object) -> str:
    """A SQL literal for a simple Python value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def job_connection(
    scratch: Path, memory_limit: str, *, on_disk: bool = False
) -> duckdb.DuckDBPyConnection:
    """The DuckDB connection one job computes in: at most `memory_limit` of memory, spilling to
    `scratch/spill`, in UTC (so timestamps and watermarks render the same on every machine).
    `on_disk` keeps its tables in `scratch/job.duckdb` instead of memory."""
    import duckdb

    con = duckdb.connect(str(scratch / "job.duckdb") if on_disk else ":memory:")
    con.execute(f"SET memory_limit = {quote_literal(memory_limit)}")
    con.execute(f"SET temp_directory = {quote_literal(str(scratch / 'spill'))}")
    con.execute("SET TimeZone = 'UTC'")
    return con
