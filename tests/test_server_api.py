"""The REST API of the jupyter_server extension, through a real server (pytest-jupyter)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from jupyter_server.auth import Authorizer, IdentityProvider, User
from tornado.httpclient import HTTPResponse
from traitlets import TraitError

from lakebook.metadata import MetadataStore
from lakebook.server.auth import LakebookAuthorizer, role_allows
from lakebook.server.handlers import OPENAPI_FILE, ROUTES
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


class TestConnections:
    @pytest.fixture
    def jp_root_dir(self, workspace_dir: Path) -> Path:
        """The workspace, with two named connections configured before the server starts."""
        config = workspace_dir / "jupyter_config.py"
        config.write_text(
            config.read_text()
            + "\nc.Lakebook.connections = {'warehouse': {'type': 'postgresql', "
            + "'url': 'postgresql://etl@db/warehouse', 'password_env': 'WAREHOUSE_PASSWORD'},"
            + " 'files': {'endpoint_url': 'http://127.0.0.1:9000'}}\n"
        )
        return workspace_dir

    async def test_connections_list_names_never_settings(
        self, jp_fetch: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("WAREHOUSE_PASSWORD", "s3cr3t-value")
        status, data = await call(jp_fetch, "GET", "connections")
        assert status == 200
        assert data == {
            "connections": [
                {"name": "files", "type": None},
                {"name": "warehouse", "type": "postgresql"},
            ]
        }
        text = json.dumps(data)
        assert "WAREHOUSE_PASSWORD" not in text and "etl@db" not in text and "s3cr3t" not in text


class TestWarmUp:
    async def test_the_server_reads_pipeline_files_as_it_starts(self, jp_serverapp: Any) -> None:
        service = jp_serverapp.web_app.settings["lakebook_service"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            workspace = service._workspace
            if workspace is not None and workspace._specs:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the start-up warm-up did not read the pipeline files")
        [(path, (_, spec))] = workspace._specs.items()
        assert spec.name == "jaffle_shop" and path.name == "pipeline.yaml"


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


# pipelines list, job runs, DQ rules, notebooks, incident filters ------------------------------
ORDERS = ("pipelines", "jaffle_shop", "dataset-jobs", "orders")
RAW_CUSTOMERS = ("pipelines", "jaffle_shop", "ingest-jobs", "raw_customers")
RULE = {"name": "amount_small", "check_type": "range", "column": "amount", "max": 10000}


def rule_names(data: dict[str, Any]) -> list[str]:
    return [rule["name"] for rule in data["rules"]]


def yaml_rules(workspace_dir: Path, job: str) -> dict[str, dict[str, Any]]:
    """The rules of a job as `pipeline.yaml` holds them, by name."""
    text = (workspace_dir / "pipelines" / "jaffle_shop" / "pipeline.yaml").read_text()
    document = yaml.safe_load(text)
    jobs = [*document.get("ingest_jobs", []), *document.get("dataset_jobs", [])]
    [item] = [item for item in jobs if item["name"] == job]
    return {rule["name"]: rule for rule in item.get("data_quality", [])}


async def wait_for_run(jp_fetch: Any, run_id: str, seconds: float = 240) -> dict[str, Any]:
    """Poll `runs/{id}` until the run ends."""
    deadline = time.monotonic() + seconds
    while True:
        status, run = await call(jp_fetch, "GET", "runs", run_id)
        assert status == 200
        if run["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return dict(run)
        await asyncio.sleep(0.5)


async def test_pipeline_list_has_descriptions_and_job_counts(
    jp_fetch: Any, workspace_dir: Path
) -> None:
    broken = workspace_dir / "pipelines" / "broken"
    broken.mkdir()
    (broken / "pipeline.yaml").write_text(
        "name: broken\ndescription: half done\ningest_jobs: [{name: x}]\n"
    )
    status, data = await call(jp_fetch, "GET", "pipelines")
    assert status == 200
    by_name = {item["name"]: item for item in data["pipelines"]}
    shop = by_name["jaffle_shop"]
    assert shop["description"].startswith("Orders, customers and payments")
    assert (shop["ingest_jobs"], shop["dataset_jobs"], shop["valid"]) == (3, 5, True)
    assert (by_name["broken"]["valid"], by_name["broken"]["ingest_jobs"]) == (False, 1)
    assert by_name["broken"]["description"] == "half done"
    required, declared = schema_fields("PipelineSummary")
    assert required <= set(shop) <= declared


async def test_fifty_pipelines_are_listed_quickly(jp_fetch: Any, workspace_dir: Path) -> None:
    text = (workspace_dir / "pipelines" / "jaffle_shop" / "pipeline.yaml").read_text()
    for number in range(49):
        folder = workspace_dir / "pipelines" / f"shop_{number}"
        folder.mkdir()
        (folder / "pipeline.yaml").write_text(
            text.replace("name: jaffle_shop", f"name: shop_{number}")
        )
    started = time.monotonic()
    status, data = await call(jp_fetch, "GET", "pipelines")
    elapsed = time.monotonic() - started
    assert status == 200 and len(data["pipelines"]) == 50
    assert all(item["valid"] and item["dataset_jobs"] == 5 for item in data["pipelines"])
    assert elapsed < 5, f"listing 50 pipelines took {elapsed:.1f}s"


async def test_blocking_calls_do_not_hold_the_event_loop(
    jp_fetch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakebook.server.service import LakebookService

    def slow_schemas(self: LakebookService) -> dict[str, Any]:
        time.sleep(1)
        return {}

    monkeypatch.setattr(LakebookService, "schemas", slow_schemas)
    started = time.monotonic()
    answers = await asyncio.gather(*(call(jp_fetch, "GET", "schemas") for _ in range(3)))
    assert answers == [(200, {})] * 3
    assert time.monotonic() - started < 2.5  # the three sleeps overlapped


async def test_dq_rule_crud_persists_to_pipeline_yaml(jp_fetch: Any, workspace_dir: Path) -> None:
    status, data = await call(jp_fetch, "GET", *ORDERS, "dq-rules")
    assert status == 200
    assert rule_names(data) == ["order_id_unique", "status_known", "amount_not_negative"]
    assert data["rules"][0] == {
        "name": "order_id_unique",
        "check_type": "unique",
        "column": "order_id",
    }

    status, created = await call(jp_fetch, "POST", *ORDERS, "dq-rules", body=RULE)
    assert (status, created) == (201, RULE)
    assert yaml_rules(workspace_dir, "orders")["amount_small"] == RULE
    status, data = await call(jp_fetch, "POST", *ORDERS, "dq-rules", body=RULE)
    assert status == 409 and "already has a data-quality rule `amount_small`" in data["message"]

    changed = {**RULE, "severity": "warn", "action_on_violation": "warn"}
    status, saved = await call(jp_fetch, "PUT", *ORDERS, "dq-rules", "amount_small", body=changed)
    assert (status, saved) == (200, changed)
    assert yaml_rules(workspace_dir, "orders")["amount_small"]["severity"] == "warn"

    status, data = await call(jp_fetch, "DELETE", *ORDERS, "dq-rules", "amount_small")
    assert status == 204
    assert "amount_small" not in yaml_rules(workspace_dir, "orders")
    assert len(yaml_rules(workspace_dir, "orders")) == 3

    # rules of an ingest job, which had none
    rule = {"name": "id_present", "check_type": "not_null", "column": "id"}
    status, _ = await call(jp_fetch, "POST", *RAW_CUSTOMERS, "dq-rules", body=rule)
    assert status == 201
    assert await call(jp_fetch, "GET", *RAW_CUSTOMERS, "dq-rules") == (200, {"rules": [rule]})
    status, _ = await call(jp_fetch, "DELETE", *RAW_CUSTOMERS, "dq-rules", "id_present")
    assert status == 204
    assert yaml_rules(workspace_dir, "raw_customers") == {}


async def test_dq_rule_errors(jp_fetch: Any, workspace_dir: Path) -> None:
    before = (workspace_dir / "pipelines" / "jaffle_shop" / "pipeline.yaml").read_text()
    no_bounds = {"name": "amount_bounded", "check_type": "range", "column": "amount"}
    status, data = await call(jp_fetch, "POST", *ORDERS, "dq-rules", body=no_bounds)
    assert status == 400 and data["error"] == "SpecValidationError"
    assert any("data_quality" in p["location"] for p in data["problems"]), data
    assert "give `min`, `max` or both" in json.dumps(data["problems"])
    status, data = await call(
        jp_fetch, "POST", *ORDERS, "dq-rules", body={**RULE, "check_type": "vibes"}
    )
    assert status == 400 and any("check_type" in p["location"] for p in data["problems"])
    status, data = await call(jp_fetch, "POST", *ORDERS, "dq-rules", body={**RULE, "name": "X y"})
    assert status == 400 and data["problems"][0]["location"] == "field `name`"
    status, data = await call(jp_fetch, "POST", *ORDERS, "dq-rules", body=["not", "a", "rule"])
    assert status == 400 and data["problems"]
    status, data = await call(
        jp_fetch, "PUT", *ORDERS, "dq-rules", "amount_not_negative", body={**no_bounds}
    )
    assert status == 400
    status, data = await call(
        jp_fetch,
        "PUT",
        *ORDERS,
        "dq-rules",
        "amount_not_negative",
        body={**RULE, "name": "order_id_unique"},
    )
    assert status == 409  # renaming onto another rule

    status, data = await call(jp_fetch, "PUT", *ORDERS, "dq-rules", "nope", body=RULE)
    assert status == 404 and data["error"] == "RuleNotFoundError"
    assert "`amount_not_negative`" in data["message"]
    status, data = await call(jp_fetch, "DELETE", *ORDERS, "dq-rules", "nope")
    assert status == 404
    status, data = await call(
        jp_fetch, "GET", "pipelines", "jaffle_shop", "dataset-jobs", "x", "dq-rules"
    )
    assert status == 404 and "`orders`" in data["message"]
    # `orders` is a dataset job, not an ingest job
    status, _ = await call(
        jp_fetch, "GET", "pipelines", "jaffle_shop", "ingest-jobs", "orders", "dq-rules"
    )
    assert status == 404
    status, _ = await call(
        jp_fetch, "POST", "pipelines", "nope", "dataset-jobs", "x", "dq-rules", body=RULE
    )
    assert status == 404
    assert (workspace_dir / "pipelines" / "jaffle_shop" / "pipeline.yaml").read_text() == before


async def test_incident_filters(jp_fetch: Any, workspace_dir: Path) -> None:
    store = MetadataStore(f"sqlite:///{workspace_dir / '.lakebook' / 'metadata.db'}")
    first = record(store, violation("r1", failing=3), [{"id": 1}])
    other_job = record(store, violation("r2", job="payments"), [])
    elsewhere = violation("r3", rule="other_rule")
    elsewhere.pipeline = "other_shop"
    other_pipeline = record(store, elsewhere, [])
    record(store, violation("r4", failing=5), [])  # updates `first`: last run r4
    store.acknowledge_incident(other_job, "erin")
    store.close()

    async def ids(**params: str) -> list[int]:
        status, data = await call(jp_fetch, "GET", "dq", "incidents", params=params)
        assert status == 200, data
        return [item["id"] for item in data["incidents"]]

    assert await ids() == [other_pipeline, other_job, first]
    assert await ids(status="acknowledged") == [other_job]
    assert await ids(dataset="silver.payments") == [other_job]
    assert await ids(pipeline="other_shop") == [other_pipeline]
    assert await ids(pipeline="shop", job="orders") == [first]
    assert await ids(run_id="r1") == [first]  # opened it
    assert await ids(run_id="r4") == [first]  # last violated it
    assert await ids(run_id="r9") == []
    assert await ids(status="open", job="payments") == []
    assert await ids(status="") == [other_pipeline, other_job, first]

    status, data = await call(jp_fetch, "GET", "dq", "incidents", params={"status": "closed"})
    assert status == 400
    assert "`status`" in data["message"] and "`open`, `acknowledged`, `resolved`" in data["message"]


async def test_job_run_and_notebook_errors(jp_fetch: Any) -> None:
    status, data = await call(jp_fetch, "POST", *ORDERS, "run")
    assert status == 400
    assert "`bronze.raw_orders`, which is not in the lake yet" in data["message"]
    assert "Run the pipeline first" in data["message"]
    assert await call(jp_fetch, "GET", "pipelines", "jaffle_shop", "runs") == (200, {"runs": []})
    for method, suffix in (("POST", "run"), ("GET", "runs"), ("POST", "notebook")):
        status, data = await call(
            jp_fetch, method, "pipelines", "jaffle_shop", "dataset-jobs", "nope", suffix
        )
        assert status == 404 and "`orders`" in data["message"], (method, suffix)
        status, _ = await call(
            jp_fetch, method, "pipelines", "jaffle_shop", "ingest-jobs", "orders", suffix
        )
        assert status == 404, (method, suffix)
        status, _ = await call(jp_fetch, method, "pipelines", "nope", "ingest-jobs", "x", suffix)
        assert status == 404, (method, suffix)
    status, data = await call(jp_fetch, "GET", *ORDERS, "runs", params={"limit": "all"})
    assert status == 400
    for path in (ORDERS, ("pipelines", "jaffle_shop")):
        status, data = await call(jp_fetch, "GET", *path, "runs", params={"limit": "9" * 30})
        assert status == 400 and "from 0 to 10000" in data["message"]
    # incident ids no row can have, and bodies of the wrong shape: 404 and 400, never 500
    status, _ = await call(jp_fetch, "POST", "dq", "incidents", "9" * 30, "ack")
    assert status == 404
    status, data = await call(jp_fetch, "POST", "dq", "incidents", "1", "ack", body={"owner": [1]})
    assert status == 400 and "`owner` must be text" in data["message"]
    status, data = await call(jp_fetch, "POST", "dq", "incidents", "1", "resolve", body=[None])
    assert status == 400 and "JSON object" in data["message"]
    assert await call(jp_fetch, "GET", *ORDERS, "runs") == (200, {"runs": []})


async def test_notebook_is_ejected_once_with_the_jobs_parameters(
    jp_fetch: Any, workspace_dir: Path
) -> None:
    status, data = await call(jp_fetch, "POST", *ORDERS, "notebook")
    assert (status, data) == (201, {"path": "pipelines/jaffle_shop/notebooks/orders.ipynb"})
    path = workspace_dir / data["path"]
    notebook = json.loads(path.read_text())
    [cell] = [c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", [])]
    source = "".join(cell["source"])
    assert "pipeline: str = 'jaffle_shop'" in source
    assert '"name": "orders"' in source and "sql_text" in source
    assert "workspace: str = '../../..'" in source
    path.write_text(path.read_text().replace("GROUP BY ALL", "GROUP BY ALL -- edited"))
    status, data = await call(jp_fetch, "POST", *ORDERS, "notebook")
    assert (status, data) == (200, {"path": "pipelines/jaffle_shop/notebooks/orders.ipynb"})
    assert "-- edited" in path.read_text()  # an existing copy is kept


def test_notebook_outside_the_contents_root_is_refused(workspace_dir: Path, tmp_path: Path) -> None:
    from lakebook.errors import LakebookError
    from lakebook.server.service import LakebookService

    (tmp_path / "elsewhere").mkdir()
    service = LakebookService(workspace_dir, contents_root=tmp_path / "elsewhere")
    with pytest.raises(LakebookError, match="not inside the Jupyter server's root_dir"):
        service.eject_notebook("jaffle_shop", "dataset_jobs", "orders")
    assert not (workspace_dir / "pipelines" / "jaffle_shop" / "notebooks").exists()
    assert service.contents_path(workspace_dir / "runs" / "x.ipynb") is None
    service.close()


@pytest.mark.slow
async def test_one_job_runs_alone_after_a_pipeline_run(jp_fetch: Any, workspace_dir: Path) -> None:
    status, started = await call(jp_fetch, "POST", "pipelines", "jaffle_shop", "run")
    assert status == 202
    full = await wait_for_run(jp_fetch, started["id"])
    assert full["status"] == "succeeded", full

    status, started = await call(jp_fetch, "POST", *ORDERS, "run")
    assert status == 202
    assert started == {
        "id": started["id"],
        "pipeline": "jaffle_shop",
        "job": "orders",
        "status": "pending",
    }
    run = await wait_for_run(jp_fetch, started["id"])
    assert (run["status"], run["trigger"]) == ("succeeded", "api"), run
    [job] = run["jobs"]
    assert (job["job"], job["status"]) == ("orders", "succeeded")
    [in_full] = [item for item in full["jobs"] if item["job"] == "orders"]
    assert (job["rows_read"], job["rows_written"]) == (in_full["rows_read"], 99)
    assert job["notebook_path"] == f"runs/jaffle_shop/{run['id']}/orders.ipynb"
    assert (workspace_dir / job["notebook_path"]).is_file()

    status, runs = await call(jp_fetch, "GET", "pipelines", "jaffle_shop", "runs")
    assert [item["id"] for item in runs["runs"]] == [run["id"], full["id"]]
    assert runs["runs"][0]["jobs_run"] == ["orders"]
    assert len(runs["runs"][1]["jobs_run"]) == 8 and "orders" in runs["runs"][1]["jobs_run"]
    status, history = await call(jp_fetch, "GET", *ORDERS, "runs")
    assert status == 200
    assert [item["run_id"] for item in history["runs"]] == [run["id"], full["id"]]
    assert all(item["status"] == "succeeded" for item in history["runs"])
    assert history["runs"][0]["rows_written"] == 99 and history["runs"][0]["started_at"]
    status, history = await call(jp_fetch, "GET", *ORDERS, "runs", params={"limit": "1"})
    assert [item["run_id"] for item in history["runs"]] == [run["id"]]


@pytest.mark.slow
async def test_a_job_run_uses_its_ejected_notebook(jp_fetch: Any, workspace_dir: Path) -> None:
    status, data = await call(jp_fetch, "POST", *RAW_CUSTOMERS, "notebook")
    assert status == 201
    path = workspace_dir / data["path"]
    notebook = json.loads(path.read_text())
    marker = "LAKEBOOK-MARKER-FROM-JUPYTERLAB"
    notebook["cells"].insert(
        1,
        {
            "cell_type": "code",
            "id": "lakebook-marker",
            "metadata": {},
            "source": f"print({marker!r})",
            "outputs": [],
            "execution_count": None,
        },
    )
    path.write_text(json.dumps(notebook))

    status, started = await call(jp_fetch, "POST", *RAW_CUSTOMERS, "run")
    assert status == 202
    run = await wait_for_run(jp_fetch, started["id"])
    assert run["status"] == "succeeded", run
    [job] = run["jobs"]
    assert job["job"] == "raw_customers" and job["rows_written"] == 100
    assert marker in (workspace_dir / job["notebook_path"]).read_text()


def concrete(pattern: str) -> str:
    """A request path matching a route pattern."""
    values = {
        "name": "jaffle_shop",
        "job": "raw_orders",
        "rule": "r",
        "run_id": "x",
        "incident_id": "1",
    }
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
    # 20 before job runs, job run history, notebooks and DQ rules (7 per kind of job); connections
    assert len(route_methods()) == 35
    assert any("dq-rules" in path for _, path in route_methods())


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


# OpenAPI --------------------------------------------------------------------------------------
HTTP_METHODS = ("get", "post", "put", "delete", "patch", "head", "options")


def openapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    return document


def template(pattern: str) -> str:
    """A tornado route pattern as an OpenAPI path template: `(?P<name>[^/]+)` -> `{name}`."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
    assert not set("()?[]\\") & set(path), f"route {pattern} is not a plain template"
    return path


def test_openapi_is_a_valid_openapi_3_1_document() -> None:
    from openapi_spec_validator import validate

    document = openapi()
    assert document["openapi"].startswith("3.1")
    validate(document)  # type: ignore[arg-type]


def test_openapi_documents_exactly_the_live_routes() -> None:
    live = {
        (method.lower(), template(pattern))
        for pattern, handler, _ in ROUTES
        for method in HTTP_METHODS
        if method in vars(handler)
    }
    documented = {
        (method, path)
        for path, item in openapi()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert live - documented == set(), "routes missing from openapi.yaml"
    assert documented - live == set(), "openapi.yaml documents operations that do not exist"


def test_openapi_path_parameters_match_the_routes() -> None:
    for path, item in openapi()["paths"].items():
        for method in (m for m in item if m in HTTP_METHODS):
            operation = item[method]
            refs = [*item.get("parameters", []), *operation.get("parameters", [])]
            params = [resolve(param) for param in refs]
            in_path = {param["name"] for param in params if param["in"] == "path"}
            assert in_path == set(re.findall(r"{(\w+)}", path)), (method, path)
            assert "401" in operation["responses"] and "403" in operation["responses"]
            if method in ("post", "put"):
                assert "400" in operation["responses"], (method, path)


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow one local `$ref` of openapi.yaml."""
    if "$ref" not in node:
        return node
    target: Any = openapi()
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return resolve(target)


def schema_fields(name: str) -> tuple[set[str], set[str]]:
    """(required, declared) property names of a components schema, through `allOf`."""
    schema = resolve({"$ref": f"#/components/schemas/{name}"})
    required: set[str] = set(schema.get("required", []))
    declared: set[str] = set(schema.get("properties", {}))
    for part in map(resolve, schema.get("allOf", [])):
        required |= set(part.get("required", []))
        declared |= set(part.get("properties", {}))
    return required, declared


async def test_real_error_bodies_have_the_documented_shapes(jp_fetch: Any) -> None:
    status, data = await call(jp_fetch, "POST", "pipelines", body={"name": "Bad Name"})
    assert status == 400
    required, declared = schema_fields("ValidationError")
    assert required <= set(data) <= declared
    problem_required, problem_declared = schema_fields("Problem")
    assert data["problems"]
    for problem in data["problems"]:
        assert problem_required == {"location", "message"} <= set(problem) <= problem_declared
        assert problem["location"] and problem["message"]

    status, data = await call(jp_fetch, "GET", "pipelines", "nope")
    assert status == 404
    required, declared = schema_fields("Error")
    assert required <= set(data) <= declared
    status, data = await call(jp_fetch, "POST", "pipelines", body={"name": "jaffle_shop"})
    assert status == 409 and required <= set(data) <= declared


async def test_openapi_is_served(jp_fetch: Any) -> None:
    response = await jp_fetch(*API, "openapi.yaml")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(response.body) == openapi()


# roles ----------------------------------------------------------------------------------------
class HeaderIdentityProvider(IdentityProvider):
    """Token-authenticated requests are the user named in `X-Test-User` (tests only)."""

    def generate_anonymous_user(self, handler: Any) -> User:
        return User(handler.request.headers.get("X-Test-User", "anonymous"))


def as_user(name: str) -> dict[str, Any]:
    return {"headers": {"X-Test-User": name}}


def test_role_table() -> None:
    for role in ("viewer", "analyst"):
        assert role_allows(role, "read", "pipelines")
        assert not role_allows(role, "write", "pipelines")
        assert not role_allows(role, "write", "incidents")
    for scope in ("pipelines", "jobs", "runs", "incidents"):
        assert role_allows("engineer", "write", scope)
    assert not role_allows("engineer", "write", "meta")
    assert not role_allows("engineer", "execute", "pipelines")
    assert role_allows("admin", "execute", "meta")
    assert not role_allows("nobody", "read", "pipelines")


def test_authorizer_config_is_checked_and_other_resources_are_delegated() -> None:
    authorizer = LakebookAuthorizer(roles={"alice": "admin"}, default_role="viewer")
    assert (authorizer.role_of("alice"), authorizer.role_of("bob")) == ("admin", "viewer")
    assert authorizer.is_authorized(None, User("bob"), "write", "contents")  # type: ignore[arg-type]
    assert not authorizer.is_authorized(None, User("bob"), "write", "lakebook")  # type: ignore[arg-type]
    assert LakebookAuthorizer().default_role == "engineer"
    with pytest.raises(TraitError, match="unknown role"):
        LakebookAuthorizer(roles={"bob": "superuser"})
    with pytest.raises(TraitError, match="unknown"):
        LakebookAuthorizer(default_role="root")


class TestRoles:
    @pytest.fixture
    def jp_server_config(self) -> dict[str, Any]:
        return {
            "ServerApp": {
                "jpserver_extensions": {"lakebook": True},
                "authorizer_class": LakebookAuthorizer,
                "identity_provider_class": HeaderIdentityProvider,
            },
            "LakebookAuthorizer": {
                "roles": {"vera": "viewer", "ana": "analyst", "erin": "engineer"},
                "default_role": "viewer",
            },
        }

    @pytest.mark.parametrize("user", ["vera", "ana", "someone_unlisted"])
    async def test_readers_may_read_but_not_write(self, jp_fetch: Any, user: str) -> None:
        status, data = await call(jp_fetch, "GET", "pipelines", **as_user(user))
        assert status == 200 and data["pipelines"]
        status, _ = await call(jp_fetch, "GET", "pipelines", "jaffle_shop", **as_user(user))
        assert status == 200
        writes = [
            ("POST", ("pipelines",), {"name": "x"}),
            ("PUT", ("pipelines", "jaffle_shop"), {"name": "jaffle_shop"}),
            ("DELETE", ("pipelines", "jaffle_shop"), None),
            ("POST", ("pipelines", "jaffle_shop", "ingest-jobs"), INGEST_JOB),
            ("POST", ("pipelines", "jaffle_shop", "run"), None),
            ("POST", ("dq", "incidents", "1", "ack"), None),
            ("POST", ("pipelines", "jaffle_shop", "dataset-jobs", "orders", "run"), None),
            ("POST", ("pipelines", "jaffle_shop", "dataset-jobs", "orders", "notebook"), None),
            ("POST", ("pipelines", "jaffle_shop", "dataset-jobs", "orders", "dq-rules"), RULE),
            (
                "DELETE",
                ("pipelines", "jaffle_shop", "dataset-jobs", "orders", "dq-rules", "x"),
                None,
            ),
        ]
        for method, path, body in writes:
            status, data = await call(jp_fetch, method, *path, body=body, **as_user(user))
            assert status == 403, (method, path)
            assert f"User `{user}` has role `" in data["message"]
            assert "may not write lakebook" in data["message"]
            assert "engineer" in data["message"]
        status, _ = await call(jp_fetch, "GET", "pipelines", "jaffle_shop", **as_user(user))
        assert status == 200  # still there
        status, data = await call(jp_fetch, "GET", *ORDERS, "dq-rules", **as_user(user))
        assert status == 200 and "amount_not_negative" in rule_names(data)

    async def test_engineer_may_write(self, jp_fetch: Any) -> None:
        status, data = await call(
            jp_fetch, "POST", "pipelines", body={"name": "shop2"}, **as_user("erin")
        )
        assert status == 201, data
        status, _ = await call(
            jp_fetch,
            "POST",
            "pipelines",
            "shop2",
            "ingest-jobs",
            body=INGEST_JOB,
            **as_user("erin"),
        )
        assert status == 201
        status, _ = await call(jp_fetch, "DELETE", "pipelines", "shop2", **as_user("erin"))
        assert status == 204
        status, _ = await call(jp_fetch, "POST", "dq", "incidents", "42", "ack", **as_user("erin"))
        assert status == 404  # authorized; the incident does not exist


class TestDefaultRole:
    """Without configuration every user is an engineer: single-user Jupyter keeps working."""

    @pytest.fixture
    def jp_server_config(self) -> dict[str, Any]:
        return {
            "ServerApp": {
                "jpserver_extensions": {"lakebook": True},
                "authorizer_class": LakebookAuthorizer,
            }
        }

    async def test_token_user_may_write(self, jp_fetch: Any) -> None:
        status, data = await call(jp_fetch, "POST", "pipelines", body={"name": "shop2"})
        assert status == 201, data
        status, _ = await call(jp_fetch, "DELETE", "pipelines", "shop2")
        assert status == 204
