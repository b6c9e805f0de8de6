"""Shared fixtures: workspaces copied from the repository's example pipelines, a real PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.postgres_server import PostgresServer, require_binaries

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PIPELINES = REPO / "pipelines"
JAFFLE_DATA = EXAMPLE_PIPELINES / "jaffle_shop" / "data"


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    """A fresh workspace in tmp_path holding a copy of the repository's example pipelines."""
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(REPO / "jupyter_config.py", root / "jupyter_config.py")
    shutil.copytree(EXAMPLE_PIPELINES, root / "pipelines")
    return root


@pytest.fixture
def empty_workspace(tmp_path: Path) -> Path:
    """A workspace made by `Workspace.init`, with no pipelines."""
    from lakebook.workspace import Workspace

    return Workspace.init(tmp_path / "empty").root


def write_pipeline(root: Path, name: str, text: str) -> Path:
    """Write `pipelines/<name>/pipeline.yaml` in a workspace and return its folder."""
    folder = root / "pipelines" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session."""
    require_binaries()
    with PostgresServer.start(tmp_path_factory.mktemp("pg")) as server:
        yield server


_database_counter = iter(range(10_000))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A metadata DB URL: a SQLite file, and (second run) a fresh database on real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"lakebook_test_{next(_database_counter)}")


@pytest.fixture(autouse=True)
def every_ingest_accounts_for_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """On every ingest a test runs in this process: rows_read = written + quarantined + deduplicated.

    (Ingests inside job kernels are checked by the loader itself before it commits.)
    """
    import lakebook.ingest

    original = lakebook.ingest.ingest

    def checked_ingest(*args: object, **kwargs: object) -> object:
        result, sample = original(*args, **kwargs)  # type: ignore[arg-type]
        assert result.rows_read == (
            result.rows_written + result.quarantined_rows + result.deduplicated_rows
        ), result
        return result, sample

    monkeypatch.setattr(lakebook.ingest, "ingest", checked_ingest)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item (browser tests screenshot a failed test)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
