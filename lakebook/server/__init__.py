"""The jupyter_server extension: lakebook's REST API under `/lakebook/api/`."""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from lakebook.server.app import LakebookExtensionApp

    return [{"module": "lakebook.server", "app": LakebookExtensionApp}]
