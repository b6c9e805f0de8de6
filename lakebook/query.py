"""Query the lake with DuckDB: datasets appear as `bronze.x`, `silver.y`, `gold.z`.

The user's SQL sees only the lake's datasets: DuckDB's external access is switched off before it runs.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from lakebook.errors import QueryError
from lakebook.sql import quote_identifier as q
from lakebook.storage import LAYERS, Lake


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every dataset as a view `<layer>.<name>`, files locked away."""
    con = duckdb.connect()
    for layer in LAYERS:
        con.execute(f"CREATE SCHEMA {layer}")
    for dataset in lake.datasets():
        layer, name = dataset.split(".", 1)
        arrow_name = f"__{layer}__{name}"
        con.register(arrow_name, lake.table(dataset).to_pyarrow_dataset())
        con.execute(f"CREATE VIEW {layer}.{q(name)} AS SELECT * FROM {q(arrow_name)}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def query(lake: Lake, sql: str) -> pa.Table:
    """Run one SQL statement over the lake; the result as an Arrow table."""
    con = connect(lake)
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as error:
        known = ", ".join(f"`{d}`" for d in lake.datasets()) or "none yet"
        raise QueryError(f"The query failed: {error}\nDatasets you can query: {known}.") from None
    finally:
        con.close()
