"""Parsed pipeline files are reused until the file changes (the sidebar lists them on every poll)."""

from __future__ import annotations

from pathlib import Path

from lakebook.workspace import Workspace


def test_a_pipeline_is_parsed_again_only_when_its_file_changes(workspace_dir: Path) -> None:
    workspace = Workspace.open(workspace_dir)
    first = workspace.pipeline("jaffle_shop")
    assert workspace.pipeline("jaffle_shop") is first
    path = workspace.pipeline_file("jaffle_shop")
    text = path.read_text()
    path.write_text(text.replace("owner: data-team", "owner: analytics"))
    second = workspace.pipeline("jaffle_shop")
    assert second is not first and second.owner == "analytics"
    # a save through the workspace is seen at once as well
    workspace.update_pipeline(
        "jaffle_shop", {**second.model_dump(exclude_defaults=True), "owner": "x"}
    )
    assert workspace.pipeline("jaffle_shop").owner == "x"
