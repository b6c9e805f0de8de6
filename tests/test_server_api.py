"""The REST API of the jupyter_server extension, through a real server (pytest-jupyter)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth import Authorizer
from tornado.httpclient import HTTPResponse

from lakebook.metadata import MetadataStore
from lakebook.server.handlers import ROUTES
from tests.test_dq_incidents import record, violation

pytest_plugins = ["pytest_jupyter.jupyter_server"]

API = ("lakebook", "api")


@pytest.fixture
def jp_root_dir(workspace_dir: Path) -> Path:
    """The server's root folder is the workspace (the extension's default)."""
    return workspace_dir


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"lakebook": True}}}


async def call(jp_fetch: Any, method: str, *path: str, body: Any = None, **kwargs: Any) -> Any:
    """Fetch `/lakebook/api/<path>`; returns (status, decoded JSON or None)."""
    if body is not None:
        kwargs["body"] = json.dumps(body)
    elif method in ("POST", "PUT"):
        kwargs["body"] = ""
    response: HTTPResponse = await jp_fetch(*API, *path, method=method, raise_error=False, **kwargs)
    data = json.loads(response.body) if response.body else None
    return response.code, data


INGEST_JOB = {
    "name": "raw_extra",
    "source_type": "local_path",
    "format": "csv",
    "config": {"file": {"path": "data/raw_customers.csv"}},
}


async def test_lists_and_reads_pipelines(jp_fetch: Any) -> None:
    status, data = await call(jp_fetch, "GET", "pipelines")
    assert status == 200
    [item] = data["pipelines"]
    assert (item["name"], item["valid"], item["last_run"]) == ("jaffle_shop", True, None)
    status, spec = await call(jp_fetch, "GET", "pipelines", "jaffle_shop")
    assert status == 200
    assert spec["name"] == "jaffle_shop"
    assert [job["name"] for job in spec["ingest_jobs"]][:2] == ["raw_customers", "raw_orders"]


async def test_create_update_delete_pipeline(jp_fetch: Any, workspace_dir: Path) -> None:
    spec = {"name": "shop2", "ingest_jobs": [INGEST_JOB]}
    status, created = await call(jp_fetch, "POST", "pipelines", body=spec)
    assert status == 201, created
    assert created["name"] == "shop2"
    assert (workspace_dir / "pipelines" / "shop2" / "pipeline.yaml").is_file()

    status, again = await call(jp_fetch, "POST", "pipelines", body=spec)
    assert status == 409 and "already exists" in again["message"]

    status, updated = await call(
        jp_fetch, "PUT", "pipelines", "shop2", body={**spec, "description": "second shop"}
    )
    assert status == 200 and updated["description"] == "second shop"
    status, renamed = await call(jp_fetch, "PUT", "pipelines", "shop2", body={**spec, "name": "x"})
    assert status == 400
    assert renamed["problems"][0]["location"] == "field `name`"

    status, _ = await call(jp_fetch, "DELETE", "pipelines", "shop2")
    assert status == 204
    assert not (workspace_dir / "pipelines" / "shop2").exists()
    status, missing = await call(jp_fetch, "GET", "pipelines", "shop2")
    assert status == 404 and "jaffle_shop" in missing["message"]


async def test_invalid_spec_is_a_400_listing_field_level_problems(jp_fetch: Any) -> None:
    bad_job = {**INGEST_JOB, "source_type": "carrier_pigeon", "max_invalid_ratio": 7}
    status, data = await call(
        jp_fetch, "POST", "pipelines", body={"name": "Bad Name", "ingest_jobs": [bad_job]}
    )
    assert status == 400
    assert data["error"] == "SpecValidationError"
    locations = " ".join(problem["location"] for problem in data["problems"])
    assert "name" in locations and "source_type" in locations
    assert all(problem["message"] for problem in data["problems"])

    status, data = await call(jp_fetch, "POST", "pipelines", body=["not", "a", "mapping"])
    assert status == 400 and data["problems"]
    status, data = await call(
        jp_fetch, "POST", "pipelines", body=None, allow_nonstandard_methods=True
    )
    assert status == 400
    response = await jp_fetch(*API, "pipelines", method="POST", body="{oops", raise_error=False)
    assert response.code == 400


async def test_ingest_job_create_update_delete(jp_fetch: Any) -> None:
    path = ("pipelines", "jaffle_shop", "ingest-jobs")
    status, job = await call(jp_fetch, "POST", *path, body=INGEST_JOB)
    assert status == 201 and job["name"] == "raw_extra"
    status, data = await call(jp_fetch, "POST", *path, body=INGEST_JOB)
    assert status == 409
    status, data = await call(jp_fetch, "POST", *path, body={**INGEST_JOB, "name": "orders"})
    assert status == 409  # a dataset job already has that name

    status, job = await call(
        jp_fetch, "PUT", *path, "raw_extra", body={**INGEST_JOB, "description": "more"}
    )
    assert status == 200 and job["description"] == "more"
    status, data = await call(
        jp_fetch, "PUT", *path, "raw_extra", body={**INGEST_JOB, "format": "xls"}
    )
    assert status == 400 and any("format" in p["location"] for p in data["problems"])
    status, data = await call(jp_fetch, "PUT", *path, "nope", body=INGEST_JOB)
    assert status == 404 and "raw_extra" in data["message"]

    # other jobs read bronze.raw_orders: removing its job is refused with the graph problem
    status, data = await call(jp_fetch, "DELETE", *path, "raw_orders")
    assert status == 400 and "raw_orders" in data["problems"][0]["message"]
    status, _ = await call(jp_fetch, "DELETE", *path, "raw_extra")
    assert status == 204
    status, _ = await call(jp_fetch, "DELETE", *path, "raw_extra")
    assert status == 404
    status, spec = await call(jp_fetch, "GET", "pipelines", "jaffle_shop")
    assert "raw_extra" not in [job["name"] for job in spec["ingest_jobs"]]


async def test_dataset_job_create_update_delete(jp_fetch: Any) -> None:
    path = ("pipelines", "jaffle_shop", "dataset-jobs")
    job = {
        "name": "big_orders",
        "layer": "gold",
        "dataset_type": "metric_table",
        "inputs": [{"dataset": "silver.orders", "alias": "o"}],
        "sql_text": "SELECT * FROM o WHERE amount > 100",
    }
    status, created = await call(jp_fetch, "POST", *path, body=job)
    assert status == 201, created
    status, data = await call(
        jp_fetch, "PUT", *path, "big_orders", body={**job, "inputs": [{"dataset": "silver.nope"}]}
    )
    assert status == 400 and "silver.nope" in json.dumps(data["problems"])
    status, data = await call(
        jp_fetch, "PUT", *path, "big_orders", body={**job, "sql_text": "SELEC"}
    )
    assert status == 400
    status, _ = await call(jp_fetch, "DELETE", *path, "big_orders")
    assert status == 204
    status, _ = await call(jp_fetch, "POST", "pipelines", "nope", "dataset-jobs", body=job)
    assert status == 404


async def test_schemas(jp_fetch: Any) -> None:
    status, data = await call(jp_fetch, "GET", "schemas")
    assert status == 200
    assert set(data) == {"pipeline", "ingest_job", "dataset_job"}
    assert "source_type" in data["ingest_job"]["properties"]


async def test_runs_and_incidents_404_and_empty(jp_fetch: Any) -> None:
    assert await call(jp_fetch, "GET", "pipelines", "jaffle_shop", "runs") == (200, {"runs": []})
    status, _ = await call(jp_fetch, "GET", "pipelines", "nope", "runs")
    assert status == 404
    status, data = await call(jp_fetch, "GET", "runs", "20990101T000000Z-abcdef")
    assert status == 404 and data["error"] == "RunNotFoundError"
    status, _ = await call(jp_fetch, "POST", "pipelines", "nope", "run")
    assert status == 404
    assert await call(jp_fetch, "GET", "dq", "incidents") == (200, {"incidents": []})
    status, _ = await call(jp_fetch, "GET", "dq", "incidents", "42")
    assert status == 404
    status, _ = await call(jp_fetch, "POST", "dq", "incidents", "42", "ack")
    assert status == 404


async def test_incident_detail_ack_and_resolve(jp_fetch: Any, workspace_dir: Path) -> None:
    store = MetadataStore(f"sqlite:///{workspace_dir / '.lakebook' / 'metadata.db'}")
    incident_id = record(store, violation("r1", failing=3), [{"id": 1}])
    store.close()

    status, data = await call(jp_fetch, "GET", "dq", "incidents", params={"status": "open"})
    assert status == 200 and [item["id"] for item in data["incidents"]] == [incident_id]
    status, incident = await call(jp_fetch, "GET", "dq", "incidents", str(incident_id))
    assert status == 200 and incident["sample"] == [{"id": 1}]
    status, acked = await call(jp_fetch, "POST", "dq", "incidents", str(incident_id), "ack")
    assert status == 200 and acked["status"] == "acknowledged" and acked["owner"]
    status, resolved = await call(
        jp_fetch, "POST", "dq", "incidents", str(incident_id), "resolve", body={"note": "fixed"}
    )
    assert status == 200 and resolved["status"] == "resolved"
    status, data = await call(jp_fetch, "POST", "dq", "incidents", str(incident_id), "ack")
    assert status == 409


def concrete(pattern: str) -> str:
    """A request path matching a route pattern."""
    values = {"name": "jaffle_shop", "job": "raw_orders", "run_id": "x", "incident_id": "1"}
    for key, value in values.items():
        pattern = pattern.replace(f"(?P<{key}>[^/]+)", value).replace(f"(?P<{key}>[0-9]+)", value)
    return pattern


def route_methods() -> list[tuple[str, str]]:
    return [
        (method, concrete(pattern))
        for pattern, handler, _ in ROUTES
        for method in ("GET", "POST", "PUT", "DELETE")
        if method.lower() in vars(handler)
    ]


def test_every_route_is_covered() -> None:
    assert len(route_methods()) == 19


@pytest.mark.parametrize(("method", "path"), route_methods())
async def test_unauthenticated_requests_are_refused(
    jp_fetch: Any, workspace_dir: Path, method: str, path: str
) -> None:
    before = sorted(p.name for p in (workspace_dir / "pipelines").rglob("*"))
    body = "{}" if method in ("POST", "PUT") else None
    response = await jp_fetch(
        path, method=method, body=body, headers={"Authorization": ""}, raise_error=False
    )
    assert response.code in (401, 403)
    assert sorted(p.name for p in (workspace_dir / "pipelines").rglob("*")) == before


class ReadOnlyAuthorizer(Authorizer):
    """Lets users read lakebook resources, never change them."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return not (resource == "lakebook" and action != "read")


class TestAuthorizer:
    @pytest.fixture
    def jp_server_config(self) -> dict[str, Any]:
        return {
            "ServerApp": {
                "jpserver_extensions": {"lakebook": True},
                "authorizer_class": ReadOnlyAuthorizer,
            }
        }

    async def test_writes_are_forbidden_reads_allowed(self, jp_fetch: Any) -> None:
        status, _ = await call(jp_fetch, "GET", "pipelines")
        assert status == 200
        status, _ = await call(jp_fetch, "POST", "pipelines", body={"name": "x"})
        assert status == 403
        status, _ = await call(jp_fetch, "DELETE", "pipelines", "jaffle_shop")
        assert status == 403
        status, _ = await call(jp_fetch, "POST", "pipelines", "jaffle_shop", "run")
        assert status == 403


@pytest.mark.slow
async def test_run_starts_in_the_background_and_is_polled(jp_fetch: Any) -> None:
    status, started = await call(jp_fetch, "POST", "pipelines", "jaffle_shop", "run")
    assert status == 202 and started["status"] == "pending"
    run_id = started["id"]
    deadline = time.monotonic() + 240
    while True:
        status, run = await call(jp_fetch, "GET", "runs", run_id)
        assert status == 200
        if run["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert run["status"] == "succeeded", run
    assert {job["job"] for job in run["jobs"]} >= {"raw_orders", "orders", "daily_revenue"}
    assert all(job["status"] == "succeeded" for job in run["jobs"])
    status, runs = await call(jp_fetch, "GET", "pipelines", "jaffle_shop", "runs")
    assert [item["id"] for item in runs["runs"]] == [run_id]
    status, data = await call(jp_fetch, "GET", "pipelines")
    assert data["pipelines"][0]["last_run"]["status"] == "succeeded"
