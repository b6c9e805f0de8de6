"""The `lakebook` command. Each command parses flags and calls the `Workspace` facade.

Exit codes: 0 success, 1 a job failed, 2 a user error (bad input, bad spec), 3 a data-quality failure.
"""

from __future__ import annotations

import csv
import io
import json
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
stdout = Console(soft_wrap=True)
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
@click.pass_context
@handle_errors
def run(
    ctx: click.Context, pipeline: str, as_json: bool, trigger: str, run_date: datetime | None
) -> None:
    """Run PIPELINE end to end; exits 1 when a job fails, 3 when a data-quality rule failed."""
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
    summary = workspace.run(pipeline, trigger=trigger, run_date=day, on_progress=progress)
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
