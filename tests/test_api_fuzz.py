"""The REST API fuzzed from its own OpenAPI file (schemathesis): bad input never gets a bare 500.

A real JupyterLab server (`lakebook lab`) on a copy of the demo workspace; schemathesis generates
requests for every documented operation (except the two that start runs, which would start
kernels by the hundred) from the schemas in `openapi.yaml`, valid and invalid alike, and checks
that none is answered with a server error.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.lab_server import LabServer

pytestmark = pytest.mark.slow


def test_no_request_gets_a_server_error(workspace_dir: Path, tmp_path: Path) -> None:
    schemathesis = shutil.which("schemathesis") or shutil.which("st")
    if schemathesis is None:
        pytest.fail("schemathesis is missing: pip install -e '.[dev]'")
    with LabServer.start(workspace_dir, tmp_path / "lab") as lab:
        result = subprocess.run(
            [
                schemathesis,
                "run",
                f"{lab.url}/lakebook/api/openapi.yaml",
                "--url",
                lab.url,
                "--header",
                f"Authorization: token {lab.token}",
                "--checks",
                "not_a_server_error",
                "--exclude-path-regex",
                ".*/run$",
                "--max-examples",
                "25",
                "--seed",
                "20261130",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,  # schemathesis keeps its state in .schemathesis/ of the current folder
        )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
