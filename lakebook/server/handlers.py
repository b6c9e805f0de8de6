"""HTTP handlers of the REST API: one route table, no logic, errors translated in one place.

Every handler is authenticated (`@tornado.web.authenticated`) and goes through Jupyter's Authorizer
(`@authorized`, resource `lakebook`: GET is `read`, the rest `write`). Each handler names the
`auth_scope` it belongs to (pipelines, jobs, runs, incidents, meta) so that an Authorizer such as
`LakebookAuthorizer` can grant writes per area. Handlers parse the request, call `LakebookService`
and write JSON. `openapi.yaml` next to this file documents the routes (a test keeps them in step).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

from lakebook.errors import (
    DagError,
    IncidentNotFoundError,
    IncidentStatusError,
    JobExistsError,
    JobNotFoundError,
    LakebookError,
    PathOutsideWorkspaceError,
    PipelineExistsError,
    PipelineNotFoundError,
    RuleExistsError,
    RuleNotFoundError,
    RunNotFoundError,
    SpecValidationError,
    WorkspaceNotFoundError,
)
from lakebook.server.service import LakebookService
from lakebook.workspace import JobKind

API = "/lakebook/api"
AUTH_RESOURCE = "lakebook"
OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")
T = TypeVar("T")

# Domain errors -> HTTP status; the first matching class wins. Anything else from lakebook is a
# problem with the request (400); only framework bugs become 500.
ERROR_STATUS: list[tuple[type[LakebookError], int]] = [
    (PipelineNotFoundError, 404),
    (JobNotFoundError, 404),
    (RunNotFoundError, 404),
    (IncidentNotFoundError, 404),
    (RuleNotFoundError, 404),
    (WorkspaceNotFoundError, 404),
    (PipelineExistsError, 409),
    (JobExistsError, 409),
    (RuleExistsError, 409),
    (IncidentStatusError, 409),
    (PathOutsideWorkspaceError, 400),
    (SpecValidationError, 400),
    (DagError, 400),
    (LakebookError, 400),
]


def error_reply(error: LakebookError) -> tuple[int, dict[str, Any]]:
    """The status and JSON body answering a lakebook error."""
    status = next(code for kind, code in ERROR_STATUS if isinstance(error, kind))
    body: dict[str, Any] = {"error": type(error).__name__, "message": str(error)}
    if isinstance(error, SpecValidationError):
        body["problems"] = [problem.as_dict() for problem in error.problems]
    return status, body


# the most rows a list answers at once
MAX_LIMIT = 10_000
# incident ids are 64-bit integers in the metadata DB
LARGEST_ID = 2**63 - 1


def incident_number(text: str) -> int:
    """An incident id from the URL; ids no DB row can have are simply not found (404)."""
    number = int(text)
    if number > LARGEST_ID:
        raise IncidentNotFoundError(f"No data-quality incident {text}.")
    return number


class LakebookHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every lakebook handler: the service, JSON in and out, error translation."""

    auth_resource = AUTH_RESOURCE
    auth_scope: ClassVar[str] = "meta"
    # set by `LakebookAuthorizer` when it refuses a request: the 403's message
    lakebook_refusal: str | None = None

    @property
    def service(self) -> LakebookService:
        service: LakebookService = self.settings["lakebook_service"]
        return service

    def body(self) -> Any:
        """The request's JSON body; a 400 when it is not JSON."""
        if not self.request.body:
            return {}
        try:
            return json.loads(self.request.body)
        except ValueError as error:
            raise tornado.web.HTTPError(400, f"The request body is not JSON: {error}") from None

    def text_field(self, name: str) -> str | None:
        """An optional text field of a JSON-object body; a 400 naming it when it is not text."""
        data = self.body()
        if not isinstance(data, dict):
            raise tornado.web.HTTPError(400, "The request body must be a JSON object.")
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise tornado.web.HTTPError(400, f'`{name}` must be text, e.g. {{"{name}": "…"}}.')
        return value

    async def blocking(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a blocking service method on a worker thread, keeping the event loop free."""
        call = functools.partial(method, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(None, call)

    def limit(self) -> int:
        """The `limit` query argument (default 20); a 400 when it is not a whole number."""
        limit = self.get_query_argument("limit", "20")
        if not limit.isdigit() or int(limit) > MAX_LIMIT:
            raise tornado.web.HTTPError(
                400, f"`limit` must be a whole number from 0 to {MAX_LIMIT}, e.g. `limit=20`."
            )
        return int(limit)

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, default=str))

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, LakebookError):
            self.log.info("lakebook API %s %s: %s", self.request.method, self.request.path, value)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, LakebookError):
            status, body = error_reply(error)
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body))
            return
        if status_code == 403 and self.lakebook_refusal:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"error": "Forbidden", "message": self.lakebook_refusal}))
            return
        super().write_error(status_code, **kwargs)


class PipelinesHandler(LakebookHandler):
    auth_scope = "pipelines"

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"pipelines": await self.blocking(self.service.pipelines)})

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.blocking(self.service.create_pipeline, self.body()), 201)


class PipelineHandler(LakebookHandler):
    auth_scope = "pipelines"

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.blocking(self.service.pipeline, name))

    @tornado.web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        self.reply(await self.blocking(self.service.update_pipeline, name, self.body()))

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.blocking(self.service.delete_pipeline, name)
        self.no_content()


class JobKindHandler(LakebookHandler):
    """Base of the job handlers; the route says which list of jobs (`kind`) it serves."""

    auth_scope = "jobs"

    def initialize(
        self, name: str, *args: Any, kind: JobKind = "ingest_jobs", **kwargs: Any
    ) -> None:
        super().initialize(name, *args, **kwargs)
        self.kind: JobKind = kind


class JobsHandler(JobKindHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        data = self.body()
        job = str((data.get("name") if isinstance(data, dict) else None) or "")
        saved = await self.blocking(self.service.save_job, name, self.kind, job, data, create=True)
        self.reply(saved, 201)


class JobHandler(JobKindHandler):
    @tornado.web.authenticated
    @authorized
    async def put(self, name: str, job: str) -> None:
        data = self.body()
        self.reply(
            await self.blocking(self.service.save_job, name, self.kind, job, data, create=False)
        )

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str, job: str) -> None:
        await self.blocking(self.service.delete_job, name, self.kind, job)
        self.no_content()


class JobRunHandler(JobKindHandler):
    """Run one job alone (its inputs must be in the lake)."""

    auth_scope = "runs"

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str, job: str) -> None:
        self.reply(await self.blocking(self.service.start_job_run, name, self.kind, job), 202)


class JobRunsHandler(JobKindHandler):
    """One job's run history, newest first."""

    auth_scope = "runs"

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str, job: str) -> None:
        limit = self.limit()
        runs = await self.blocking(self.service.job_runs, name, self.kind, job, limit)
        self.reply({"runs": runs})


class JobNotebookHandler(JobKindHandler):
    """The pipeline's own copy of a job's notebook, made on first request, for JupyterLab."""

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str, job: str) -> None:
        reply, created = await self.blocking(self.service.eject_notebook, name, self.kind, job)
        self.reply(reply, 201 if created else 200)


class RulesHandler(JobKindHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str, job: str) -> None:
        self.reply({"rules": await self.blocking(self.service.rules, name, self.kind, job)})

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str, job: str) -> None:
        data = self.body()
        rule = str((data.get("name") if isinstance(data, dict) else None) or "")
        saved = await self.blocking(
            self.service.save_rule, name, self.kind, job, rule, data, create=True
        )
        self.reply(saved, 201)


class RuleHandler(JobKindHandler):
    @tornado.web.authenticated
    @authorized
    async def put(self, name: str, job: str, rule: str) -> None:
        data = self.body()
        saved = await self.blocking(
            self.service.save_rule, name, self.kind, job, rule, data, create=False
        )
        self.reply(saved)

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str, job: str, rule: str) -> None:
        await self.blocking(self.service.delete_rule, name, self.kind, job, rule)
        self.no_content()


class PipelineRunHandler(LakebookHandler):
    auth_scope = "runs"

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        self.reply(await self.blocking(self.service.start_run, name), 202)


class PipelineRunsHandler(LakebookHandler):
    auth_scope = "runs"

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        limit = self.limit()
        self.reply({"runs": await self.blocking(self.service.runs, name, limit)})


class RunHandler(LakebookHandler):
    auth_scope = "runs"

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.reply(await self.blocking(self.service.run, run_id))


class SchemasHandler(LakebookHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.blocking(self.service.schemas))


class ConnectionsHandler(LakebookHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"connections": await self.blocking(self.service.connections)})


class OpenApiHandler(LakebookHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        text = await self.blocking(OPENAPI_FILE.read_text, encoding="utf-8")
        self.finish(text, set_content_type="application/yaml; charset=utf-8")


INCIDENT_FILTERS = ("status", "dataset", "pipeline", "job", "run_id")


class IncidentsHandler(LakebookHandler):
    auth_scope = "incidents"

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        filters = {key: self.get_query_argument(key, None) or None for key in INCIDENT_FILTERS}
        self.reply({"incidents": await self.blocking(self.service.incidents, **filters)})


class IncidentHandler(LakebookHandler):
    auth_scope = "incidents"

    @tornado.web.authenticated
    @authorized
    async def get(self, incident_id: str) -> None:
        self.reply(await self.blocking(self.service.incident, incident_number(incident_id)))


class IncidentAckHandler(LakebookHandler):
    auth_scope = "incidents"

    @tornado.web.authenticated
    @authorized
    async def post(self, incident_id: str) -> None:
        owner = self.text_field("owner") or self.current_user.username
        self.reply(
            await self.blocking(self.service.acknowledge, incident_number(incident_id), owner)
        )


class IncidentResolveHandler(LakebookHandler):
    auth_scope = "incidents"

    @tornado.web.authenticated
    @authorized
    async def post(self, incident_id: str) -> None:
        note = self.text_field("note")
        self.reply(await self.blocking(self.service.resolve, incident_number(incident_id), note))


NAME = r"(?P<name>[^/]+)"
JOB = r"(?P<job>[^/]+)"

RULE = r"(?P<rule>[^/]+)"


def job_routes(
    segment: str, kind: JobKind
) -> list[tuple[str, type[LakebookHandler], dict[str, Any]]]:
    """The routes under one job: run, run history, notebook, data-quality rules."""
    base = f"{API}/pipelines/{NAME}/{segment}/{JOB}"
    options = {"kind": kind}
    return [
        (f"{base}/run", JobRunHandler, options),
        (f"{base}/runs", JobRunsHandler, options),
        (f"{base}/notebook", JobNotebookHandler, options),
        (f"{base}/dq-rules", RulesHandler, options),
        (f"{base}/dq-rules/{RULE}", RuleHandler, options),
    ]


# The one route table (paths relative to the server's base_url).
ROUTES: list[tuple[str, type[LakebookHandler], dict[str, Any]]] = [
    (f"{API}/pipelines", PipelinesHandler, {}),
    (f"{API}/pipelines/{NAME}", PipelineHandler, {}),
    (f"{API}/pipelines/{NAME}/ingest-jobs", JobsHandler, {"kind": "ingest_jobs"}),
    (f"{API}/pipelines/{NAME}/ingest-jobs/{JOB}", JobHandler, {"kind": "ingest_jobs"}),
    (f"{API}/pipelines/{NAME}/dataset-jobs", JobsHandler, {"kind": "dataset_jobs"}),
    (f"{API}/pipelines/{NAME}/dataset-jobs/{JOB}", JobHandler, {"kind": "dataset_jobs"}),
    *job_routes("ingest-jobs", "ingest_jobs"),
    *job_routes("dataset-jobs", "dataset_jobs"),
    (f"{API}/pipelines/{NAME}/run", PipelineRunHandler, {}),
    (f"{API}/pipelines/{NAME}/runs", PipelineRunsHandler, {}),
    (f"{API}/runs/(?P<run_id>[^/]+)", RunHandler, {}),
    (f"{API}/schemas", SchemasHandler, {}),
    (f"{API}/connections", ConnectionsHandler, {}),
    (f"{API}/openapi.yaml", OpenApiHandler, {}),
    (f"{API}/dq/incidents", IncidentsHandler, {}),
    (f"{API}/dq/incidents/(?P<incident_id>[0-9]+)", IncidentHandler, {}),
    (f"{API}/dq/incidents/(?P<incident_id>[0-9]+)/ack", IncidentAckHandler, {}),
    (f"{API}/dq/incidents/(?P<incident_id>[0-9]+)/resolve", IncidentResolveHandler, {}),
]
