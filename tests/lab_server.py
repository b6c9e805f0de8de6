"""A real JupyterLab server for the browser tests, and Debian's Chromium driven by Playwright.

`LabServer.start(workspace, state)` runs `lakebook lab` (JupyterLab with the workspace's own
`jupyter_config.py`) on 127.0.0.1 with a token, and settings/workspace folders of its own under `state` (so earlier
sessions' layouts and the news prompt never get in the way). `chromium()` launches
/usr/bin/chromium headless with the flags this closed network needs; Playwright's own browser
download is never used.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LabServer:
    process: subprocess.Popen[bytes]
    port: int
    token: str
    workspace: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lab_url(self, layout: str | None = None) -> str:
        """JupyterLab's page; with `layout`, in a JupyterLab workspace of that name (a fresh one
        starts with the sidebar closed and no documents open)."""
        where = f"/lab/workspaces/{layout}" if layout else "/lab"
        return f"{self.url}{where}?token={self.token}"

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        """Call the lakebook API directly (to set up or check what the UI did)."""
        return self.request(f"lakebook/api/{path}", method, body)

    def put(self, path: str, body: Any) -> Any:
        """PUT to any server path (e.g. JupyterLab's settings API)."""
        return self.request(path, "PUT", body)

    def request(self, path: str, method: str = "GET", body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    @classmethod
    @contextmanager
    def start(
        cls, workspace: Path, state: Path, extra_args: tuple[str, ...] = ()
    ) -> Iterator[LabServer]:
        port, token = free_port(), secrets.token_hex(16)
        settings = state / "settings"
        news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        news.parent.mkdir(parents=True, exist_ok=True)
        news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = {
            **os.environ,
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        }
        log = state / "jupyterlab.log"
        command = [
            sys.executable,
            "-m",
            "lakebook.cli",
            "--workspace",
            str(workspace),
            "lab",  # JupyterLab with the workspace's jupyter_config.py, rooted at the workspace
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",
            "--LabApp.news_url=",
            *extra_args,
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=workspace, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        server = cls(process, port, token, workspace, log)
        try:
            server._wait_ready()
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited:\n{self.log.read_text()[-3000:]}")
            try:
                # Jupyter's own status: lakebook's workspace stays untouched until a page asks
                request = urllib.request.Request(
                    f"{self.url}/api/status", headers={"Authorization": f"token {self.token}"}
                )
                with urllib.request.urlopen(request, timeout=5):
                    return
            except OSError:
                time.sleep(0.25)
        raise RuntimeError(f"jupyter lab did not answer in {timeout} s:\n{self.log.read_text()}")


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright Browser on Debian's Chromium."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: install Debian's chromium (bash scripts/install-test-deps.sh)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def wait_for_lab(page: Any) -> None:
    """Wait until JupyterLab has started and restored its layout (its splash screen is gone), so
    that a click on a sidebar tab is not undone by the layout being restored after it."""
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
