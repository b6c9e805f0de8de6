"""The built wheel carries what an installed lakebook needs: templates, migrations, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import papermill
import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    return next(out.glob("lakebook-*.whl"))


def test_wheel_ships_templates_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("ingest.ipynb", "sql_dataset.ipynb", "pipeline_run.ipynb"):
        assert f"lakebook/templates/{template}" in names
    assert "lakebook/metadata/migrations/env.py" in names
    assert "lakebook/metadata/migrations/versions/0001_initial.py" in names
    assert "lakebook/server/openapi.yaml" in names
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "lakebook = lakebook.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_wheel_auto_enables_the_server_extension(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    config = next(
        name
        for name in archive.namelist()
        if name.endswith("data/etc/jupyter/jupyter_server_config.d/lakebook.json")
    )
    assert json.loads(archive.read(config)) == {
        "ServerApp": {"jpserver_extensions": {"lakebook": True}}
    }


def test_wheel_ships_the_built_sidebar(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shared = "lakebook-0.1.0.data/data/share/jupyter/labextensions/@lakebook/labextension"
    assert f"{shared}/package.json" in names
    assert f"{shared}/install.json" in names
    assert any(name.startswith(f"{shared}/static/remoteEntry.") for name in names)
    assert f"{shared}/schemas/@lakebook/labextension/plugin.json" in names  # its settings
    built = json.loads(zipfile.ZipFile(wheel).read(f"{shared}/package.json"))
    assert built["name"] == "@lakebook/labextension"
    assert built["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")


def jupyter(*args: str) -> str:
    """What a `jupyter` subcommand prints, without its colours."""
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", *args], capture_output=True, text=True, check=True
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


def test_installed_extensions_are_enabled_and_ok() -> None:
    """`pip install` of the project leaves both extensions enabled and loadable."""
    lab = jupyter("labextension", "list")
    assert re.search(r"@lakebook/labextension v[0-9.]+ enabled OK", lab), lab
    server = jupyter("server", "extension", "list")
    assert re.search(r"lakebook enabled", server), server
    assert re.search(r"lakebook [0-9.]+ OK", server), server


@pytest.mark.parametrize("template", sorted(p.name for p in (REPO / "templates").glob("*.ipynb")))
def test_each_template_has_one_introspectable_parameters_cell(template: str) -> None:
    import nbformat

    notebook = nbformat.read(REPO / "templates" / template, as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    parameters = papermill.inspect_notebook(str(REPO / "templates" / template))
    assert parameters and all(item["help"] for item in parameters.values())
    assert all(item["inferred_type_name"] == "str" for item in parameters.values())
