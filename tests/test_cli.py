"""The `lakebook` command as a user types it: init, validate, run, runs, show, query."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lakebook.cli import main
from tests.conftest import write_pipeline

SMALL = """
name: small
ingest_jobs:
  - name: people
    source_type: local_path
    format: csv
    dedupe_keys: [id]
    config: {file: {path: data/people.csv}}
dataset_jobs:
  - name: adults
    layer: silver
    inputs: [{dataset: bronze.people, alias: p}]
    sql_text: SELECT id, name, age FROM p WHERE age >= 18
"""


def lakebook(workspace: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--workspace", str(workspace), *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A workspace made with `lakebook init`, one small pipeline, run once with `--json`."""
    root = tmp_path_factory.mktemp("cli") / "ws"
    result = CliRunner().invoke(main, ["init", str(root)])
    assert result.exit_code == 0, result.output
    folder = write_pipeline(root, "small", SMALL)
    (folder / "data").mkdir()
    (folder / "data" / "people.csv").write_text(
        "id,name,age\n1,Ann,34\n2,Bob,12\n3,Cy,18\n1,Ann,34\n"
    )
    ran = lakebook(root, "run", "small", "--json")
    assert ran.exit_code == 0, ran.output
    return root, json.loads(ran.stdout)


def test_init_scaffolds_a_workspace(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path / "new")])
    assert result.exit_code == 0
    for name in ("jupyter_config.py", "pipelines", "lake"):
        assert (tmp_path / "new" / name).exists()
    assert "c.Lakebook.lake_root" in (tmp_path / "new" / "jupyter_config.py").read_text()
    again = CliRunner().invoke(main, ["init", str(tmp_path / "new")])
    assert again.exit_code == 2 and "already a workspace" in again.output


@pytest.mark.slow
def test_run_json_reports_per_job_accounting(small_run: tuple[Path, dict[str, object]]) -> None:
    _, summary = small_run
    assert summary["status"] == "succeeded" and summary["run_id"]
    jobs = {job["job"]: job for job in summary["jobs"]}  # type: ignore[attr-defined]
    assert jobs["people"]["rows_read"] == 4
    assert jobs["people"]["rows_written"] == 3
    assert jobs["people"]["deduplicated_rows"] == 1
    assert jobs["people"]["quarantined_rows"] == 0
    assert jobs["adults"]["rows_written"] == 2
    assert all(Path(job["record"]).is_file() for job in jobs.values())


@pytest.mark.slow
def test_runs_and_show_display_the_run(small_run: tuple[Path, dict[str, object]]) -> None:
    root, summary = small_run
    listed = lakebook(root, "runs")
    assert listed.exit_code == 0 and str(summary["run_id"]) in listed.output
    shown = lakebook(root, "show", str(summary["run_id"])[:18])
    assert shown.exit_code == 0
    assert "people" in shown.output and "succeeded" in shown.output
    as_json = json.loads(lakebook(root, "show", str(summary["run_id"]), "--json").stdout)
    people = next(job for job in as_json["jobs"] if job["job"] == "people")
    assert (people["rows_read"], people["rows_written"], people["deduplicated_rows"]) == (4, 3, 1)


@pytest.mark.slow
@pytest.mark.parametrize("output_format", ["table", "csv", "json"])
def test_query_addresses_datasets_by_layer(
    small_run: tuple[Path, dict[str, object]], output_format: str
) -> None:
    root, _ = small_run
    result = lakebook(
        root, "query", "SELECT name FROM silver.adults ORDER BY name", "--format", output_format
    )
    assert result.exit_code == 0, result.output
    if output_format == "json":
        assert json.loads(result.stdout) == [{"name": "Ann"}, {"name": "Cy"}]
    elif output_format == "csv":
        assert list(csv.reader(io.StringIO(result.stdout))) == [["name"], ["Ann"], ["Cy"]]
    else:
        assert "Ann" in result.output and "Cy" in result.output and "Bob" not in result.output


@pytest.mark.slow
def test_query_cannot_read_files_outside_the_lake(
    small_run: tuple[Path, dict[str, object]],
) -> None:
    root, _ = small_run
    result = lakebook(root, "query", "SELECT * FROM read_csv('/etc/passwd')")
    assert result.exit_code == 2
    assert "disabled by configuration" in result.output or "Permission" in result.output
    unknown = lakebook(root, "query", "SELECT * FROM gold.nothing")
    assert unknown.exit_code == 2 and "`bronze.people`" in unknown.output


def test_unknown_pipeline_and_run_are_user_errors(empty_workspace: Path) -> None:
    result = lakebook(empty_workspace, "run", "nope")
    assert result.exit_code == 2 and "No pipeline `nope`" in result.output
    shown = lakebook(empty_workspace, "show", "nope")
    assert shown.exit_code == 2 and "No run `nope`" in shown.output


def test_commands_outside_a_workspace_say_how_to_make_one(tmp_path: Path) -> None:
    result = lakebook(tmp_path, "runs")
    assert result.exit_code == 2 and "lakebook init" in result.output


def test_run_refuses_a_pipeline_with_a_cycle(empty_workspace: Path) -> None:
    write_pipeline(
        empty_workspace,
        "loop",
        """
name: loop
dataset_jobs:
  - {name: a, layer: silver, inputs: [{dataset: silver.b}], sql_text: SELECT * FROM b}
  - {name: b, layer: silver, inputs: [{dataset: silver.a}], sql_text: SELECT * FROM a}
""",
    )
    result = lakebook(empty_workspace, "run", "loop")
    assert result.exit_code == 2
    assert "cycle" in result.output and "`a`" in result.output and "`b`" in result.output
    assert not (empty_workspace / "runs").exists()


@pytest.mark.slow
def test_dq_failure_exits_3_and_keeps_previous_version(empty_workspace: Path) -> None:
    folder = write_pipeline(
        empty_workspace,
        "guarded",
        """
name: guarded
ingest_jobs:
  - {name: amounts, source_type: local_path, format: csv, config: {file: {path: data/a.csv}}}
dataset_jobs:
  - name: checked
    layer: silver
    inputs: [{dataset: bronze.amounts}]
    sql_text: SELECT * FROM amounts
    data_quality:
      - {name: positive, check_type: range, column: amount, min: 0, severity: critical}
""",
    )
    (folder / "data").mkdir()
    (folder / "data" / "a.csv").write_text("id,amount\n1,5\n")
    assert lakebook(empty_workspace, "run", "guarded").exit_code == 0
    (folder / "data" / "a.csv").write_text("id,amount\n1,5\n2,-3\n")
    failed = lakebook(empty_workspace, "run", "guarded")
    assert failed.exit_code == 3
    assert "rule `positive`" in failed.output
    rows = json.loads(
        lakebook(
            empty_workspace, "query", "SELECT id, amount FROM silver.checked", "--format", "json"
        ).stdout
    )
    assert rows == [{"id": 1, "amount": 5}]


FOLDER_PIPELINE = """
name: events
ingest_jobs:
  - name: events
    source_type: local_path
    format: csv
    incremental_mode: incremental
    watermark_column: seq
    config: {file: {path: inbox}}
"""


@pytest.mark.slow
def test_folder_source_loads_new_files_only_and_rewind_rereads(empty_workspace: Path) -> None:
    inbox = write_pipeline(empty_workspace, "events", FOLDER_PIPELINE) / "inbox"
    inbox.mkdir()
    (inbox / "part1.csv").write_text("seq,what\n1,a\n2,b\n")
    first = json.loads(lakebook(empty_workspace, "run", "events", "--json").stdout)
    (inbox / "part2.csv").write_text("seq,what\n3,c\n4,d\n")
    second = json.loads(lakebook(empty_workspace, "run", "events", "--json").stdout)
    assert (second["jobs"][0]["rows_read"], second["jobs"][0]["rows_written"]) == (2, 2)
    third = json.loads(lakebook(empty_workspace, "run", "events", "--json").stdout)
    assert third["status"] == "succeeded" and third["jobs"][0]["rows_read"] == 0

    shown = lakebook(empty_workspace, "watermark", "show", "events")
    assert shown.exit_code == 0 and str(first["run_id"]) in shown.output
    rewound = lakebook(
        empty_workspace, "watermark", "rewind", "events", "--to-run", first["run_id"]
    )
    assert rewound.exit_code == 0, rewound.output
    assert "from 4 to 2" in rewound.output

    again = json.loads(lakebook(empty_workspace, "run", "events", "--json").stdout)
    job = again["jobs"][0]
    # part2 is read again from seq >= 2 ... but only rows not in Bronze are written.
    assert (job["rows_read"], job["rows_written"], job["deduplicated_rows"]) == (2, 0, 2)
    count = json.loads(
        lakebook(
            empty_workspace, "query", "SELECT count(*) AS n FROM bronze.events", "--format", "json"
        ).stdout
    )
    assert count == [{"n": 4}]
    details = json.loads(lakebook(empty_workspace, "show", again["run_id"], "--json").stdout)
    assert details["jobs"][0]["watermark_before"] == "2"
    assert details["jobs"][0]["watermark_after"] == "4"


def test_rewind_errors_name_the_job_and_runs(empty_workspace: Path) -> None:
    write_pipeline(empty_workspace, "events", FOLDER_PIPELINE)
    unknown = lakebook(empty_workspace, "watermark", "rewind", "nope", "--to-run", "x")
    assert unknown.exit_code == 2 and "`nope`" in unknown.output
    no_history = lakebook(empty_workspace, "watermark", "rewind", "events", "--to-run", "x")
    assert no_history.exit_code == 2 and "no watermark history" in no_history.output
