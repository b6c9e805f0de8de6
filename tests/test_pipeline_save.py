"""Saving a pipeline from the sidebar or the API keeps what people wrote in the file."""

from __future__ import annotations

from pathlib import Path

from lakebook.specs import load_pipeline_file
from lakebook.workspace import Workspace
from lakebook.yamledit import render_yaml
from tests.conftest import write_pipeline

HAND_WRITTEN = """\
# Shop pipeline: owned by the data team. Ask in #data before changing the ingest.
name: shop
description: Orders and customers
ingest_jobs:
  # customers come from the CRM export, refreshed nightly
  - name: raw_customers
    source_type: local_path  # the export lands next to this file
    config:
      file:
        path: data/customers.csv
  - name: raw_orders
    source_type: local_path
    config:
      file:
        path: data/orders.csv
dataset_jobs:
  - name: orders
    layer: silver
    inputs:
      - dataset: bronze.raw_orders
        alias: o
    # keep the SQL readable: one clause per line
    sql_text: |
      SELECT id AS order_id,
             amount
      FROM o
"""


def test_saving_a_job_keeps_comments_order_and_block_sql(empty_workspace: Path) -> None:
    path = write_pipeline(empty_workspace, "shop", HAND_WRITTEN) / "pipeline.yaml"
    workspace = Workspace.open(empty_workspace)
    workspace.save_job(
        "shop",
        "ingest_jobs",
        "raw_customers",
        {
            "name": "raw_customers",
            "source_type": "local_path",
            "description": "CRM export",
            "config": {"file": {"path": "data/customers.csv"}},
        },
        create=False,
    )
    workspace.save_job(
        "shop",
        "dataset_jobs",
        "customers",
        {
            "name": "customers",
            "layer": "silver",
            "inputs": [{"dataset": "bronze.raw_customers", "alias": "c"}],
            "sql_text": "SELECT id AS customer_id\nFROM c\n",
        },
        create=True,
    )
    text = path.read_text()
    for comment in (
        "# Shop pipeline: owned by the data team.",
        "# customers come from the CRM export, refreshed nightly",
        "# the export lands next to this file",
        "# keep the SQL readable: one clause per line",
    ):
        assert comment in text, text
    assert "    sql_text: |\n      SELECT id AS order_id,\n" in text  # untouched block kept
    assert "sql_text: |\n      SELECT id AS customer_id\n      FROM c\n" in text  # new SQL, a block
    assert text.index("name: shop") < text.index("ingest_jobs:") < text.index("dataset_jobs:")
    spec = load_pipeline_file(path)
    assert spec.ingest_jobs[0].description == "CRM export"
    assert [job.name for job in spec.dataset_jobs] == ["orders", "customers"]


def test_removing_a_job_removes_it_and_only_it(empty_workspace: Path) -> None:
    path = write_pipeline(empty_workspace, "shop", HAND_WRITTEN) / "pipeline.yaml"
    workspace = Workspace.open(empty_workspace)
    workspace.delete_job("shop", "dataset_jobs", "orders")
    text = path.read_text()
    assert "orders\n    layer" not in text and "sql_text" not in text
    assert "# customers come from the CRM export, refreshed nightly" in text
    assert [job.name for job in load_pipeline_file(path).ingest_jobs] == [
        "raw_customers",
        "raw_orders",
    ]


def test_a_new_file_gets_block_sql_and_no_defaults() -> None:
    text = render_yaml(
        {"name": "p", "dataset_jobs": [{"name": "a", "sql_text": "SELECT 1\nFROM t\n"}]}
    )
    assert "sql_text: |\n      SELECT 1\n      FROM t\n" in text


def test_an_unreadable_previous_file_is_replaced_by_a_clean_dump() -> None:
    assert render_yaml({"name": "p"}, "name: [unclosed\n") == "name: p\n"
