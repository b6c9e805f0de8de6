"""Workspace settings: traitlets on one `Lakebook` configurable.

`jupyter_config.py` in the workspace sets them (`c.Lakebook.lake_root = "lake"`), so JupyterLab's server
extension and the `lakebook` CLI read the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traitlets import Dict, Float, Integer, Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import PyFileConfigLoader

CONFIG_FILE = "jupyter_config.py"


class Lakebook(Configurable):
    """Settings of a lakebook workspace."""

    lake_root = Unicode(
        "lake",
        help="Folder of the lake (Landing, Bronze, Silver, Gold), relative to the workspace.",
    ).tag(config=True)
    metadata_url = Unicode(
        "",
        help=(
            "SQLAlchemy URL of the metadata database. Empty means a SQLite file at "
            "`.lakebook/metadata.db` in the workspace."
        ),
    ).tag(config=True)
    max_parallel_jobs = Integer(2, min=1, help="How many job notebooks run at the same time.").tag(
        config=True
    )
    runs_dir = Unicode(
        "runs",
        help="Folder of run records (`runs/<pipeline>/<run_id>/`), relative to the workspace.",
    ).tag(config=True)
    kernel_name = Unicode("python3", help="Jupyter kernel that executes job notebooks.").tag(
        config=True
    )
    executor = Unicode("local", help="Where job notebooks run: `local`.").tag(config=True)
    max_invalid_ratio = Float(
        0.1,
        min=0,
        max=1,
        help="Default share of invalid rows above which an ingest job fails (0.1 = 10%).",
    ).tag(config=True)
    duckdb_memory_limit = Unicode(
        "1GB", help="Memory DuckDB may use inside one job before it spills to disk."
    ).tag(config=True)
    lock_timeout_seconds = Float(
        600.0,
        min=0,
        help=(
            "How long a dataset job waits for another run that is writing the same dataset "
            "before it fails (0 = fail at once)."
        ),
    ).tag(config=True)
    connections = Dict(
        default_value={},
        help=(
            "Connections by name. Each is a dict of settings; secrets are never written here: "
            "name an environment variable instead, e.g. "
            "`{'warehouse': {'url_env': 'WAREHOUSE_URL'}}`."
        ),
    ).tag(config=True)


def load_config(workspace: Path) -> Config:
    """Read `jupyter_config.py` from the workspace (traitlets' Python config file)."""
    loader = PyFileConfigLoader(CONFIG_FILE, path=str(workspace))
    return loader.load_config()


def load_settings(workspace: Path, overrides: dict[str, Any] | None = None) -> Lakebook:
    """The workspace's `Lakebook` settings, with optional overrides on top."""
    config = load_config(workspace)
    settings = Lakebook(config=config)
    for name, value in (overrides or {}).items():
        setattr(settings, name, value)
    return settings


def metadata_url(settings: Lakebook, workspace: Path) -> str:
    """The metadata DB URL: the configured one, or SQLite at `.lakebook/metadata.db`."""
    if settings.metadata_url:
        return str(settings.metadata_url)
    return f"sqlite:///{workspace / '.lakebook' / 'metadata.db'}"
