"""`lakebook run PIPELINE --job JOB`: one job alone, and a job's ejected notebook."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill
import pytest

from lakebook.workspace import Workspace
from tests.conftest import write_pipeline
from tests.test_cli import SMALL, lakebook

MARKER = "LAKEBOOK-EJECTED-COPY-RAN"


@pytest.fixture
def small(empty_workspace: Path) -> Path:
    """A workspace with the `small` pipeline (people -> adults) that never ran."""
    folder = write_pipeline(empty_workspace, "small", SMALL)
    (folder / "data").mkdir()
    (folder / "data" / "people.csv").write_text(
        "id,name,age\n1,Ann,34\n2,Bob,12\n3,Cy,18\n1,Ann,34\n"
    )
    return empty_workspace


def test_job_errors_are_user_errors(small: Path) -> None:
    missing = lakebook(small, "run", "small", "--job", "adults")
    assert missing.exit_code == 2
    assert "`bronze.people`, which is not in the lake yet" in missing.stderr
    assert "lakebook run small" in missing.stderr
    unknown = lakebook(small, "run", "small", "--job", "nope")
    assert unknown.exit_code == 2
    assert "no job `nope`" in unknown.stderr and "`adults`" in unknown.stderr


@pytest.mark.slow
def test_run_one_job_then_the_next(small: Path) -> None:
    ingest = lakebook(small, "run", "small", "--job", "people", "--json")
    assert ingest.exit_code == 0, ingest.output
    [job] = json.loads(ingest.stdout)["jobs"]
    assert (job["job"], job["status"], job["rows_written"]) == ("people", "succeeded", 3)

    ran = lakebook(small, "run", "small", "--job", "adults", "--json")
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.stdout)
    [job] = summary["jobs"]
    assert (job["job"], job["status"], job["rows_read"], job["rows_written"]) == (
        "adults",
        "succeeded",
        3,
        2,
    )
    _, job_runs = Workspace.open(small).show(summary["run_id"])
    assert [row.job for row in job_runs] == ["adults"]


@pytest.mark.slow
def test_run_uses_the_ejected_notebook(small: Path) -> None:
    workspace = Workspace.open(small)
    path, created = workspace.eject_notebook("small", "ingest_jobs", "people")
    assert created and path == small / "pipelines" / "small" / "notebooks" / "people.ipynb"
    assert workspace.eject_notebook("small", "ingest_jobs", "people") == (path, False)

    notebook = nbformat.read(path, as_version=4)
    [parameters] = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert "pipeline: str = 'small'" in parameters.source
    assert "workspace: str = '../../..'" in parameters.source
    assert '"name": "people"' in parameters.source  # the job's spec
    notebook.cells.insert(1, nbformat.v4.new_code_cell(f"print({MARKER!r})"))
    nbformat.write(notebook, path)

    ran = lakebook(small, "run", "small", "--job", "people", "--json")
    assert ran.exit_code == 0, ran.output
    [job] = json.loads(ran.stdout)["jobs"]
    assert MARKER in Path(job["record"]).read_text(encoding="utf-8")

    # opened in JupyterLab, the copy runs as it is: its kernel starts in the notebook's folder
    papermill.execute_notebook(
        str(path), str(small / "interactive.ipynb"), cwd=str(path.parent), progress_bar=False
    )
    assert MARKER in (small / "interactive.ipynb").read_text(encoding="utf-8")
