"""First paint of the Lakebook sidebar in a real JupyterLab, against the 500 ms budget, in one run.

For each size N (default 1, 10, 50, 200) the script builds a workspace holding N copies of the
jaffle-shop demo pipeline (3 ingest jobs, 5 dataset jobs and their DQ rules each: a realistic
pipeline file, parsed and validated by the server for the list), starts `lakebook lab` on
127.0.0.1 and opens JupyterLab in Debian's headless Chromium (Playwright), fresh page each time.

Measured in the page, per load (the first load after the server starts is reported apart as
"cold": it may pay for imports, the first metadata DB open and parsing every pipeline file, which
the server then keeps until a file changes; by default the server reads them in the background as
it starts, `--no-warm-up` turns that off to show the worst case):

* first paint: from the panel being shown (`lakebook:panel-shown` mark, set in `onAfterShow`) to
  the list of N pipelines rendered (`lakebook:pipelines-painted`, set in the list's effect);
* the API alone: one `fetch('/lakebook/api/pipelines')` round trip from the same page right
  after, i.e. the server's share of the paint (read, validate, last runs of N pipelines).

The figure is first paint / budget (500 ms, the issue's target at N = 50), side by side with the
API share. Medians of `--repeat` loads (default 5).

Usage::

    python bench/sidebar_first_paint.py [--sizes 1,10,50,200] [--repeat 5] [--no-warm-up]
                                        [--output PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lakebook.workspace import Workspace  # noqa: E402
from tests.lab_server import LabServer, chromium, wait_for_lab  # noqa: E402

DEFAULT_OUTPUT = REPO / "bench" / "results" / "sidebar_first_paint.json"
BUDGET_MS = 500.0

MEASURE = """async () => {
  const shown = performance.getEntriesByName('lakebook:panel-shown')[0];
  const painted = performance.getEntriesByName('lakebook:pipelines-painted')[0];
  const settings = JSON.parse(document.getElementById('jupyter-config-data').textContent);
  const started = performance.now();
  const response = await fetch(settings.baseUrl + 'lakebook/api/pipelines', {
    headers: { Authorization: 'token ' + settings.token }
  });
  await response.json();
  return { paint: painted.startTime - shown.startTime, api: performance.now() - started };
}"""


def build_workspace(root: Path, size: int) -> None:
    Workspace.init(root)
    template = REPO / "pipelines" / "jaffle_shop"
    for index in range(size):
        name = f"shop_{index:03d}"
        folder = root / "pipelines" / name
        shutil.copytree(template, folder)
        text = (folder / "pipeline.yaml").read_text()
        (folder / "pipeline.yaml").write_text(text.replace("name: jaffle_shop", f"name: {name}", 1))


def load_once(browser: Any, lab: LabServer, size: int) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(lab.lab_url(layout=f"paint-{uuid.uuid4().hex[:8]}"))
        wait_for_lab(page)
        page.click('.lm-TabBar-tab[data-id="lakebook-sidebar"]')
        page.wait_for_selector(f'[data-pipeline="shop_{size - 1:03d}"]', timeout=60_000)
        assert page.locator(".lb-list-item").count() == size
        figures: dict[str, float] = page.evaluate(MEASURE)
        return figures
    finally:
        context.close()


def measure(size: int, repeat: int, scratch: Path, browser: Any, warm_up: bool) -> dict[str, Any]:
    root = scratch / f"ws{size}-{warm_up}"
    build_workspace(root, size)
    flag = f"--LakebookExtensionApp.warm_up={warm_up}"
    with LabServer.start(root, scratch / f"state{size}-{warm_up}", (flag,)) as lab:
        # the first load after the server starts: imports, first DB open, every file parsed
        cold = load_once(browser, lab, size)
        loads = [load_once(browser, lab, size) for _ in range(repeat)]
    paint = statistics.median(load["paint"] for load in loads)
    api = statistics.median(load["api"] for load in loads)
    return {
        "pipelines": size,
        "server_warm_up": warm_up,
        "first_paint_ms": round(paint, 1),
        "api_ms": round(api, 1),
        "paint_over_budget": round(paint / BUDGET_MS, 3),
        "api_share_of_paint": round(api / paint, 3) if paint else None,
        "cold_first_paint_ms": round(cold["paint"], 1),
        "cold_over_budget": round(cold["paint"] / BUDGET_MS, 3),
        "loads": loads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50,200")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--no-warm-up",
        action="store_true",
        help="Start the server with `warm_up=False` (pipeline files read on the first request).",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="lakebook-paint-") as scratch, chromium() as browser:
        for size in sizes:
            result = measure(size, args.repeat, Path(scratch), browser, not args.no_warm_up)
            results.append(result)
            print(
                f"N={size:4d}  first paint {result['first_paint_ms']:7.1f} ms  "
                f"= {result['paint_over_budget']:.2f} x budget  "
                f"(API alone {result['api_ms']:6.1f} ms, {result['api_share_of_paint']:.0%}); "
                f"cold, first load after the server starts: {result['cold_first_paint_ms']:7.1f} ms "
                f"= {result['cold_over_budget']:.2f} x budget",
                flush=True,
            )
    if args.no_warm_up and args.output == DEFAULT_OUTPUT:
        args.output = DEFAULT_OUTPUT.with_name("sidebar_first_paint_no_warm_up.json")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "sidebar_first_paint",
                "budget_ms": BUDGET_MS,
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "cpus": os.cpu_count(),
                "results": results,
            },
            indent=2,
        )
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
