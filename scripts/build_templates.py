"""Build templates/*.ipynb from the cell texts below: `python scripts/build_templates.py`.

The notebooks are committed; edit them here and rebuild so every template keeps one `parameters`
cell in papermill's introspectable form and the same look.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent


def params(text):
    cell = new_code_cell(text)
    cell.metadata["tags"] = ["parameters"]
    return cell


def nb(cells):
    book = new_notebook(cells=cells)
    book.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    book.metadata["language_info"] = {"name": "python"}
    return book


ingest = nb(
    [
        new_markdown_cell(
            "# Ingest job\n\nCopies the source into **Landing** byte-for-byte and loads it into a "
            "**Bronze** Delta table (one commit). Executed by `lakebook run`; the executed copy is "
            "the job's run record."
        ),
        params(
            'workspace: str = "."  # workspace folder (holds jupyter_config.py)\n'
            'pipeline: str = ""  # pipeline name\n'
            'run_id: str = "manual"  # pipeline run id\n'
            'run_date: str = ""  # ingest date YYYY-MM-DD; today when empty\n'
            'job_spec: str = "{}"  # the ingest job spec as JSON (never holds secrets)\n'
            'watermark: str = ""  # watermark to resume from, for incremental jobs'
        ),
        new_code_cell(
            "from lakebook import runtime\n\n"
            "context = runtime.JobContext.open(workspace, pipeline, run_id, run_date)\n"
            "job = runtime.load_ingest_job(job_spec)\n"
            'print(f"{job.name}: {job.source_type} {job.format} -> {job.dataset} "\n'
            '      f"({job.incremental_mode}, partition {job.partition_mode} {job.partition_pattern})")'
        ),
        new_markdown_cell("## Load"),
        new_code_cell(
            "result, sample = runtime.run_ingest(context, job, watermark)\n"
            "for path in result.source_files:\n"
            "    print('landed', path)"
        ),
        new_markdown_cell("## Schema"),
        new_code_cell("runtime.schema_table(sample)"),
        new_markdown_cell("## Sample rows"),
        new_code_cell("sample.to_pandas()"),
        new_markdown_cell("## Row accounting"),
        new_code_cell("runtime.accounting_table(result)"),
        new_code_cell("runtime.emit_result(result)"),
    ]
)

DATASET_TEMPLATES = {
    "sql_dataset": (
        "SQL dataset job",
        "Runs the job's SELECT over its inputs (by alias), conforms the result to `target_schema`, "
        "applies its data-quality rules and writes one Delta commit.",
    ),
    "scd2_dimension": (
        "SCD2 dimension job",
        "Compares the input with the current dimension and keeps one row per version of each "
        "business key (`effective_from`, `effective_to`, `is_current`). Checks one current row "
        "per key and no overlapping intervals before the one Delta commit.",
    ),
    "conform_sources": (
        "Conform sources job",
        "Maps several inputs onto one set of columns and keeps one row per key, by source "
        "priority or the latest update.",
    ),
    "metrics_aggregate": (
        "Metrics job",
        "Groups a fact by a time grain and dimensions and computes the metric definitions.",
    ),
    "snapshot": ("Snapshot job", "Builds an as-of table: each key's row as it stood on a date."),
    "ml_training_set": (
        "ML training set job",
        "Joins labels to features point-in-time correctly: no feature value from after the "
        "label's time.",
    ),
    "vector_index": (
        "Vector index job",
        "Splits a text column into overlapping chunks and embeds them for retrieval.",
    ),
    "export_feed": (
        "Export feed job",
        "Writes the dataset as a Delta table and as files (CSV, Parquet or JSON) for consumers.",
    ),
}


def dataset_template(title, intro):
    return nb(
        [
            new_markdown_cell(
                f"# {title}\n\n{intro} Executed by `lakebook run`; the executed copy is the "
                "job's run record."
            ),
            params(
                'workspace: str = "."  # workspace folder (holds jupyter_config.py)\n'
                'pipeline: str = ""  # pipeline name\n'
                'run_id: str = "manual"  # pipeline run id\n'
                'run_date: str = ""  # run date YYYY-MM-DD; today when empty\n'
                'job_spec: str = "{}"  # the dataset job spec as JSON (never holds secrets)'
            ),
            new_code_cell(
                "from lakebook import runtime\n\n"
                "context = runtime.JobContext.open(workspace, pipeline, run_id, run_date)\n"
                "job = runtime.load_dataset_job(job_spec)\n"
                "runtime.describe_dataset_job(job)"
            ),
            new_markdown_cell("## Transform"),
            new_code_cell("result, sample = runtime.run_dataset_job(context, job)"),
            new_markdown_cell("## Schema"),
            new_code_cell("runtime.schema_table(sample)"),
            new_markdown_cell("## Sample rows"),
            new_code_cell("sample.to_pandas()"),
            new_markdown_cell("## Data quality"),
            new_code_cell("runtime.dq_table(result)"),
            new_markdown_cell("## Row accounting"),
            new_code_cell("runtime.accounting_table(result)"),
            new_code_cell("runtime.emit_result(result)"),
        ]
    )


pipeline_run = nb(
    [
        new_markdown_cell(
            "# Pipeline run\n\nRuns a whole pipeline, for schedulers: "
            "`papermill templates/pipeline_run.ipynb out.ipynb -p pipeline NAME`. "
            "Raises (so papermill exits non-zero) when the run fails."
        ),
        params(
            'pipeline: str = ""  # pipeline to run\n'
            'workspace: str = "."  # workspace folder (holds jupyter_config.py)\n'
            'trigger: str = "schedule"  # recorded with the run'
        ),
        new_code_cell(
            "import pandas as pd\n\nimport lakebook\n\n"
            "summary = lakebook.Workspace.open(workspace).run(pipeline, trigger=trigger)\n"
            "print(summary.run_id, summary.status, summary.record_dir)\n"
            "pd.DataFrame([{k: v for k, v in vars(j).items()} for j in summary.jobs])"
        ),
        new_code_cell(
            "if str(summary.status) != 'succeeded':\n"
            "    raise RuntimeError(f'Pipeline {pipeline} run {summary.run_id} failed')"
        ),
    ]
)

TEMPLATES = REPO / "templates"


def write(name, book):
    """Write with stable cell ids, so rebuilding an unchanged template changes nothing."""
    for index, cell in enumerate(book.cells):
        cell["id"] = f"{name}-{index}"
    nbformat.write(book, TEMPLATES / f"{name}.ipynb")


if __name__ == "__main__":
    for name, book in [("ingest", ingest), ("pipeline_run", pipeline_run)]:
        write(name, book)
    for name, (title, intro) in DATASET_TEMPLATES.items():
        write(name, dataset_template(title, intro))
