"""The `lakebook` command. Each command parses flags and calls the `Workspace` facade.

Exit codes: 0 success, 1 a job failed, 2 a user error (bad input, bad spec), 3 a data-quality failure.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from lakebook.errors import LakebookError
from lakebook.metadata import RunStatus

EXIT_JOB_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_DQ_FAILED = 3

F = TypeVar("F", bound=Callable[..., Any])
# Piped or captured output gets room for its tables (a terminal keeps its own width).
PIPED_WIDTH = 140
stdout = Console(soft_wrap=True, width=None if sys.stdout.isatty() else PIPED_WIDTH)
stderr = Console(stderr=True, soft_wrap=True)


def handle_errors(command: F) -> F:
    """Print a LakebookError as `Error: …` and exit with the user-error code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LakebookError as error:
            stderr.print(f"[bold red]Error:[/] {error}", markup=True, highlight=False)
            sys.exit(EXIT_USER_ERROR)

    return wrapper  # type: ignore[return-value]


def _workspace(ctx: click.Context) -> Any:
    from lakebook.workspace import Workspace

    return Workspace.open(ctx.obj["workspace"])


@click.group()
@click.option(
    "--workspace",
    "-w",
    default=".",
    envvar="LAKEBOOK_WORKSPACE",
    help="Workspace folder (default: the nearest one at or above the current folder).",
)
@click.version_option(package_name="lakebook")
@click.pass_context
def main(ctx: click.Context, workspace: str) -> None:
    """lakebook: medallion pipelines as parameterized notebooks."""
    ctx.obj = {"workspace": workspace}


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@handle_errors
def init(directory: str) -> None:
    """Create a workspace in DIRECTORY (jupyter_config.py, pipelines/, lake/)."""
    from lakebook.workspace import Workspace

    workspace = Workspace.init(directory)
    stdout.print(f"Created workspace {workspace.root}")
    stdout.print("Add pipelines under pipelines/<name>/pipeline.yaml, then `lakebook run <name>`.")


@main.command()
@click.argument("pipelines", nargs=-1)
@click.pass_context
@handle_errors
def validate(ctx: click.Context, pipelines: tuple[str, ...]) -> None:
    """Check pipeline files (all, or the named ones); exits 2 when any has a problem."""
    workspace = _workspace(ctx)
    reports = workspace.validate(list(pipelines) or None)
    if not reports:
        raise LakebookError(f"No pipelines in `{workspace.root / 'pipelines'}`.")
    failed = False
    for report in reports:
        if report.problems:
            failed = True
            stdout.print(f"[red]✗[/] {report.pipeline} ({report.path})", highlight=False)
            for problem in report.problems:
                stdout.print(f"    - {problem}", markup=False, highlight=False)
        else:
            stdout.print(f"[green]✓[/] {report.pipeline}", highlight=False)
    if failed:
        sys.exit(EXIT_USER_ERROR)


@main.command()
@click.argument("pipeline")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.option("--trigger", default="manual", help="Recorded with the run (manual, schedule, …).")
@click.option(
    "--date",
    "run_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Run date (ingest partition), default today.",
)
@click.option(
    "--job",
    "-j",
    "jobs",
    multiple=True,
    help="Run only this job (repeat for several); its inputs must already be in the lake.",
)
@click.pass_context
@handle_errors
def run(
    ctx: click.Context,
    pipeline: str,
    as_json: bool,
    trigger: str,
    run_date: datetime | None,
    jobs: tuple[str, ...],
) -> None:
    """Run PIPELINE end to end (or only `--job` JOB); exits 1 when a job fails, 3 when a
    data-quality rule failed."""
    workspace = _workspace(ctx)

    def progress(event: str, job: Any) -> None:
        marks = {"started": "[cyan]…[/]", "skipped": "[yellow]-[/]"}
        mark = marks.get(event) or (
            "[green]✓[/]" if job.status == RunStatus.SUCCEEDED else "[red]✗[/]"
        )
        detail = ""
        if event == "finished" and job.status == RunStatus.SUCCEEDED:
            detail = f"  read {job.rows_read}, wrote {job.rows_written}"
            if job.quarantined_rows:
                detail += f", quarantined {job.quarantined_rows}"
            detail += f"  ({job.duration_seconds:.1f}s)"
        elif job.error and event != "started":
            detail = f"  {job.error}"
        stderr.print(f"{mark} {job.job} [dim]{job.dataset}[/]{detail}", highlight=False)

    day: date | None = run_date.date() if run_date else None
    summary = workspace.run(
        pipeline, trigger=trigger, run_date=day, on_progress=progress, only=list(jobs) or None
    )
    if as_json:
        click.echo(json.dumps(_summary_json(summary), indent=2))
    else:
        colour = "green" if summary.status == RunStatus.SUCCEEDED else "red"
        stdout.print(
            f"Run {summary.run_id} [{colour}]{summary.status}[/] in {summary.duration_seconds:.1f}s"
            f" — record: {summary.record_dir}",
            highlight=False,
        )
    if summary.status != RunStatus.SUCCEEDED:
        dq_failed = any(job.error and "DataQualityError" in job.error for job in summary.jobs)
        sys.exit(EXIT_DQ_FAILED if dq_failed else EXIT_JOB_FAILED)


def _summary_json(summary: Any) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "pipeline": summary.pipeline,
        "status": str(summary.status),
        "record_dir": summary.record_dir,
        "duration_seconds": summary.duration_seconds,
        "jobs": [
            {
                "job": job.job,
                "dataset": job.dataset,
                "status": str(job.status),
                "rows_read": job.rows_read,
                "rows_written": job.rows_written,
                "quarantined_rows": job.quarantined_rows,
                "deduplicated_rows": job.deduplicated_rows,
                "record": job.notebook,
                "error": job.error,
            }
            for job in summary.jobs
        ],
    }


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@main.command()
@click.option("--pipeline", "-p", help="Only runs of this pipeline.")
@click.option("--limit", "-n", default=20, show_default=True)
@click.pass_context
@handle_errors
def runs(ctx: click.Context, pipeline: str | None, limit: int) -> None:
    """List recent pipeline runs, newest first."""
    table = Table("pipeline", "status", "trigger", "started (UTC)", "duration")
    # Ids are copied into `lakebook show`: never wrap them.
    table.add_column("run id", no_wrap=True, min_width=23)
    for item in _workspace(ctx).runs(pipeline, limit):
        duration = f"{item.duration_seconds:.1f}s" if item.duration_seconds is not None else "-"
        table.add_row(
            item.pipeline, item.status, item.trigger, _when(item.started_at), duration, item.id
        )
    stdout.print(table)


@main.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show one run (an id or a unique prefix) and its jobs' metrics."""
    run_row, jobs = _workspace(ctx).show(run_id)
    fields = (
        "job",
        "dataset",
        "status",
        "rows_read",
        "rows_written",
        "quarantined_rows",
        "deduplicated_rows",
        "watermark_before",
        "watermark_after",
        "duration_seconds",
        "notebook_path",
        "error",
    )
    if as_json:
        payload = {
            "run_id": run_row.id,
            "pipeline": run_row.pipeline,
            "status": run_row.status,
            "trigger": run_row.trigger,
            "started_at": str(run_row.started_at),
            "ended_at": str(run_row.ended_at) if run_row.ended_at else None,
            "duration_seconds": run_row.duration_seconds,
            "record_dir": run_row.record_dir,
            "jobs": [{name: getattr(job, name) for name in fields} for job in jobs],
        }
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    stdout.print(
        f"Run {run_row.id} of {run_row.pipeline}: {run_row.status} "
        f"(trigger {run_row.trigger}, started {_when(run_row.started_at)}, "
        f"record {run_row.record_dir})",
        highlight=False,
    )
    table = Table(
        "job",
        "dataset",
        "status",
        "read",
        "written",
        "quarantined",
        "deduplicated",
        "watermark",
        "seconds",
    )
    for job in jobs:
        watermark = f"{job.watermark_before or '-'} → {job.watermark_after or '-'}"
        seconds = f"{job.duration_seconds:.1f}" if job.duration_seconds is not None else "-"
        table.add_row(
            job.job,
            job.dataset,
            job.status,
            *(
                str(v) if v is not None else "-"
                for v in (
                    job.rows_read,
                    job.rows_written,
                    job.quarantined_rows,
                    job.deduplicated_rows,
                )
            ),
            watermark,
            seconds,
        )
    stdout.print(table)
    for job in jobs:
        if job.error:
            stdout.print(f"{job.job}: {job.error}", markup=False, highlight=False)
        if job.notebook_path:
            stdout.print(f"{job.job} record: {job.notebook_path}", markup=False, highlight=False)


@main.command()
@click.argument("sql")
@click.option(
    "--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table"
)
@click.pass_context
@handle_errors
def query(ctx: click.Context, sql: str, output_format: str) -> None:
    """Run DuckDB SQL over the lake; datasets are `bronze.x`, `silver.y`, `gold.z`."""
    result = _workspace(ctx).query(sql)
    rows = result.to_pylist()
    if output_format == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
    elif output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.column_names)
        for row in rows:
            writer.writerow([row[name] for name in result.column_names])
        click.echo(buffer.getvalue(), nl=False)
    else:
        table = Table(*result.column_names)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        stdout.print(table)


@main.group()
def watermark() -> None:
    """Inspect or reset incremental watermarks."""


def _pipeline_of(workspace: Any, job: str, pipeline: str | None) -> str:
    if pipeline:
        return pipeline
    owners = [
        name
        for name in workspace.pipeline_names()
        if any(item.name == job for item in workspace.pipeline(name).ingest_jobs)
    ]
    if len(owners) != 1:
        where = ", ".join(f"`{name}`" for name in owners) or "no pipeline"
        raise LakebookError(
            f"Ingest job `{job}` is in {where}; name the pipeline with `--pipeline`."
        )
    return str(owners[0])


@watermark.command("show")
@click.argument("job")
@click.option("--pipeline", "-p", help="The job's pipeline (needed when several have the job).")
@click.pass_context
@handle_errors
def watermark_show(ctx: click.Context, job: str, pipeline: str | None) -> None:
    """Show JOB's watermark ledger, oldest first; the last line is where the next run starts."""
    workspace = _workspace(ctx)
    name = _pipeline_of(workspace, job, pipeline)
    table = Table()
    table.add_column("run", no_wrap=True, min_width=23)
    for title in ("column", "before", "after", "rows", "committed (UTC)"):
        table.add_column(title)
    for entry in workspace.watermark_history(name, job):
        table.add_row(
            entry.run_id,
            entry.column,
            entry.value_before or "-",
            entry.value_after or "-",
            str(entry.rows),
            _when(entry.committed_at),
        )
    stdout.print(table)


@watermark.command("rewind")
@click.argument("job")
@click.option("--to-run", "to_run", required=True, help="Run id whose end value to go back to.")
@click.option("--pipeline", "-p", help="The job's pipeline (needed when several have the job).")
@click.pass_context
@handle_errors
def watermark_rewind(ctx: click.Context, job: str, to_run: str, pipeline: str | None) -> None:
    """Reset JOB's watermark to where run RUN_ID left it; the next run re-reads from there."""
    workspace = _workspace(ctx)
    name = _pipeline_of(workspace, job, pipeline)
    entry = workspace.rewind_watermark(name, job, to_run)
    stdout.print(
        f"Watermark of {name}.{job} rewound from {entry.value_before} to {entry.value_after}; "
        "the next run starts there (rows already in Bronze are de-duplicated).",
        highlight=False,
    )


@main.group()
def dq() -> None:
    """Data-quality results of every run, and incidents: list, inspect, acknowledge, resolve."""


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


@dq.command("results")
@click.option("--dataset", "-d", help="Only this dataset, e.g. `silver.orders`.")
@click.option("--run", "run_id", help="Only this run (an id or a unique prefix).")
@click.option("--limit", "-n", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def dq_results(
    ctx: click.Context, dataset: str | None, run_id: str | None, limit: int, as_json: bool
) -> None:
    """List DQ results per rule and run, newest first (failed runs included)."""
    rows = _workspace(ctx).dq_results(dataset=dataset, run=run_id, limit=limit)
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2, default=str))
        return
    # Grouped by run under a heading, so the table keeps to the columns a reader compares.
    by_run: dict[str, list[Any]] = {}
    for row in rows:
        by_run.setdefault(row.run_id, []).append(row)
    for run, results in by_run.items():
        table = Table(title=f"run {run}", title_justify="left")
        for title in ("dataset", "rule", "check", "severity", "result", "failing", "action"):
            table.add_column(title, no_wrap=title in ("dataset", "rule"))
        for row in results:
            table.add_row(
                row.dataset,
                row.rule,
                row.check_type,
                row.severity,
                "[green]pass[/]" if row.passed else "[red]FAIL[/]",
                f"{row.rows_failing}/{row.rows_checked}",
                row.action_taken or "-",
            )
        stdout.print(table)
    if not rows:
        stdout.print("No data-quality results yet.")


@dq.command("incidents")
@click.option(
    "--status", "-s", type=click.Choice(["open", "acknowledged", "resolved"]), help="Only these."
)
@click.option("--dataset", "-d", help="Only this dataset, e.g. `silver.orders`.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def dq_incidents(
    ctx: click.Context, status: str | None, dataset: str | None, as_json: bool
) -> None:
    """List data-quality incidents, newest first."""
    rows = _workspace(ctx).incidents(status=status, dataset=dataset)
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2, default=str))
        return
    table = Table("id", "status", "severity", "dataset", "rule", "seen", "failing", "owner")
    table.add_column("last run", no_wrap=True, min_width=23)
    table.add_column("updated (UTC)")
    for row in rows:
        table.add_row(
            str(row.id),
            row.status,
            row.severity,
            row.dataset,
            row.rule,
            str(row.occurrences),
            str(row.rows_failing),
            row.owner or "-",
            row.last_run_id,
            _when(row.updated_at),
        )
    stdout.print(table)


@dq.command("incident")
@click.argument("incident_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def dq_incident(ctx: click.Context, incident_id: int, as_json: bool) -> None:
    """Show one incident: its rule, runs, metrics, status history and sample of failing rows."""
    row = _workspace(ctx).incident(incident_id)
    if as_json:
        click.echo(json.dumps(row.as_dict(), indent=2, default=str))
        return
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold")
    details.add_column()
    for name, value in (
        ("incident", str(row.id)),
        ("status", row.status),
        ("owner", row.owner or "-"),
        ("pipeline / job", f"{row.pipeline} / {row.job}"),
        ("dataset", row.dataset),
        ("rule", f"{row.rule} ({row.check_type}, severity {row.severity})"),
        ("action taken", row.action_taken),
        ("occurrences", str(row.occurrences)),
        ("rows failing", f"{row.rows_failing} (rate {_number(row.failure_rate)})"),
        ("opened", f"{_when(row.opened_at)} in run {row.opened_run_id}"),
        ("last seen", f"{_when(row.updated_at)} in run {row.last_run_id}"),
        ("acknowledged", _when(row.acknowledged_at)),
        ("resolved", _when(row.resolved_at)),
        ("notification", row.notification or "-"),
        ("note", row.note or "-"),
    ):
        details.add_row(name, value)
    stdout.print(details, highlight=False)
    sample = row.sample or []
    if not sample:
        stdout.print("No sample of failing rows.", highlight=False)
        return
    stdout.print(f"Sample of failing rows ({len(sample)}):", highlight=False)
    columns = list(dict.fromkeys(name for item in sample for name in item))
    table = Table(*columns)
    for item in sample:
        table.add_row(*("" if item.get(c) is None else str(item.get(c)) for c in columns))
    stdout.print(table)


@dq.command("ack")
@click.argument("incident_id", type=int)
@click.option("--owner", "-o", help="Who takes the incident (needed unless it has an owner).")
@click.pass_context
@handle_errors
def dq_ack(ctx: click.Context, incident_id: int, owner: str | None) -> None:
    """Acknowledge incident INCIDENT_ID: someone owns it now."""
    row = _workspace(ctx).acknowledge(incident_id, owner)
    stdout.print(f"Incident {row.id} acknowledged by {row.owner}.", highlight=False)


@dq.command("resolve")
@click.argument("incident_id", type=int)
@click.option("--note", help="What was done about it.")
@click.pass_context
@handle_errors
def dq_resolve(ctx: click.Context, incident_id: int, note: str | None) -> None:
    """Resolve incident INCIDENT_ID; a later violation of its rule opens a new incident."""
    row = _workspace(ctx).resolve(incident_id, note)
    stdout.print(f"Incident {row.id} resolved.", highlight=False)


@dq.command("replay")
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print the replay summary as JSON.")
@click.pass_context
@handle_errors
def dq_replay(ctx: click.Context, dataset: str, as_json: bool) -> None:
    """Re-check DATASET's quarantined rows with the current rules; rows that pass are added."""
    summary = _workspace(ctx).replay_quarantine(dataset)
    if as_json:
        click.echo(json.dumps(vars(summary), indent=2, default=str))
        return
    stdout.print(
        f"Replayed {summary.rows_replayed} quarantined row(s) of {summary.dataset}: "
        f"{summary.rows_accepted} accepted, {summary.rows_still_failing} still failing, "
        f"{summary.rows_dropped} dropped (replay {summary.replay_id}).",
        highlight=False,
    )


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("jupyter_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@handle_errors
def lab(ctx: click.Context, jupyter_args: tuple[str, ...]) -> None:
    """Start JupyterLab on the workspace, with its jupyter_config.py and the Lakebook sidebar.

    Other arguments go to `jupyter lab` as they are, e.g. `lakebook lab --port 8899`.
    """
    workspace = _workspace(ctx)
    command = [sys.executable, "-m", "jupyterlab", *lab_arguments(workspace.root), *jupyter_args]
    os.chdir(workspace.root)
    os.execv(sys.executable, command)


def lab_arguments(root: Path) -> list[str]:
    """What `lakebook lab` passes to JupyterLab: the workspace's settings and its root folder."""
    return [f"--config={root / 'jupyter_config.py'}", f"--ServerApp.root_dir={root}"]


@main.command("schema")
@click.option(
    "--output", "-o", type=click.Path(file_okay=False), help="Write one JSON file per spec here."
)
def schema(output: str | None) -> None:
    """Export the JSON Schemas of the specs (the sidebar builds its forms from them)."""
    from lakebook.specs import json_schemas

    schemas = json_schemas()
    if output is None:
        click.echo(json.dumps(schemas, indent=2))
        return
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    for name, document in schemas.items():
        (folder / f"{name}.schema.json").write_text(json.dumps(document, indent=2) + "\n")
        click.echo(f"wrote {folder / f'{name}.schema.json'}")


if __name__ == "__main__":
    main()
