"""The exceptions lakebook raises.

Every error a user can cause derives from `LakebookError`; its message says what failed, names the
thing in backticks and ends with what to do next. Framework bugs are ordinary Python exceptions.
"""

from __future__ import annotations

from collections.abc import Sequence


class LakebookError(Exception):
    """Root of all lakebook errors: a problem the user can fix."""


class WorkspaceNotFoundError(LakebookError):
    """The folder is not a lakebook workspace (no `jupyter_config.py`)."""


class PipelineNotFoundError(LakebookError):
    """No `pipelines/<name>/pipeline.yaml` for the requested pipeline."""


class PipelineExistsError(LakebookError):
    """A pipeline with the requested name already exists."""


class JobNotFoundError(LakebookError):
    """A pipeline has no job with the requested name."""


class JobExistsError(LakebookError):
    """A pipeline already has a job with the requested name."""


class SpecProblem:
    """One problem found in a pipeline file: where it is and what is wrong."""

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        self.message = message

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message

    def __repr__(self) -> str:
        return f"SpecProblem({self.location!r}, {self.message!r})"

    def as_dict(self) -> dict[str, str]:
        """The problem as a JSON-friendly dict (used by the API's 400 bodies)."""
        return {"location": self.location, "message": self.message}


class SpecValidationError(LakebookError):
    """A pipeline file has one or more problems; all of them are listed."""

    def __init__(self, source: str, problems: Sequence[SpecProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{source} has {count} {noun}:\n{lines}")


class DagError(LakebookError):
    """The jobs of a pipeline do not form a valid graph."""


class DagCycleError(DagError):
    """Jobs depend on each other in a circle."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        path = " -> ".join(f"`{name}`" for name in [*self.cycle, self.cycle[0]])
        super().__init__(
            f"Jobs depend on each other in a cycle: {path}. "
            "Remove one of these inputs so the pipeline can run in order."
        )


class DagMissingInputError(DagError):
    """A job reads a dataset that no job produces and the lake does not hold."""

    def __init__(self, job: str, dataset: str, known: Sequence[str]) -> None:
        self.job = job
        self.dataset = dataset
        known_text = ", ".join(f"`{name}`" for name in sorted(known)) or "none"
        super().__init__(
            f"Job `{job}` reads `{dataset}`, which no job in this pipeline produces. "
            f"Datasets produced here: {known_text}. Fix the input name or add the job that makes it."
        )


class DuplicateDatasetError(DagError):
    """Two jobs write the same dataset."""

    def __init__(self, dataset: str, jobs: Sequence[str]) -> None:
        self.dataset = dataset
        self.jobs = list(jobs)
        names = " and ".join(f"`{job}`" for job in self.jobs)
        super().__init__(
            f"Jobs {names} both write `{dataset}`. Each dataset must have exactly one job: "
            "rename one of them."
        )


class PathOutsideWorkspaceError(LakebookError):
    """A user-supplied path points outside the workspace or the lake."""


class ConnectionNotFoundError(LakebookError):
    """A job names a connection that the workspace configuration does not define."""


class DatasetNotFoundError(LakebookError):
    """A dataset address does not name an existing table in the lake."""


class IngestError(LakebookError):
    """An ingest job could not load its source."""


class TransformError(LakebookError):
    """A dataset job's transform or its result does not fit the spec."""


class QueryError(LakebookError):
    """A user's SQL could not run."""


class JobFailedError(LakebookError):
    """A job's notebook raised; carries the failing cell and the error."""

    def __init__(self, job: str, cell_index: int | None, ename: str, evalue: str) -> None:
        self.job = job
        self.cell_index = cell_index
        self.ename = ename
        self.evalue = evalue
        where = f" in cell {cell_index}" if cell_index is not None else ""
        super().__init__(f"Job `{job}` failed{where}: {ename}: {evalue}")


class RunNotFoundError(LakebookError):
    """No pipeline run has the requested id."""


class IncidentNotFoundError(LakebookError):
    """No data-quality incident has the requested id."""


class IncidentStatusError(LakebookError):
    """An incident cannot move to the requested status from the one it is in."""


class RuleNotFoundError(LakebookError):
    """A job has no data-quality rule with the requested name."""


class RuleExistsError(LakebookError):
    """A job already has a data-quality rule with the requested name."""
