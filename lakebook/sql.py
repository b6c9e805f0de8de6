"""SQL helpers shared by specs and jobs: parsing with sqlglot in DuckDB's dialect."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

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
