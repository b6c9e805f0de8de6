"""Query a vector index: the chunks closest to a question.

    import lakebook.vector
    lakebook.vector.search("gold.docs_index", "how do I reset my password?", k=3)

The question is embedded with the model the index was built with: the index's `embedding_model`
column, written by the `vector_index` template (pass `model=` only for a table without that
column). Chunks are ranked by cosine similarity, computed by DuckDB over the Delta table.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from lakebook.embeddings import get_embedder
from lakebook.errors import QueryError
from lakebook.sql import quote_identifier as q

INDEX = "__vector_index"


def search(
    dataset_or_table: str | pa.Table,
    question: str,
    k: int = 5,
    model: str | None = None,
    *,
    workspace: str | Path = ".",
) -> pa.Table:
    """The `k` chunks most similar to `question`, best first, with a `score` column (cosine).

    `dataset_or_table` is a dataset of the workspace at or above `workspace` (e.g.
    `gold.docs_index`) or an Arrow table with `chunk_text` and `embedding` columns.
    """
    if k < 1:
        raise QueryError(f"`k` is {k}: ask for at least one chunk.")
    name = dataset_or_table if isinstance(dataset_or_table, str) else "the table"
    con = duckdb.connect()
    try:
        if isinstance(dataset_or_table, str):
            from lakebook.workspace import Workspace

            lake = Workspace.open(workspace).lake
            con.register(INDEX, lake.table(dataset_or_table).to_pyarrow_dataset())
        else:
            con.register(INDEX, dataset_or_table)
        columns = [str(row[0]) for row in con.sql(f"DESCRIBE {INDEX}").fetchall()]
        missing = [column for column in ("chunk_text", "embedding") if column not in columns]
        if missing:
            raise QueryError(
                f"`{name}` is not a vector index: it has no {' or '.join(missing)} column. "
                "Search a dataset written by a `vector_index` job."
            )
        embedder = get_embedder(_model_name(con, name, columns, model))
        vector = embedder.embed([question])[0]
        if not np.any(vector):
            raise QueryError(
                f"The question `{question}` has nothing model `{embedder.name}` can embed (no "
                "words, or only very common ones). Ask with more specific words."
            )
        _check_dimension(con, name, embedder.name, len(vector))
        shown = [column for column in columns if column not in ("embedding", "embedding_model")]
        similarity = "list_cosine_similarity(embedding, $question::FLOAT[])"
        tie_break = ", ".join(q(column) for column in shown)
        return con.sql(
            f"SELECT {', '.join(q(column) for column in shown)}, "
            f"CASE WHEN isnan({similarity}) THEN 0 ELSE {similarity} END AS score "
            f"FROM {INDEX} WHERE embedding IS NOT NULL "
            f"ORDER BY score DESC, {tie_break} LIMIT $k",
            params={"question": vector.tolist(), "k": k},
        ).to_arrow_table()
    finally:
        con.close()


def _model_name(
    con: duckdb.DuckDBPyConnection, name: str, columns: list[str], model: str | None
) -> str:
    """The model the index was embedded with; `model` must agree with it."""
    if "embedding_model" not in columns:
        if model is None:
            raise QueryError(
                f"`{name}` does not say which model embedded it (no `embedding_model` column). "
                "Pass `model=`, e.g. `model='lakebook-hash-256'`."
            )
        return model
    stored = [
        str(row[0])
        for row in con.sql(
            f"SELECT DISTINCT embedding_model FROM {INDEX} WHERE embedding_model IS NOT NULL "
            "ORDER BY 1 LIMIT 3"
        ).fetchall()
    ]
    if len(stored) > 1:
        raise QueryError(
            f"`{name}` mixes embeddings of several models ({', '.join(f'`{s}`' for s in stored)}); "
            "they cannot be compared. Rebuild the index with one model (refresh_mode full_refresh)."
        )
    if not stored:
        if model is None:
            raise QueryError(f"`{name}` has no chunks to search. Run the job that builds it first.")
        return model
    if model is not None and model != stored[0]:
        raise QueryError(
            f"`{name}` was embedded with `{stored[0]}`, not `{model}`: its vectors cannot be "
            "compared with the question's. Leave `model` out to use the index's own."
        )
    return stored[0]


def _check_dimension(con: duckdb.DuckDBPyConnection, name: str, model: str, size: int) -> None:
    sizes = [
        int(row[0])
        for row in con.sql(
            f"SELECT DISTINCT len(embedding) FROM {INDEX} WHERE embedding IS NOT NULL LIMIT 3"
        ).fetchall()
    ]
    if sizes and sizes != [size]:
        raise QueryError(
            f"`{name}` holds vectors of {', '.join(map(str, sizes))} dimensions but model "
            f"`{model}` makes {size}. Search with the model that built the index."
        )
