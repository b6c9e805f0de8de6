"""A small DAG of jobs: build it from a pipeline, reject bad graphs with named culprits, order it.

Order rule: reference ingests run first (every other job waits for them), then the remaining ingests,
then silver, then gold, each after its inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lakebook.errors import DagCycleError, DagMissingInputError, DuplicateDatasetError
from lakebook.specs import DatasetJob, IngestJob, PipelineSpec

LAYER_RANK = {"reference": 0, "bronze": 1, "silver": 2, "gold": 3}


@dataclass(frozen=True)
class Node:
    """One job in the graph: what it writes and which jobs must finish first."""

    name: str
    dataset: str
    rank: int
    upstream: frozenset[str] = field(default_factory=frozenset)


class Dag:
    """Jobs and their dependencies, validated on construction."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self.nodes = {node.name: node for node in nodes}
        self._check_cycles()

    @classmethod
    def from_pipeline(cls, spec: PipelineSpec, existing: Iterable[str] = ()) -> Dag:
        """The graph of a pipeline. `existing` datasets (already in the lake) count as inputs."""
        producers: dict[str, list[str]] = {}
        for job in spec.jobs:
            producers.setdefault(job.dataset, []).append(job.name)
        for dataset, jobs in producers.items():
            if len(jobs) > 1:
                raise DuplicateDatasetError(dataset, jobs)
        produced = {dataset: jobs[0] for dataset, jobs in producers.items()}
        available = set(existing)
        references = [job.name for job in spec.ingest_jobs if job.is_reference]
        nodes = []
        for job in spec.jobs:
            upstream: set[str] = set()
            if isinstance(job, IngestJob):
                rank = LAYER_RANK["reference"] if job.is_reference else LAYER_RANK["bronze"]
            else:
                rank = LAYER_RANK[job.layer]
                upstream |= _upstream_of(job, produced, available)
            if not (isinstance(job, IngestJob) and job.is_reference):
                upstream |= set(references)
            nodes.append(Node(job.name, job.dataset, rank, frozenset(upstream)))
        return cls(nodes)

    def _check_cycles(self) -> None:
        state: dict[str, str] = {}
        stack: list[str] = []

        def visit(name: str) -> None:
            state[name] = "visiting"
            stack.append(name)
            for parent in sorted(self.nodes[name].upstream):
                if state.get(parent) == "visiting":
                    raise DagCycleError(stack[stack.index(parent) :])
                if parent not in state:
                    visit(parent)
            stack.pop()
            state[name] = "done"

        for name in sorted(self.nodes):
            if name not in state:
                visit(name)

    def order(self) -> list[str]:
        """A topological order: by layer rank, then name, each job after its upstream jobs."""
        done: set[str] = set()
        ordered: list[str] = []
        while len(ordered) < len(self.nodes):
            ready = self.ready(done, set(ordered))
            ordered.extend(ready)
            done.update(ready)
        return ordered

    def ready(self, finished: set[str], started: set[str]) -> list[str]:
        """Jobs not yet started whose upstream jobs are all finished, in run-preference order."""
        candidates = [
            node
            for name, node in self.nodes.items()
            if name not in started and node.upstream <= finished
        ]
        return [node.name for node in sorted(candidates, key=lambda n: (n.rank, n.name))]

    def downstream(self, name: str) -> set[str]:
        """Every job that depends, directly or not, on `name`."""
        found: set[str] = set()
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for other in self.nodes.values():
                if current in other.upstream and other.name not in found:
                    found.add(other.name)
                    frontier.append(other.name)
        return found


def _upstream_of(job: DatasetJob, produced: dict[str, str], available: set[str]) -> set[str]:
    upstream = set()
    for item in job.inputs:
        if item.dataset in produced:
            upstream.add(produced[item.dataset])
        elif item.dataset not in available:
            raise DagMissingInputError(job.name, item.dataset, list(produced))
    return upstream
