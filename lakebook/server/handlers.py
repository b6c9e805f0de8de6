"""HTTP handlers of the REST API: one route table, no logic, errors translated in one place.

Every handler is authenticated (`@tornado.web.authenticated`) and goes through Jupyter's Authorizer
(`@authorized`, resource `lakebook`: GET is `read`, the rest `write`). Each handler names the
`auth_scope` it belongs to (pipelines, jobs, runs, incidents, meta) so that an Authorizer such as
`LakebookAuthorizer` can grant writes per area. Handlers parse the request, call `LakebookService`
and write JSON. `openapi.yaml` next to this file documents the routes (a test keeps them in step).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

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
    RunNotFoundError,
    SpecValidationError,
    WorkspaceNotFoundError,
)
from lakebook.server.service import LakebookService
from lakebook.workspace import JobKind

API = "/lakebook/api"
AUTH_RESOURCE = "lakebook"
OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")

# Domain errors -> HTTP status; the first matching class wins. Anything else from lakebook is a
# problem with the request (400); only framework bugs become 500.
ERROR_STATUS: list[tuple[type[LakebookError], int]] = [
    (PipelineNotFoundError, 404),
    (JobNotFoundError, 404),
    (RunNotFoundError, 404),
    (IncidentNotFoundError, 404),
    (WorkspaceNotFoundError, 404),
    (PipelineExistsError, 409),
    (JobExistsError, 409),
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

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, default=str))

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
    def get(self) -> None:
        self.reply({"pipelines": self.service.pipelines()})

    @tornado.web.authenticated
    @authorized
    def post(self) -> None:
        self.reply(self.service.create_pipeline(self.body()), 201)


class PipelineHandler(LakebookHandler):
    auth_scope = "pipelines"

    @tornado.web.authenticated
    @authorized
    def get(self, name: str) -> None:
        self.reply(self.service.pipeline(name))

    @tornado.web.authenticated
    @authorized
    def put(self, name: str) -> None:
        self.reply(self.service.update_pipeline(name, self.body()))

    @tornado.web.authenticated
    @authorized
    def delete(self, name: str) -> None:
        self.service.delete_pipeline(name)
        self.set_status(204)
        self.finish()


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
    def post(self, name: str) -> None:
        data = self.body()
        job = data.get("name") if isinstance(data, dict) else None
        self.reply(self.service.save_job(name, self.kind, str(job or ""), data, create=True), 201)


class JobHandler(JobKindHandler):
    @tornado.web.authenticated
    @authorized
    def put(self, name: str, job: str) -> None:
        self.reply(self.service.save_job(name, self.kind, job, self.body(), create=False))

    @tornado.web.authenticated
    @authorized
    def delete(self, name: str, job: str) -> None:
        self.service.delete_job(name, self.kind, job)
        self.set_status(204)
        self.finish()


class PipelineRunHandler(LakebookHandler):
    auth_scope = "runs"

    @tornado.web.authenticated
    @authorized
    def post(self, name: str) -> None:
        self.reply(self.service.start_run(name), 202)


class PipelineRunsHandler(LakebookHandler):
    auth_scope = "runs"

    @tornado.web.authenticated
    @authorized
    def get(self, name: str) -> None:
        limit = self.get_query_argument("limit", "20")
        if not limit.isdigit():
            raise tornado.web.HTTPError(400, "`limit` must be a whole number.")
        self.reply({"runs": self.service.runs(name, int(limit))})


class RunHandler(LakebookHandler):
    auth_scope = "runs"

    @tornado.web.authenticated
    @authorized
    def get(self, run_id: str) -> None:
        self.reply(self.service.run(run_id))


class SchemasHandler(LakebookHandler):
    @tornado.web.authenticated
    @authorized
    def get(self) -> None:
        self.reply(self.service.schemas())


class OpenApiHandler(LakebookHandler):
    @tornado.web.authenticated
    @authorized
    def get(self) -> None:
        self.finish(
            OPENAPI_FILE.read_text(encoding="utf-8"),
            set_content_type="application/yaml; charset=utf-8",
        )


class IncidentsHandler(LakebookHandler):
    auth_scope = "incidents"

    @tornado.web.authenticated
    @authorized
    def get(self) -> None:
        status = self.get_query_argument("status", None)
        dataset = self.get_query_argument("dataset", None)
        self.reply({"incidents": self.service.incidents(status, dataset)})


class IncidentHandler(LakebookHandler):
    auth_scope = "incidents"

    @tornado.web.authenticated
    @authorized
    def get(self, incident_id: str) -> None:
        self.reply(self.service.incident(int(incident_id)))


class IncidentAckHandler(LakebookHandler):
    auth_scope = "incidents"

    @tornado.web.authenticated
    @authorized
    def post(self, incident_id: str) -> None:
        owner = self.body().get("owner") or self.current_user.username
        self.reply(self.service.acknowledge(int(incident_id), owner))


class IncidentResolveHandler(LakebookHandler):
    auth_scope = "incidents"

    @tornado.web.authenticated
    @authorized
    def post(self, incident_id: str) -> None:
        self.reply(self.service.resolve(int(incident_id), self.body().get("note")))


NAME = r"(?P<name>[^/]+)"
JOB = r"(?P<job>[^/]+)"

# The one route table (paths relative to the server's base_url).
ROUTES: list[tuple[str, type[LakebookHandler], dict[str, Any]]] = [
    (f"{API}/pipelines", PipelinesHandler, {}),
    (f"{API}/pipelines/{NAME}", PipelineHandler, {}),
    (f"{API}/pipelines/{NAME}/ingest-jobs", JobsHandler, {"kind": "ingest_jobs"}),
    (f"{API}/pipelines/{NAME}/ingest-jobs/{JOB}", JobHandler, {"kind": "ingest_jobs"}),
    (f"{API}/pipelines/{NAME}/dataset-jobs", JobsHandler, {"kind": "dataset_jobs"}),
    (f"{API}/pipelines/{NAME}/dataset-jobs/{JOB}", JobHandler, {"kind": "dataset_jobs"}),
    (f"{API}/pipelines/{NAME}/run", PipelineRunHandler, {}),
    (f"{API}/pipelines/{NAME}/runs", PipelineRunsHandler, {}),
    (f"{API}/runs/(?P<run_id>[^/]+)", RunHandler, {}),
    (f"{API}/schemas", SchemasHandler, {}),
    (f"{API}/openapi.yaml", OpenApiHandler, {}),
    (f"{API}/dq/incidents", IncidentsHandler, {}),
    (f"{API}/dq/incidents/(?P<incident_id>[0-9]+)", IncidentHandler, {}),
    (f"{API}/dq/incidents/(?P<incident_id>[0-9]+)/ack", IncidentAckHandler, {}),
    (f"{API}/dq/incidents/(?P<incident_id>[0-9]+)/resolve", IncidentResolveHandler, {}),
]
