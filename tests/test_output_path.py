"""`output_path`: a dataset stored somewhere else in the lake keeps its `<layer>.<name>` address."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lakebook.query import query
from tests.dataset_jobs import dataset_job, open_context, put, run


def test_output_path_moves_the_table_but_not_the_address(tmp_path: Path) -> None:
    context = open_context(tmp_path / "ws")
    put(context, "bronze.things", [{"id": 1}, {"id": 2}])
    job = dataset_job(
        name="things",
        layer="silver",
        inputs=[{"dataset": "bronze.things"}],
        sql_text="SELECT id FROM things",
        output_path="shared/things_v2",
    )
    run(context, job)
    assert (context.lake.root / "shared" / "things_v2" / "_delta_log").is_dir()
    assert not (context.lake.root / "silver" / "things").exists()
    assert context.lake.table_path("silver.things") == context.lake.root / "shared" / "things_v2"
    assert "silver.things" in context.lake.datasets()
    assert query(context.lake, "SELECT sum(id) AS s FROM silver.things").to_pylist() == [{"s": 3}]


@pytest.mark.parametrize("path", ["/etc/things", "../outside", "a/../../b"])
def test_output_path_stays_inside_the_lake(path: str) -> None:
    with pytest.raises(ValidationError, match="must be a path inside the lake"):
        dataset_job(
            name="things",
            layer="silver",
            inputs=[{"dataset": "bronze.things"}],
            sql_text="SELECT 1",
            output_path=path,
        )


def test_an_explicitly_empty_target_schema_is_refused() -> None:
    with pytest.raises(ValidationError, match="`target_schema` is empty"):
        dataset_job(
            name="things",
            layer="silver",
            inputs=[{"dataset": "bronze.things"}],
            sql_text="SELECT 1",
            target_schema=[],
        )
