"""The structured result a job notebook hands back to the runner inside its own output."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

RESULT_MIME_TYPE = "application/vnd.lakebook.result+json"


@dataclass
class RuleOutcome:
    """What one data-quality rule found in one job run."""

    rule: str
    check_type: str
    severity: str
    action: str
    rows_checked: int
    rows_failing: int
    passed: bool
    scope: str | None = None
    target: str | None = None
    failure_rate: float = 0.0
    duration_ms: float = 0.0
    observed_value: float | None = None
    rows_fixed: int = 0
    message: str = ""
    notification: str | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class JobResult:
    """Row accounting and outcome of one job; serialised into the executed notebook."""

    job: str
    dataset: str
    rows_read: int = 0
    rows_written: int = 0
    quarantined_rows: int = 0
    deduplicated_rows: int = 0
    dropped_rows: int = 0
    watermark_before: str | None = None
    watermark_after: str | None = None
    watermark_column: str | None = None
    table_version: int | None = None
    source_files: list[str] = field(default_factory=list)
    manifest: list[dict[str, str]] = field(default_factory=list)
    dq: list[RuleOutcome] = field(default_factory=list)
    # True when a `fail` rule stopped the job: `dq` holds every outcome, nothing was committed.
    dq_failed: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        """The inverse of `as_dict`."""
        values = dict(data)
        values["dq"] = [RuleOutcome(**item) for item in values.get("dq", [])]
        return cls(**values)


def read_result(notebook_path: str) -> JobResult | None:
    """The JobResult a notebook emitted, or None when it emitted none (e.g. it failed first)."""
    import nbformat  # slow to import (~1 s); job kernels never need it

    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in reversed(notebook.cells):
        for output in reversed(cell.get("outputs", [])):
            data = output.get("data", {})
            if RESULT_MIME_TYPE in data:
                return JobResult.from_dict(dict(data[RESULT_MIME_TYPE]))
    return None
