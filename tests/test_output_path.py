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


@pytest.mark.parametrize("path", ["silver/orders", "bronze/x", "./gold/y", "quarantine/q"])
def test_output_path_cannot_take_over_a_managed_folder(path: str) -> None:
    with pytest.raises(ValidationError, match="which lakebook manages"):
        dataset_job(
            name="things",
            layer="gold",
            inputs=[{"dataset": "bronze.things"}],
            sql_text="SELECT 1",
            output_path=path,
        )


def test_two_jobs_cannot_share_an_output_path() -> None:
    from lakebook.errors import SpecValidationError
    from lakebook.specs import parse_pipeline

    job = {"layer": "silver", "inputs": [{"dataset": "bronze.x"}], "sql_text": "SELECT 1"}
    with pytest.raises(SpecValidationError, match="two jobs write to `shared/t`"):
        parse_pipeline(
            {
                "name": "p",
                "dataset_jobs": [
                    {"name": "a", "output_path": "shared/t", **job},
                    {"name": "b", "output_path": "shared/t/", **job},
                ],
            }
        )


def test_template_jobs_refuse_sql_text_and_scd2_refuses_other_refresh_modes() -> None:
    scd2 = {
        "name": "dim",
        "layer": "silver",
        "transform_type": "scd2_dimension",
        "inputs": [{"dataset": "bronze.x"}],
        "scd2": {"business_key_columns": ["id"]},
    }
    with pytest.raises(ValidationError, match="`sql_text` only applies to transform_type `sql`"):
        dataset_job(**{**scd2, "sql_text": "SELECT 1"})
    with pytest.raises(ValidationError, match="use `refresh_mode: full_refresh`"):
        dataset_job(**{**scd2, "refresh_mode": "append"})
