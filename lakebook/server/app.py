"""`LakebookExtensionApp`: the jupyter_server extension serving lakebook's REST API."""

from __future__ import annotations

import threading
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Integer, Unicode

from lakebook.errors import LakebookError
from lakebook.server.handlers import ROUTES
from lakebook.server.service import LakebookService


class LakebookExtensionApp(ExtensionApp):
    """Serves `/lakebook/api/…` over the workspace at the server's root folder."""

    name = "lakebook"

    workspace = Unicode(
        "",
        help="Folder of the lakebook workspace; empty means the server's root_dir.",
    ).tag(config=True)
    max_concurrent_runs = Integer(
        2, min=1, help="How many pipeline runs started through the API execute at the same time."
    ).tag(config=True)
    warm_up = Bool(
        True,
        help="Read and check every pipeline file in the background when the server starts, so "
        "the sidebar's first list does not wait for it.",
    ).tag(config=True)

    def initialize_settings(self) -> None:
        server_root = self.serverapp.root_dir if self.serverapp is not None else "."
        root = Path(self.workspace or server_root).expanduser()
        # notebook paths in answers are relative to the folder JupyterLab's file browser shows
        self.service = LakebookService(
            root, int(self.max_concurrent_runs), contents_root=Path(server_root)
        )
        self.settings.update({"lakebook_service": self.service})
        self.log.info("lakebook: serving the workspace at %s", root)
        if self.warm_up:
            threading.Thread(target=self._warm_up, name="lakebook-warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        try:
            self.service.pipelines()
        except LakebookError as error:  # not a workspace (yet): the first request will say so
            self.log.debug("lakebook: nothing to warm up: %s", error)

    def initialize_handlers(self) -> None:
        self.handlers.extend(ROUTES)

    async def stop_extension(self) -> None:
        self.service.close()
