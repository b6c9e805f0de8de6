"""The job graph: bad graphs rejected with the culprits named, run order, downstream jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from lakebook.cli import EXIT_USER_ERROR, main
from lakebook.dag import Dag, Node
from lakebook.errors import DagCycleError, DagMissingInputError, DuplicateDatasetError
from lakebook.specs import PipelineSpec, load_pipeline_file, parse_pipeline
from tests.conftest import REPO, write_pipeline


def ingest(name: str, **fields: Any) -> dict[str, Any]:
    """A valid local CSV ingest job writing `bronze.<name>`."""
    return {
        "name": name,
        "source_type": "local_path",
        "config": {"file": {"path": f"data/{name}.csv"}},
        **fields,
    }


def sql_job(name: str, layer: str, *inputs: str) -> dict[str, Any]:
    """A valid SQL job in `layer` reading `inputs` (dataset addresses)."""
    aliases = [{"dataset": item, "alias": f"in{index}"} for index, item in enumerate(inputs)]
    return {
        "name": name,
        "layer": layer,
        "dataset_type": "fact" if layer == "silver" else "mart",
        "inputs": aliases,
        "sql_text": "SELECT * FROM in0",
    }


def spec_of(*jobs: dict[str, Any]) -> PipelineSpec:
    return parse_pipeline(
        {
            "name": "shop",
            "ingest_jobs": [job for job in jobs if "layer" not in job],
            "dataset_jobs": [job for job in jobs if "layer" in job],
        }
    )


def dag_of(*jobs: dict[str, Any], existing: tuple[str, ...] = ()) -> Dag:
    return Dag.from_pipeline(spec_of(*jobs), existing=existing)


# bad graphs ----------------------------------------------------------------------------------


def test_cycle_is_named() -> None:
    with pytest.raises(DagCycleError) as caught:
        dag_of(
            ingest("orders"),
            sql_job("a", "silver", "bronze.orders", "silver.b"),
            sql_job("b", "silver", "silver.a"),
        )
    assert caught.value.cycle == ["a", "b"]
    assert "`a` -> `b` -> `a`" in str(caught.value)


def test_longer_cycle_across_layers_is_named_whole() -> None:
    with pytest.raises(DagCycleError) as caught:
        dag_of(
            sql_job("a", "silver", "gold.c"),
            sql_job("b", "silver", "silver.a"),
            sql_job("c", "gold", "silver.b"),
        )
    assert set(caught.value.cycle) == {"a", "b", "c"}
    assert len(caught.value.cycle) == 3
    message = str(caught.value)
    for name in ("a", "b", "c"):
        assert f"`{name}`" in message


def test_self_loop_is_a_cycle() -> None:
    with pytest.raises(DagCycleError) as caught:
        dag_of(ingest("orders"), sql_job("clean", "silver", "bronze.orders", "silver.clean"))
    assert caught.value.cycle == ["clean"]
    assert "`clean` -> `clean`" in str(caught.value)


def test_cycle_in_nodes_given_directly() -> None:
    nodes = [
        Node("x", "silver.x", 2, frozenset({"y"})),
        Node("y", "silver.y", 2, frozenset({"x"})),
        Node("z", "gold.z", 3, frozenset({"x"})),
    ]
    with pytest.raises(DagCycleError) as caught:
        Dag(nodes)
    assert caught.value.cycle == ["x", "y"]


def test_missing_input_names_job_and_dataset() -> None:
    with pytest.raises(DagMissingInputError) as caught:
        dag_of(ingest("orders"), sql_job("clean", "silver", "bronze.orders", "bronze.refunds"))
    error = caught.value
    assert (error.job, error.dataset) == ("clean", "bronze.refunds")
    message = str(error)
    assert "Job `clean` reads `bronze.refunds`" in message
    assert "`bronze.orders`" in message  # what is produced, to spot a typo


def test_existing_lake_dataset_satisfies_an_input() -> None:
    dag = dag_of(sql_job("report", "gold", "silver.orders"), existing=("silver.orders",))
    assert dag.nodes["report"].upstream == frozenset()
    assert dag.order() == ["report"]


def test_duplicate_dataset_names_both_jobs() -> None:
    # parse_pipeline already rejects duplicate job names; the graph re-checks specs built otherwise.
    spec = PipelineSpec.model_validate(
        {
            "name": "shop",
            "ingest_jobs": [ingest("orders")],
            "dataset_jobs": [
                sql_job("clean", "silver", "bronze.orders"),
                {**sql_job("clean", "silver", "bronze.orders"), "description": "second"},
            ],
        }
    )
    with pytest.raises(DuplicateDatasetError) as caught:
        Dag.from_pipeline(spec)
    assert caught.value.dataset == "silver.clean"
    assert caught.value.jobs == ["clean", "clean"]
    assert "Jobs `clean` and `clean` both write `silver.clean`" in str(caught.value)


# order -------------------------------------------------------------------------------------


def test_reference_ingests_run_first_and_everything_else_waits_for_them() -> None:
    dag = dag_of(
        ingest("orders"),
        ingest("zones", is_reference=True),
        ingest("currencies", is_reference=True),
        sql_job("clean", "silver", "bronze.orders"),
        sql_job("revenue", "gold", "silver.clean"),
        sql_job("report", "gold", "silver.other"),
        existing=("silver.other",),
    )
    references = {"zones", "currencies"}
    assert dag.order()[:2] == ["currencies", "zones"]
    for name, node in dag.nodes.items():
        if name in references:
            assert node.upstream == frozenset()
        else:
            assert references <= node.upstream, name


def test_layers_run_in_order_ingest_silver_gold() -> None:
    dag = dag_of(
        sql_job("a_summary", "gold", "silver.z_orders"),
        sql_job("z_orders", "silver", "bronze.orders", "bronze.customers"),
        sql_job("m_customers", "silver", "bronze.customers"),
        ingest("orders"),
        ingest("customers"),
    )
    order = dag.order()
    assert order == ["customers", "orders", "m_customers", "z_orders", "a_summary"]
    rank = {"customers": 1, "orders": 1, "m_customers": 2, "z_orders": 2, "a_summary": 3}
    assert [rank[name] for name in order] == sorted(rank[name] for name in order)


def test_every_job_comes_after_its_upstream_jobs() -> None:
    dag = Dag.from_pipeline(
        load_pipeline_file(REPO / "pipelines" / "jaffle_shop" / "pipeline.yaml")
    )
    order = dag.order()
    assert order == [
        "raw_customers",
        "raw_orders",
        "raw_payments",
        "customers",
        "dim_customers",
        "orders",
        "daily_revenue",
        "monthly_revenue",
    ]
    position = {name: index for index, name in enumerate(order)}
    for name, node in dag.nodes.items():
        for parent in node.upstream:
            assert position[parent] < position[name]
    assert dag.nodes["orders"].upstream == {"raw_customers", "raw_orders", "raw_payments"}
    assert dag.nodes["orders"].dataset == "silver.orders"


def test_ready_lists_jobs_whose_upstream_jobs_finished() -> None:
    dag = dag_of(
        ingest("zones", is_reference=True),
        ingest("orders"),
        ingest("customers"),
        sql_job("clean", "silver", "bronze.orders"),
    )
    assert dag.ready(set(), set()) == ["zones"]
    assert dag.ready({"zones"}, {"zones"}) == ["customers", "orders"]
    assert dag.ready({"zones", "customers"}, {"zones", "customers", "orders"}) == []
    assert dag.ready({"zones", "orders"}, {"zones", "orders"}) == ["customers", "clean"]


def test_empty_pipeline_has_an_empty_order() -> None:
    assert dag_of().order() == []


# downstream ----------------------------------------------------------------------------------


def test_downstream_is_transitive() -> None:
    dag = dag_of(
        ingest("zones", is_reference=True),
        ingest("orders"),
        ingest("customers"),
        sql_job("clean", "silver", "bronze.orders"),
        sql_job("people", "silver", "bronze.customers"),
        sql_job("revenue", "gold", "silver.clean", "silver.people"),
    )
    assert dag.downstream("orders") == {"clean", "revenue"}
    assert dag.downstream("people") == {"revenue"}
    assert dag.downstream("revenue") == set()
    assert dag.downstream("zones") == {"orders", "customers", "clean", "people", "revenue"}


# the CLI -------------------------------------------------------------------------------------


def test_validate_reports_a_cycle_with_exit_code_2(workspace_dir: Path) -> None:
    document = {
        "name": "loop",
        "ingest_jobs": [ingest("orders")],
        "dataset_jobs": [
            sql_job("a", "silver", "bronze.orders", "silver.b"),
            sql_job("b", "silver", "silver.a"),
        ],
    }
    write_pipeline(workspace_dir, "loop", yaml.safe_dump(document, sort_keys=False))
    result = CliRunner().invoke(main, ["--workspace", str(workspace_dir), "validate", "loop"])
    assert result.exit_code == EXIT_USER_ERROR
    assert "cycle: `a` -> `b` -> `a`" in result.output


def test_validate_reports_a_missing_input_with_exit_code_2(workspace_dir: Path) -> None:
    document = {"name": "gap", "dataset_jobs": [sql_job("report", "gold", "silver.nowhere")]}
    write_pipeline(workspace_dir, "gap", yaml.safe_dump(document, sort_keys=False))
    result = CliRunner().invoke(main, ["--workspace", str(workspace_dir), "validate"])
    assert result.exit_code == EXIT_USER_ERROR
    assert "Job `report` reads `silver.nowhere`" in result.output
