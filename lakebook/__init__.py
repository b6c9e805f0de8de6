"""lakebook: a Jupyter-native lakehouse pipeline platform.

In a notebook: `lakebook.read("gold.daily_revenue")` and `lakebook.query("SELECT ...")` work on the
workspace that holds the current folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import pyarrow as pa

    from lakebook.workspace import Workspace

__all__ = ["Workspace", "__version__", "query", "read"]


def read(dataset: str, version: int | None = None) -> pa.Table:
    """Read a dataset (`<layer>.<name>`) of the current workspace."""
    from lakebook.workspace import Workspace

    return Workspace.open().read(dataset, version)


def query(sql: str) -> pa.Table:
    """Run DuckDB SQL over the current workspace's datasets."""
    from lakebook.workspace import Workspace

    return Workspace.open().query(sql)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The jupyter_server extension (`jpserver_extensions = {"lakebook": True}`): the REST API."""
    from lakebook.server import _jupyter_server_extension_points as points

    return points()


def __getattr__(name: str) -> Any:
    # Importing the facade pulls in papermill and SQLAlchemy; only do it when asked for.
    if name == "Workspace":
        from lakebook.workspace import Workspace

        return Workspace
    raise AttributeError(name)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the built sidebar (for `jupyter labextension develop`)."""
    return [{"src": "labextension", "dest": "@lakebook/labextension"}]
