"""The sidebar's TypeScript unit tests (node's test runner), run as part of the suite.

They check the pure parts of the sidebar: date formatting that never throws, and the reshaping
of the specs' JSON Schemas into forms (per source type and transform type). The browser tests in
`test_sidebar_browser.py` cover the rest in a real JupyterLab.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO

LABEXTENSION = REPO / "labextension"


def test_typescript_unit_tests_pass() -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: the sidebar needs Node.js and npm to build and test")
    if not (LABEXTENSION / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=LABEXTENSION, check=True)
    result = subprocess.run([npm, "test"], cwd=LABEXTENSION, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout
