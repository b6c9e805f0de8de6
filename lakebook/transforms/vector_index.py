"""`transform_type: vector_index`: split a text column into overlapping chunks and embed them.

The output has one row per chunk: the source's `id_column`, `chunk_index` (0, 1, … within the
text), `chunk_text`, `embedding` (list<float32>, L2-normalised) and `embedding_model` (the model's
name, so `lakebook.vector.search` embeds questions with the same model). Chunks hold at most
`chunk_size` characters and break at whitespace where they can; each chunk starts about
`chunk_overlap` characters before the previous one ended (at a word start). Texts are read in
`id_column` order (ids and texts are held in memory meanwhile) and embedded in batches in Python,
outside DuckDB; each batch is inserted into `output` as it is done. Null texts give no chunks.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pyarrow as pa

from lakebook.embeddings import EmbeddingModelError, get_embedder
from lakebook.errors import TransformError
from lakebook.specs import DatasetJob, VectorIndexConfig
from lakebook.sql import quote_identifier as q
from lakebook.transforms import RunInfo
from lakebook.transforms.columns import require_columns, require_input

EMBED_BATCH_CHUNKS = 256
READ_BATCH_ROWS = 1024
OUTPUT_COLUMNS = ("chunk_index", "chunk_text", "embedding", "embedding_model")


def chunk_text(text: str, chunk_size: int, chunk_overlap: int) -> list[str]:
    """`text` cut into chunks of at most `chunk_size` characters overlapping by ~`chunk_overlap`.

    A chunk ends at the last whitespace of its window when that leaves it at least half full (and
    longer than the overlap); otherwise, as inside a very long word, it is cut at `chunk_size`.
    The next chunk starts `chunk_overlap` characters before the end, moved forward to a word start.
    """
    if chunk_overlap >= chunk_size:
        raise ValueError("chunk_overlap must be smaller than chunk_size")
    chunks: list[str] = []
    length = len(text)
    start = _skip_space(text, 0)
    while start < length:
        end = min(start + chunk_size, length)
        if end < length and not text[end].isspace():
            lowest = start + max(chunk_size // 2, chunk_overlap + 1)
            cut = _last_space(text, lowest, end)
            if cut is not None:
                end = cut
        chunks.append(text[start:end].rstrip())
        if end >= length:
            break
        next_start = end - chunk_overlap
        if chunk_overlap and next_start > 0 and not text[next_start - 1].isspace():
            # Mid-word: start at the next word instead (keeps chunks readable; overlap shrinks).
            word_start = _next_word_start(text, next_start, end)
            if word_start is not None:
                next_start = word_start
        start = _skip_space(text, next_start)
    return [chunk for chunk in chunks if chunk]


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _last_space(text: str, lowest: int, end: int) -> int | None:
    """The position of the last whitespace in text[lowest:end], or None."""
    for position in range(end - 1, lowest - 1, -1):
        if text[position].isspace():
            return position
    return None


def _next_word_start(text: str, position: int, end: int) -> int | None:
    """The first word start after `position` and before `end`, or None."""
    for index in range(position, end):
        if text[index].isspace():
            after = _skip_space(text, index)
            return after if after < end else None
    return None


def build(con: duckdb.DuckDBPyConnection, job: DatasetJob, run: RunInfo) -> None:
    """Chunk and embed `vector_index.text_column` into the table `output`."""
    config = job.vector_index
    assert config is not None  # the spec requires it for vector_index jobs
    _check(con, job, config)
    try:
        embedder = get_embedder(config.embedding_model)
    except EmbeddingModelError as error:
        raise TransformError(f"Job `{job.name}`: {error}") from None
    # Fetch everything first: one DuckDB connection cannot read and insert at the same time.
    source = con.sql(
        f"SELECT {q(config.id_column)} AS id, {q(config.text_column)} AS text "
        f"FROM {q(config.source)} ORDER BY 1"
    ).to_arrow_table()
    schema = pa.schema(
        [
            source.schema.field(0).with_name(config.id_column),
            pa.field("chunk_index", pa.int32()),
            pa.field("chunk_text", pa.string()),
            pa.field("embedding", pa.list_(pa.float32())),
            pa.field("embedding_model", pa.string()),
        ]
    )
    con.register("__vector_batch", schema.empty_table())
    con.execute("CREATE TABLE output AS SELECT * FROM __vector_batch")
    con.unregister("__vector_batch")
    for ids, indexes, texts in _chunk_batches(source, config):
        vectors = embedder.embed(texts)
        batch = pa.table(
            [
                pa.array(ids, type=schema.field(0).type),
                pa.array(indexes, type=pa.int32()),
                pa.array(texts, type=pa.string()),
                pa.FixedSizeListArray.from_arrays(vectors.reshape(-1), embedder.dimension).cast(
                    pa.list_(pa.float32())
                ),
                pa.array([embedder.name] * len(texts), type=pa.string()),
            ],
            schema=schema,
        )
        con.register("__vector_batch", batch)
        con.execute("INSERT INTO output SELECT * FROM __vector_batch")
        con.unregister("__vector_batch")


def _chunk_batches(
    source: pa.Table, config: VectorIndexConfig
) -> Iterator[tuple[list[object], list[int], list[str]]]:
    """(ids, chunk indexes, chunk texts) in batches of about EMBED_BATCH_CHUNKS chunks."""
    ids: list[object] = []
    indexes: list[int] = []
    texts: list[str] = []
    for record in source.to_batches(READ_BATCH_ROWS):
        for identifier, text in zip(
            record.column(0).to_pylist(), record.column(1).to_pylist(), strict=True
        ):
            if text is None:
                continue
            for index, chunk in enumerate(
                chunk_text(str(text), config.chunk_size, config.chunk_overlap)
            ):
                ids.append(identifier)
                indexes.append(index)
                texts.append(chunk)
            if len(texts) >= EMBED_BATCH_CHUNKS:
                yield ids, indexes, texts
                ids, indexes, texts = [], [], []
    if texts:
        yield ids, indexes, texts


def _check(con: duckdb.DuckDBPyConnection, job: DatasetJob, config: VectorIndexConfig) -> None:
    """Errors naming the field for a config that cannot work on these inputs."""
    if config.chunk_overlap >= config.chunk_size:
        raise TransformError(
            f"Job `{job.name}`: `vector_index.chunk_overlap` ({config.chunk_overlap}) must be "
            f"smaller than `chunk_size` ({config.chunk_size}). Lower the overlap."
        )
    require_input(job, config.source, "vector_index.source")
    require_columns(
        con,
        job,
        config.source,
        {
            "vector_index.id_column": [config.id_column],
            "vector_index.text_column": [config.text_column],
        },
    )
    if config.id_column in OUTPUT_COLUMNS:
        raise TransformError(
            f"Job `{job.name}`: `vector_index.id_column` `{config.id_column}` clashes with an "
            f"output column ({', '.join(f'`{name}`' for name in OUTPUT_COLUMNS)}). "
            "Rename it in an upstream job."
        )
