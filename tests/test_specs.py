"""Pipeline specs: the seed's defaults, every validation rule and its message, the CLI, JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from lakebook.cli import EXIT_USER_ERROR, main
from lakebook.errors import SpecValidationError
from lakebook.specs import (
    DatasetJob,
    IngestJob,
    PipelineSpec,
    dump_pipeline,
    json_schemas,
    load_pipeline_file,
    parse_pipeline,
)
from tests.conftest import REPO, write_pipeline

SEED_INGEST_FIELDS = (
    "source_type",
    "format",
    "force_to_parquet",
    "partition_mode",
    "partition_pattern",
    "filename_pattern",
    "compression",
    "landing_retention_days",
    "schema_mode",
    "user_schema",
    "error_handling",
    "quarantine_path",
    "dedupe_keys",
    "incremental_mode",
    "watermark_column",
    "last_watermark_value",
    "rename_map",
    "is_reference",
    "config",
)


def ingest(name: str = "orders", **fields: Any) -> dict[str, Any]:
    """A valid local CSV ingest job, with `fields` on top."""
    job: dict[str, Any] = {
        "name": name,
        "source_type": "local_path",
        "config": {"file": {"path": "data/orders.csv"}},
    }
    job.update(fields)
    return job


def dataset(name: str = "clean_orders", **fields: Any) -> dict[str, Any]:
    """A valid silver SQL job reading `bronze.orders`, with `fields` on top."""
    job: dict[str, Any] = {
        "name": name,
        "layer": "silver",
        "inputs": [{"dataset": "bronze.orders"}],
        "sql_text": "SELECT * FROM orders",
    }
    job.update(fields)
    return job


def pipeline(*jobs: dict[str, Any], name: str = "shop") -> dict[str, Any]:
    """A pipeline document holding `jobs` (ingest or dataset, told apart by `layer`)."""
    return {
        "name": name,
        "ingest_jobs": [job for job in jobs if "layer" not in job],
        "dataset_jobs": [job for job in jobs if "layer" in job],
    }


def problems_of(document: Any) -> list[str]:
    """The problems `parse_pipeline` reports for `document`, as text."""
    with pytest.raises(SpecValidationError) as caught:
        parse_pipeline(document)
    return [str(problem) for problem in caught.value.problems]


def only_problem(document: Any) -> str:
    """The one problem reported for `document`."""
    problems = problems_of(document)
    assert len(problems) == 1, problems
    return problems[0]


def parsed_ingest(**fields: Any) -> IngestJob:
    return parse_pipeline(pipeline(ingest(**fields))).ingest_jobs[0]


def parsed_dataset(**fields: Any) -> DatasetJob:
    return parse_pipeline(pipeline(ingest(), dataset(**fields))).dataset_jobs[0]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# defaults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["csv", "json", "jsonl"])
def test_force_to_parquet_defaults_to_true_for_text_formats(file_format: str) -> None:
    assert parsed_ingest(format=file_format).force_to_parquet is True


def test_force_to_parquet_defaults_to_true_when_format_is_omitted() -> None:
    job = parsed_ingest()
    assert job.format == "csv"
    assert job.force_to_parquet is True


def test_force_to_parquet_defaults_to_false_for_parquet() -> None:
    assert parsed_ingest(format="parquet").force_to_parquet is False


@pytest.mark.parametrize(("file_format", "value"), [("csv", False), ("parquet", True)])
def test_force_to_parquet_given_explicitly_is_kept(file_format: str, value: bool) -> None:
    assert parsed_ingest(format=file_format, force_to_parquet=value).force_to_parquet is value


def test_ingest_defaults_follow_the_seed() -> None:
    job = parsed_ingest()
    assert job.partition_mode == "date"
    assert job.partition_pattern == "yyyy/MM/dd"
    assert job.error_handling == "fail"
    assert job.compression == "snappy"
    assert job.schema_mode == "infer"
    assert job.incremental_mode == "full"
    assert job.is_reference is False
    assert job.filename_pattern is None
    assert job.landing_retention_days is None
    assert job.user_schema is None
    assert job.quarantine_path is None
    assert job.watermark_column is None
    assert job.last_watermark_value is None
    assert job.dedupe_keys == []
    assert job.rename_map == {}
    assert job.dataset == "bronze.orders"


def test_csv_options_default() -> None:
    options = parsed_ingest().config.file
    assert options is not None
    assert (options.delimiter, options.header, options.encoding, options.quote) == (
        ",",
        True,
        "utf-8",
        '"',
    )


def test_dataset_job_and_rule_defaults() -> None:
    job = parsed_dataset(
        data_quality=[{"name": "id_set", "check_type": "not_null", "column": "id"}]
    )
    assert job.dataset_type == "fact"
    assert job.change_pattern == "full_refresh"
    assert job.transform_type == "sql"
    assert job.refresh_mode == "full_refresh"
    assert job.format == "delta"
    assert job.compression == "snappy"
    assert job.partitioning == []
    assert job.target_schema is None
    assert job.dataset == "silver.clean_orders"
    assert job.inputs[0].name == "orders"
    rule = job.data_quality[0]
    assert (rule.severity, rule.action_on_violation) == ("error", "fail")


def test_pipeline_and_schedule_defaults() -> None:
    spec = parse_pipeline({"name": "shop", "schedule": {"cron": "0 6 * * *"}})
    assert spec.schedule is not None
    assert (spec.schedule.timezone, spec.schedule.enabled) == ("UTC", True)
    assert spec.ingest_jobs == [] and spec.dataset_jobs == []
    assert spec.description == "" and spec.owner is None and spec.tags == []


def test_specs_are_frozen() -> None:
    job = parsed_ingest()
    with pytest.raises(ValidationError):
        job.format = "json"  # type: ignore[misc]
    assert job.model_copy(update={"compression": "zstd"}).compression == "zstd"


# cross-field rules ---------------------------------------------------------------------------


def test_incremental_requires_watermark_column() -> None:
    problem = only_problem(pipeline(ingest(incremental_mode="incremental")))
    assert "job `orders`" in problem
    assert "`watermark_column`" in problem
    assert "`incremental_mode`" in problem


def test_incremental_with_watermark_column_is_valid() -> None:
    job = parsed_ingest(incremental_mode="incremental", watermark_column="updated_at")
    assert job.watermark_column == "updated_at"


def test_incremental_api_source_still_needs_the_watermark_column() -> None:
    # The API parameter says how to ask for new rows; the column says how far the load got.
    problem = only_problem(
        pipeline(
            ingest(
                source_type="api",
                incremental_mode="incremental",
                config={
                    "api": {
                        "url": "https://example.org/orders",
                        "watermark": {"param_name": "since"},
                    }
                },
            )
        )
    )
    assert "`watermark_column` is required" in problem


def test_quarantine_requires_quarantine_path() -> None:
    problem = only_problem(pipeline(ingest(error_handling="quarantine")))
    assert "job `orders`" in problem
    assert "`quarantine_path`" in problem
    assert "`error_handling`" in problem


def test_user_schema_mode_requires_user_schema() -> None:
    for job in (ingest(schema_mode="user"), ingest(schema_mode="user", user_schema=[])):
        problem = only_problem(pipeline(job))
        assert "job `orders`" in problem
        assert "`user_schema`" in problem
        assert "`schema_mode`" in problem


def test_user_schema_rejects_a_column_listed_twice() -> None:
    columns = [{"name": "id", "type": "integer"}, {"name": "id", "type": "string"}]
    problem = only_problem(pipeline(ingest(schema_mode="user", user_schema=columns)))
    assert "job `orders`" in problem and "`user_schema`" in problem and "id" in problem


@pytest.mark.parametrize(
    ("source_type", "config", "field"),
    [
        ("local_path", {}, "`config.file.path`"),
        ("local_path", {"file": {"delimiter": ";"}}, "`config.file.path`"),
        ("file_upload", {}, "`config.file.path`"),
        ("s3", {"file": {"path": "x.csv"}}, "`config.file.s3_uri`"),
        ("database", {}, "`config.db`"),
        ("api", {}, "`config.api`"),
    ],
)
def test_source_type_requires_its_config_section(
    source_type: str, config: dict[str, Any], field: str
) -> None:
    problem = only_problem(pipeline(ingest(source_type=source_type, config=config)))
    assert "job `orders`" in problem
    assert field in problem
    assert f"`{source_type}`" in problem


@pytest.mark.parametrize(
    ("source_type", "config"),
    [
        ("s3", {"file": {"s3_uri": "s3://lake/orders/"}}),
        ("s3", {"file": {"bucket": "lake", "prefix": "orders/"}}),
        ("database", {"db": {"connection_id": "erp", "table_name": "orders"}}),
        ("database", {"db": {"connection_id": "erp", "query": "SELECT 1"}}),
        ("api", {"api": {"url": "https://example.org/orders"}}),
    ],
)
def test_other_source_types_are_accepted_with_their_config(
    source_type: str, config: dict[str, Any]
) -> None:
    assert parsed_ingest(source_type=source_type, config=config).source_type == source_type


@pytest.mark.parametrize(
    "db",
    [{"connection_id": "erp"}, {"connection_id": "erp", "table_name": "o", "query": "SELECT 1"}],
)
def test_database_config_needs_exactly_one_of_table_or_query(db: dict[str, str]) -> None:
    problem = only_problem(pipeline(ingest(source_type="database", config={"db": db})))
    assert "job `orders`, field `config.db`" in problem
    assert "`table_name`" in problem and "`query`" in problem


# field-level rules ---------------------------------------------------------------------------


def test_unknown_field_is_rejected_naming_job_and_field() -> None:
    problem = only_problem(pipeline(ingest(partition_modes="date")))
    assert problem.startswith("job `orders`, field `partition_modes`")
    assert "unknown field" in problem


def test_unknown_nested_field_is_rejected_with_its_path() -> None:
    problem = only_problem(pipeline(ingest(config={"file": {"path": "a.csv", "delim": ";"}})))
    assert problem.startswith("job `orders`, field `config.file.delim`")
    assert "unknown field" in problem


def test_unknown_top_level_field_is_rejected() -> None:
    problem = only_problem({"name": "shop", "jobs": []})
    assert problem.startswith("field `jobs`")
    assert "unknown field" in problem


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("source_type", "ftp", ["file_upload", "local_path", "s3", "database", "api"]),
        ("format", "xml", ["csv", "json", "jsonl", "parquet"]),
        ("compression", "lz4", ["snappy", "zstd", "gzip", "none"]),
        ("partition_mode", "hourly", ["date", "none"]),
        ("partition_pattern", "dd/MM/yyyy", ["yyyy/MM/dd", "yyyy/MM", "yyyy"]),
        ("schema_mode", "strict", ["infer", "user"]),
        ("error_handling", "skip", ["fail", "quarantine"]),
        ("incremental_mode", "cdc", ["full", "incremental"]),
    ],
)
def test_bad_enum_value_lists_the_accepted_values(
    field: str, value: str, accepted: list[str]
) -> None:
    problem = only_problem(pipeline(ingest(**{field: value})))
    assert problem.startswith(f"job `orders`, field `{field}`")
    for option in accepted:
        assert f"'{option}'" in problem


def test_bad_dataset_enum_value_lists_the_accepted_values() -> None:
    problem = only_problem(pipeline(ingest(), dataset(refresh_mode="merge")))
    assert problem.startswith("job `clean_orders`, field `refresh_mode`")
    assert "'full_refresh'" in problem and "'append'" in problem


def test_missing_required_field_is_named() -> None:
    job = ingest()
    del job["source_type"]
    problem = only_problem(pipeline(job))
    assert problem == "job `orders`, field `source_type`: this field is required"


def test_job_without_a_name_is_located_by_position() -> None:
    job = ingest()
    del job["name"]
    assert only_problem(pipeline(job)) == "ingest_jobs[0], field `name`: this field is required"


@pytest.mark.parametrize("name", ["Orders", "1orders", "orders-daily", ""])
def test_job_name_must_be_a_lowercase_identifier(name: str) -> None:
    problem = only_problem(pipeline(ingest(name=name)))
    assert "field `name`" in problem


def test_duplicate_job_names_are_rejected() -> None:
    problem = only_problem(pipeline(ingest("orders"), ingest("orders")))
    assert problem.startswith("job `orders`")
    assert "unique" in problem


def test_a_dataset_job_may_not_reuse_an_ingest_job_name() -> None:
    problem = only_problem(pipeline(ingest("orders"), dataset("orders")))
    assert problem.startswith("job `orders`")


def test_non_mapping_document_is_rejected() -> None:
    assert only_problem(None) == "expected a mapping of pipeline fields"
    assert only_problem(["name", "shop"]) == "expected a mapping of pipeline fields"


# dataset jobs and data-quality rules ---------------------------------------------------------


def test_sql_that_does_not_parse_gives_line_and_column() -> None:
    sql = "SELECT id\nFROM orders\nWHERE (amount > 0"
    problem = only_problem(pipeline(ingest(), dataset(sql_text=sql)))
    assert problem.startswith("job `clean_orders`, field `sql_text`")
    assert "line 3, column" in problem


def test_sql_must_be_one_statement() -> None:
    problem = only_problem(pipeline(ingest(), dataset(sql_text="SELECT 1; SELECT 2")))
    assert problem.startswith("job `clean_orders`, field `sql_text`")
    assert "one SELECT statement, found 2" in problem


@pytest.mark.parametrize("sql", ["DROP TABLE orders", "SELEC id"])
def test_sql_must_be_a_query(sql: str) -> None:
    problem = only_problem(pipeline(ingest(), dataset(sql_text=sql)))
    assert "field `sql_text`" in problem


def test_dataset_job_needs_at_least_one_input() -> None:
    problem = only_problem(pipeline(dataset(inputs=[])))
    assert problem.startswith("job `clean_orders`, field `inputs`")


def test_input_must_be_a_dataset_address() -> None:
    problem = only_problem(pipeline(dataset(inputs=[{"dataset": "orders"}])))
    assert problem.startswith("job `clean_orders`, field `inputs.0.dataset`")


def test_inputs_with_the_same_name_need_aliases() -> None:
    inputs = [{"dataset": "bronze.orders"}, {"dataset": "silver.orders"}]
    problem = only_problem(pipeline(ingest(), dataset(inputs=inputs)))
    assert "job `clean_orders`" in problem and "`inputs`" in problem and "aliases" in problem
    inputs[1]["alias"] = "silver_orders"
    assert parsed_dataset(inputs=inputs).inputs[1].name == "silver_orders"


@pytest.mark.parametrize(
    ("layer", "dataset_type"), [("silver", "metric_table"), ("gold", "dimension")]
)
def test_dataset_type_must_belong_to_the_layer(layer: str, dataset_type: str) -> None:
    problem = only_problem(pipeline(ingest(), dataset(layer=layer, dataset_type=dataset_type)))
    assert "job `clean_orders`" in problem
    assert f"`dataset_type` `{dataset_type}` is not a {layer} type" in problem


def test_dataset_format_is_delta_only() -> None:
    problem = only_problem(pipeline(ingest(), dataset(format="parquet")))
    assert problem.startswith("job `clean_orders`, field `format`")
    assert "'delta'" in problem


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"check_type": "not_null"}, "`column` is required for `not_null`"),
        ({"check_type": "accepted_values", "values": ["a"]}, "`column` is required"),
        ({"check_type": "accepted_values", "column": "status"}, "`values`"),
        ({"check_type": "range", "column": "amount"}, "`min`, `max` or both"),
        ({"check_type": "unique"}, "`column` or `columns`"),
        ({"check_type": "row_count"}, "`min`, `max` or both"),
        ({"check_type": "row_count", "min": 1, "action_on_violation": "drop"}, "cannot `drop`"),
        ({"check_type": "not_null", "column": "id", "severity": "fatal"}, "'critical'"),
        ({"check_type": "not_null", "column": "id", "action_on_violation": "fix"}, "'drop'"),
    ],
)
def test_dq_rule_problems_name_job_and_rule(rule: dict[str, Any], expected: str) -> None:
    rule = {"name": "amount_ok", **rule}
    problem = only_problem(pipeline(ingest(), dataset(data_quality=[rule])))
    assert problem.startswith("job `clean_orders`, field `data_quality.0")
    assert expected in problem


def test_unique_rule_accepts_several_columns() -> None:
    rule = {"name": "key_unique", "check_type": "unique", "columns": ["id", "day"]}
    assert parsed_dataset(data_quality=[rule]).data_quality[0].key_columns == ["id", "day"]


# every problem at once -----------------------------------------------------------------------


def test_all_problems_of_a_file_are_listed_at_once() -> None:
    document = pipeline(
        ingest("a", incremental_mode="incremental"),
        ingest("b", error_handling="quarantine"),
        ingest("c", format="xml"),
        ingest("d", colour="blue"),
        dataset("e", sql_text="SELECT (1"),
        dataset("f", layer="bronze"),
    )
    with pytest.raises(SpecValidationError) as caught:
        parse_pipeline(document, "pipelines/shop/pipeline.yaml")
    error = caught.value
    locations = [problem.location for problem in error.problems]
    assert locations == [
        "job `a`",
        "job `b`",
        "job `c`, field `format`",
        "job `d`, field `colour`",
        "job `e`, field `sql_text`",
        "job `f`, field `layer`",
    ]
    message = str(error)
    assert message.startswith("pipelines/shop/pipeline.yaml has 6 problems:")
    for location in locations:
        assert f"  - {location}: " in message


def test_several_rules_broken_by_one_job_are_all_reported() -> None:
    problems = problems_of(
        pipeline(
            ingest(incremental_mode="incremental", error_handling="quarantine", schema_mode="user")
        )
    )
    text = " ".join(problems)
    for field in ("`watermark_column`", "`quarantine_path`", "`user_schema`"):
        assert field in text


def test_problems_are_json_friendly() -> None:
    with pytest.raises(SpecValidationError) as caught:
        parse_pipeline(pipeline(ingest(format="xml")))
    (problem,) = caught.value.problems
    assert problem.as_dict()["location"] == "job `orders`, field `format`"


# pipeline files ------------------------------------------------------------------------------


def test_demo_pipeline_loads() -> None:
    spec = load_pipeline_file(REPO / "pipelines" / "jaffle_shop" / "pipeline.yaml")
    assert spec.name == "jaffle_shop"
    assert [job.name for job in spec.jobs] == [
        "raw_customers",
        "raw_orders",
        "raw_payments",
        "orders",
        "customers",
        "dim_customers",
        "monthly_revenue",
        "daily_revenue",
    ]
    assert spec.job("raw_customers").is_reference is True  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        spec.job("nope")


def test_pipeline_name_must_match_its_folder(empty_workspace: Path) -> None:
    folder = write_pipeline(empty_workspace, "shop", "name: store\n")
    with pytest.raises(SpecValidationError) as caught:
        load_pipeline_file(folder / "pipeline.yaml")
    (problem,) = caught.value.problems
    assert problem.location == "field `name`"
    assert "`store`" in problem.message and "`shop`" in problem.message


def test_invalid_yaml_reports_the_line(empty_workspace: Path) -> None:
    text = "name: shop\ningest_jobs:\n  - name: orders\n    source_type: [local_path\n"
    folder = write_pipeline(empty_workspace, "shop", text)
    with pytest.raises(SpecValidationError) as caught:
        load_pipeline_file(folder / "pipeline.yaml")
    (problem,) = caught.value.problems
    assert problem.location.startswith("line 5, column")
    assert "not valid YAML" in problem.message
    assert "line 4" in problem.message
    assert caught.value.source == str(folder / "pipeline.yaml")


def test_bad_indentation_reports_its_line(empty_workspace: Path) -> None:
    folder = write_pipeline(empty_workspace, "shop", "name: shop\n  description: x\n")
    with pytest.raises(SpecValidationError) as caught:
        load_pipeline_file(folder / "pipeline.yaml")
    assert caught.value.problems[0].location == "line 2, column 14"


def test_empty_pipeline_file_is_rejected(empty_workspace: Path) -> None:
    folder = write_pipeline(empty_workspace, "shop", "# nothing yet\n")
    with pytest.raises(SpecValidationError) as caught:
        load_pipeline_file(folder / "pipeline.yaml")
    assert str(caught.value.problems[0]) == "expected a mapping of pipeline fields"


def test_dump_pipeline_round_trips_the_demo() -> None:
    spec = load_pipeline_file(REPO / "pipelines" / "jaffle_shop" / "pipeline.yaml")
    text = dump_pipeline(spec)
    assert "force_to_parquet" not in text  # defaults are left out
    assert parse_pipeline(yaml.safe_load(text)) == spec


def test_dump_pipeline_keeps_force_to_parquet_on_a_parquet_job() -> None:
    spec = parse_pipeline(pipeline(ingest(format="parquet", force_to_parquet=True)))
    assert parse_pipeline(yaml.safe_load(dump_pipeline(spec))) == spec


# the CLI -------------------------------------------------------------------------------------


def test_validate_passes_on_the_demo(workspace_dir: Path) -> None:
    result = invoke("--workspace", str(workspace_dir), "validate")
    assert result.exit_code == 0, result.output
    assert "jaffle_shop" in result.output


def test_validate_a_named_pipeline(workspace_dir: Path) -> None:
    result = invoke("--workspace", str(workspace_dir), "validate", "jaffle_shop")
    assert result.exit_code == 0, result.output


def test_validate_reports_job_and_field_and_exits_2(workspace_dir: Path) -> None:
    document = pipeline(
        ingest("orders", incremental_mode="incremental"), ingest("items", format="xml")
    )
    write_pipeline(workspace_dir, "shop", yaml.safe_dump({**document, "name": "shop"}))
    result = invoke("--workspace", str(workspace_dir), "validate")
    assert result.exit_code == EXIT_USER_ERROR
    output = result.output
    assert "jaffle_shop" in output  # the good pipeline is still listed
    assert "shop" in output and "pipeline.yaml" in output
    assert "job `orders`: `watermark_column` is required" in output
    assert "job `items`, field `format`:" in output


def test_validate_reports_invalid_yaml(workspace_dir: Path) -> None:
    write_pipeline(workspace_dir, "shop", "name: shop\n  description: x\n")
    result = invoke("--workspace", str(workspace_dir), "validate", "shop")
    assert result.exit_code == EXIT_USER_ERROR
    assert "line 2, column 14: not valid YAML" in result.output


def test_validate_unknown_pipeline_names_the_known_ones(workspace_dir: Path) -> None:
    result = invoke("--workspace", str(workspace_dir), "validate", "nope")
    assert result.exit_code == EXIT_USER_ERROR
    assert "No pipeline `nope`" in result.output and "`jaffle_shop`" in result.output


def test_validate_without_pipelines_is_a_user_error(empty_workspace: Path) -> None:
    result = CliRunner().invoke(main, ["--workspace", str(empty_workspace), "validate"])
    assert result.exit_code == EXIT_USER_ERROR
    assert "No pipelines" in result.output


# JSON Schemas --------------------------------------------------------------------------------


def test_json_schema_holds_every_seed_ingest_field() -> None:
    schemas = json_schemas()
    assert set(schemas) == {"pipeline", "ingest_job", "dataset_job"}
    properties = schemas["ingest_job"]["properties"]
    for field in SEED_INGEST_FIELDS:
        assert field in properties, field
    assert properties["compression"]["default"] == "snappy"
    assert properties["partition_pattern"]["default"] == "yyyy/MM/dd"
    assert properties["error_handling"]["default"] == "fail"
    config = schemas["ingest_job"]["$defs"]["IngestConfig"]["properties"]
    assert set(config) == {"file", "db", "api"}


def test_json_schema_holds_every_dataset_job_field() -> None:
    properties = json_schemas()["dataset_job"]["properties"]
    assert set(properties) == set(DatasetJob.model_fields)
    for field in ("layer", "inputs", "sql_text", "target_schema", "refresh_mode", "data_quality"):
        assert field in properties
    assert set(json_schemas()["pipeline"]["properties"]) == set(PipelineSpec.model_fields)


def test_json_schema_forbids_unknown_fields() -> None:
    assert json_schemas()["ingest_job"]["additionalProperties"] is False


def test_schema_command_writes_one_file_per_spec(tmp_path: Path) -> None:
    target = tmp_path / "schemas"
    result = invoke("schema", "-o", str(target))
    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in target.iterdir())
    assert written == ["dataset_job.schema.json", "ingest_job.schema.json", "pipeline.schema.json"]
    for name, document in json_schemas().items():
        assert json.loads((target / f"{name}.schema.json").read_text()) == document


def test_schema_command_prints_json_without_output() -> None:
    result = invoke("schema")
    assert result.exit_code == 0
    assert json.loads(result.output) == json_schemas()


def test_committed_schemas_are_up_to_date() -> None:
    folder = REPO / "docs" / "schemas"
    for name, document in json_schemas().items():
        committed = json.loads((folder / f"{name}.schema.json").read_text())
        assert committed == document, f"run `lakebook schema -o docs/schemas` ({name} changed)"
