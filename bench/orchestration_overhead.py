"""Per-job orchestration overhead of `lakebook run` against the papermill CLI.

For each pipeline size N (default 1, 10 and 30 jobs) the script builds fresh workspaces holding a
pipeline of N trivial ingest jobs (each loads its own 3-row CSV into Bronze) and times, in the
same run:

* `lakebook run NAME --json` as a subprocess with the workspace default `max_parallel_jobs = 2`;
* the same command with `c.Lakebook.max_parallel_jobs = 1` (sequential, apples to apples);
* the baseline: the same N notebooks run one after another with the `papermill` CLI, one process
  per notebook, with exactly the parameters lakebook passes (`lakebook.executor.job_parameters`
  and `lakebook.executor.template_for`) and the same kernel, working directory and flags.

Every measurement starts from its own freshly initialised workspace, so no mode benefits from
tables or a metadata database left by another. One untimed warm-up of each mode runs first, so
the first timed mode does not pay for cold caches. Results are printed as a table and written to
`bench/results/orchestration_overhead.json`.

Usage::

    python bench/orchestration_overhead.py [--sizes 1,10,30] [--output PATH] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from lakebook.executor import job_parameters, template_for
from lakebook.results import read_result
from lakebook.workspace import Workspace

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH_DIR / "results" / "orchestration_overhead.json"
DEFAULT_SIZES = (1, 10, 30)
BIN_DIR = Path(sys.executable).parent
CSV_TEXT = "id,name,amount\n1,alpha,10\n2,beta,20\n3,gamma,30\n"


def children_cpu_seconds() -> float:
    """User + system CPU time of all finished child processes (and their waited-for children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class LakebookTiming:
    """One `lakebook run`: wall and CPU time of the process, and the run time it reports."""

    wall_s: float
    cpu_s: float
    reported_s: float
    notices: list[str]


@dataclass
class Measurement:
    """Timings for one pipeline size N, in seconds.

    Plain `*_s` figures are wall-clock time. `*_cpu_s` is the CPU time (user + system) of the
    processes and kernels a mode started: less sensitive to other load on a shared machine.
    `*_reported_s` is the run's own `duration_seconds` (without process start-up and imports).
    """

    n: int
    lakebook_parallel_s: float
    lakebook_sequential_s: float
    papermill_cli_s: float
    lakebook_parallel_reported_s: float
    lakebook_sequential_reported_s: float
    lakebook_parallel_cpu_s: float
    lakebook_sequential_cpu_s: float
    papermill_cli_cpu_s: float
    ratio_parallel: float = field(init=False)
    ratio_sequential: float = field(init=False)
    per_job_overhead_s: float = field(init=False)
    ratio_sequential_cpu: float = field(init=False)

    def __post_init__(self) -> None:
        self.ratio_parallel = self.lakebook_parallel_s / self.papermill_cli_s
        self.ratio_sequential = self.lakebook_sequential_s / self.papermill_cli_s
        self.per_job_overhead_s = (self.lakebook_sequential_s - self.papermill_cli_s) / self.n
        self.ratio_sequential_cpu = self.lakebook_sequential_cpu_s / self.papermill_cli_cpu_s


class BenchmarkError(RuntimeError):
    """A run under measurement did not succeed; its figures would mean nothing."""


def executable(name: str) -> str:
    """The console script installed beside this interpreter (avoids pyenv/venv shim overhead)."""
    candidate = BIN_DIR / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise BenchmarkError(f"`{name}` is not installed in this environment.")
    return found


def build_workspace(root: Path, pipeline: str, n: int, max_parallel_jobs: int | None) -> Workspace:
    """A fresh workspace with a pipeline of `n` ingest jobs, each loading its own 3-row CSV."""
    Workspace.init(root)
    if max_parallel_jobs is not None:
        config = root / "jupyter_config.py"
        with config.open("a", encoding="utf-8") as stream:
            stream.write(f"c.Lakebook.max_parallel_jobs = {max_parallel_jobs}\n")
    pipeline_dir = root / "pipelines" / pipeline
    (pipeline_dir / "data").mkdir(parents=True)
    jobs = []
    for index in range(n):
        name = f"t{index:03d}"
        (pipeline_dir / "data" / f"{name}.csv").write_text(CSV_TEXT, encoding="utf-8")
        jobs.append(
            {
                "name": name,
                "source_type": "local_path",
                "format": "csv",
                "partition_mode": "none",
                "config": {"file": {"path": f"data/{name}.csv"}},
            }
        )
    spec = {"name": pipeline, "description": f"{n} trivial ingest jobs", "ingest_jobs": jobs}
    (pipeline_dir / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return Workspace.open(root)


def notices(stderr: str) -> list[str]:
    """Distinct warning and error lines in a process's stderr (progress lines left out)."""
    lines = (line.strip() for line in stderr.splitlines())
    flagged = (line for line in lines if "warn" in line.lower() or "error" in line.lower())
    return list(dict.fromkeys(flagged))


def time_lakebook_run(root: Path, pipeline: str, n: int) -> LakebookTiming:
    """Time `lakebook run PIPELINE --json`; raises unless all `n` jobs succeeded."""
    command = [executable("lakebook"), "--workspace", str(root), "run", pipeline, "--json"]
    cpu_before = children_cpu_seconds()
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    cpu = children_cpu_seconds() - cpu_before
    if completed.returncode != 0:
        raise BenchmarkError(
            f"`lakebook run {pipeline}` exited {completed.returncode}:\n{completed.stderr[-2000:]}"
        )
    summary = json.loads(completed.stdout)
    succeeded = [job for job in summary["jobs"] if job["status"] == "succeeded"]
    if summary["status"] != "succeeded" or len(succeeded) != n:
        raise BenchmarkError(f"`lakebook run {pipeline}` did not succeed: {completed.stdout}")
    reported = float(summary["duration_seconds"])
    return LakebookTiming(elapsed, cpu, reported, notices(completed.stderr))


def papermill_commands(workspace: Workspace, pipeline: str, run_id: str) -> list[list[str]]:
    """One papermill CLI command per job, with exactly the parameters `lakebook run` passes."""
    spec = workspace.pipeline(pipeline)
    pipeline_dir = workspace.root / "pipelines" / pipeline
    record_dir = workspace.runs_root / pipeline / run_id
    record_dir.mkdir(parents=True, exist_ok=True)
    run_date = datetime.now(timezone.utc).date().isoformat()
    commands = []
    for name in workspace.dag(spec).order():
        job = spec.job(name)
        parameters = job_parameters(
            job,
            workspace=workspace.root,
            pipeline=pipeline,
            run_id=run_id,
            run_date=run_date,
            watermark=None,
        )
        command = [
            executable("papermill"),
            str(template_for(job, pipeline_dir)),
            str(record_dir / f"{name}.ipynb"),
            "--kernel",
            str(workspace.settings.kernel_name),
            "--cwd",
            str(workspace.root),
            "--no-progress-bar",
            "--no-log-output",
        ]
        for key, value in parameters.items():
            # `-r` keeps strings as strings; `-p` would turn e.g. "1" into an int.
            flag = "-r" if isinstance(value, str) else "-p"
            command += [flag, key, str(value)]
        commands.append(command)
    return commands


def time_papermill_cli(commands: list[list[str]], cwd: Path) -> tuple[float, float, list[str]]:
    """Wall time of the commands run one after another; raises unless each exits 0.

    Returns wall time, CPU time and the distinct warning/error lines printed on stderr.
    After timing, each executed notebook must hold the job's emitted result, as in lakebook.
    """
    stderr = ""
    cpu_before = children_cpu_seconds()
    started = time.perf_counter()
    for command in commands:
        completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise BenchmarkError(
                f"papermill exited {completed.returncode} for {command[2]}:\n"
                f"{completed.stderr[-2000:]}"
            )
        stderr += completed.stderr
    elapsed = time.perf_counter() - started
    cpu = children_cpu_seconds() - cpu_before
    for command in commands:
        if read_result(command[2]) is None:
            raise BenchmarkError(f"{command[2]} holds no emitted job result")
    return elapsed, cpu, notices(stderr)


def measure(scratch: Path, n: int) -> tuple[Measurement, dict[str, list[str]]]:
    """Time the three modes for a pipeline of `n` jobs, each in its own fresh workspace.

    Also returns, per mode, the distinct warning/error lines printed on stderr.
    """
    pipeline = f"bench_n{n}"
    parallel_root = scratch / f"n{n}-lakebook-parallel"
    build_workspace(parallel_root, pipeline, n, max_parallel_jobs=None)
    parallel = time_lakebook_run(parallel_root, pipeline, n)

    sequential_root = scratch / f"n{n}-lakebook-sequential"
    build_workspace(sequential_root, pipeline, n, max_parallel_jobs=1)
    sequential = time_lakebook_run(sequential_root, pipeline, n)

    baseline_root = scratch / f"n{n}-papermill-cli"
    baseline = build_workspace(baseline_root, pipeline, n, max_parallel_jobs=None)
    commands = papermill_commands(baseline, pipeline, run_id=f"papermill-cli-n{n}")
    papermill_s, papermill_cpu, papermill_notices = time_papermill_cli(commands, baseline_root)
    measurement = Measurement(
        n,
        parallel.wall_s,
        sequential.wall_s,
        papermill_s,
        parallel.reported_s,
        sequential.reported_s,
        parallel.cpu_s,
        sequential.cpu_s,
        papermill_cpu,
    )
    return measurement, {
        "lakebook_parallel": parallel.notices,
        "lakebook_sequential": sequential.notices,
        "papermill_cli": papermill_notices,
    }


def warm_up(scratch: Path) -> None:
    """One untimed run of each mode, so bytecode and page caches are warm for all of them."""
    root = scratch / "warm-up"
    workspace = build_workspace(root, "warm_up", 1, max_parallel_jobs=None)
    time_lakebook_run(root, "warm_up", 1)
    time_papermill_cli(papermill_commands(workspace, "warm_up", "papermill-cli-warm-up"), root)


def linear_fit(xs: list[int], ys: list[float]) -> dict[str, float] | None:
    """Least-squares `y = fixed + per_job * N`; None with fewer than two distinct sizes."""
    if len(set(xs)) < 2:
        return None
    mean_x = sum(xs) / len(xs)
    mean_y = sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return {"fixed_s": round(mean_y - slope * mean_x, 3), "per_job_s": round(slope, 3)}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        total_kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory = f"{total_kb / 1024 / 1024:.1f} GiB"
    return {
        "cpus": os.cpu_count(),
        "memory": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "lakebook": version("lakebook"),
        "papermill": version("papermill"),
    }


def print_table(results: list[Measurement]) -> None:
    """The results as a fixed-width table on stdout."""
    header = (
        f"{'N':>3}  {'lakebook p=2':>12}  {'lakebook p=1':>12}  {'papermill CLI':>13}  "
        f"{'ratio p=2':>9}  {'ratio p=1':>9}  {'overhead/job':>12}"
    )
    print(header)
    print("-" * len(header))
    for row in results:
        print(
            f"{row.n:>3}  {row.lakebook_parallel_s:>11.2f}s  {row.lakebook_sequential_s:>11.2f}s"
            f"  {row.papermill_cli_s:>12.2f}s  {row.ratio_parallel:>9.2f}"
            f"  {row.ratio_sequential:>9.2f}  {row.per_job_overhead_s:>+11.2f}s"
        )
    print("\nCPU time (user + system, all processes and kernels of a mode):")
    for row in results:
        print(
            f"{row.n:>3}  {row.lakebook_parallel_cpu_s:>11.2f}s  {row.lakebook_sequential_cpu_s:>11.2f}s"
            f"  {row.papermill_cli_cpu_s:>12.2f}s  {'':>9}  {row.ratio_sequential_cpu:>9.2f}"
        )


def parse_sizes(text: str) -> list[int]:
    """`"1,10,30"` -> `[1, 10, 30]`; every size must be a positive integer."""
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive integers, e.g. 1,10,30")
    return sizes


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="comma-separated pipeline sizes (default: 1,10,30)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspaces")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    load_at_start = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="lakebook-bench-"))
    stderr_notices: dict[str, list[str]] = {}
    results: list[Measurement] = []
    try:
        warm_up(scratch)
        for n in args.sizes:
            result, notes = measure(scratch, n)
            results.append(result)
            for mode, lines in notes.items():
                seen = stderr_notices.setdefault(mode, [])
                seen += [line for line in lines if line not in seen]
            print(f"N={n}: done ({time.perf_counter() - began:.0f}s elapsed)", file=sys.stderr)
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"workspaces kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    total = time.perf_counter() - began

    print_table(results)
    sizes = [row.n for row in results]
    fits = {
        "lakebook_parallel": linear_fit(sizes, [row.lakebook_parallel_s for row in results]),
        "lakebook_sequential": linear_fit(sizes, [row.lakebook_sequential_s for row in results]),
        "papermill_cli": linear_fit(sizes, [row.papermill_cli_s for row in results]),
    }
    if all(fits.values()):
        print("\nlinear fit, seconds = fixed + per_job * N:")
        for mode, fit in fits.items():
            assert fit is not None
            print(f"  {mode:<20} fixed {fit['fixed_s']:>6.2f}s  per job {fit['per_job_s']:>5.2f}s")
    for mode, lines in stderr_notices.items():
        if lines:
            print(f"\n{mode} stderr, distinct warning/error lines:")
            for line in lines[:10]:
                print(f"  {line[:160]}")
    load_at_end = os.getloadavg()
    print(f"\nload average (1 min) at start {load_at_start[0]:.2f}, at end {load_at_end[0]:.2f}")
    print(f"total benchmark time: {total:.0f}s")

    document = {
        "benchmark": "orchestration_overhead",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/orchestration_overhead.py --sizes "
        + ",".join(str(n) for n in args.sizes),
        "machine": machine(),
        "definitions": {
            "ratio_parallel": "lakebook_parallel_s / papermill_cli_s",
            "ratio_sequential": "lakebook_sequential_s / papermill_cli_s",
            "per_job_overhead_s": "(lakebook_sequential_s - papermill_cli_s) / n",
            "ratio_sequential_cpu": "lakebook_sequential_cpu_s / papermill_cli_cpu_s",
        },
        "results": [
            {
                key: round(value, 3) if isinstance(value, float) else value
                for key, value in row.items()
            }
            for row in (asdict(result) for result in results)
        ],
        "linear_fit": fits,
        "stderr_notices": stderr_notices,
        "load_average_1min": {"start": load_at_start[0], "end": load_at_end[0]},
        "total_seconds": round(total, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
