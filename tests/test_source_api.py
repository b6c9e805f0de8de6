"""The API source against a real HTTP server on 127.0.0.1: pagination styles, raw pages in Landing,
retries, auth, watermark push-down, POST bodies and the errors a user sees."""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from deltalake import DeltaTable
from pydantic import ValidationError

import lakebook.ingest
from lakebook.errors import IngestError
from lakebook.results import JobResult
from lakebook.runtime import JobContext
from lakebook.sources import Fetched, FetchRequest, source_for
from lakebook.sources import api as api_source
from lakebook.sources.api import ApiSource, Redactor, retry_after_seconds
from lakebook.specs import IngestJob

TOKEN = "s3cr3t-b3arer-t0ken"
USERNAME, PASSWORD = "reader", "pa55-w0rd!"
API_KEY = "k3y/with+odd=chars"
RECORDS = [
    {"id": i, "name": "Zoë" if i == 7 else f"item {i}", "updated_at": f"2026-01-{i:02d}T00:00:00Z"}
    for i in range(1, 26)
]
PAGE_SIZE = 10


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class FakeApi:
    """The server's state: what it received, what it sent, scripted transient failures."""

    base_url: str = ""
    seen: list[Seen] = field(default_factory=list)
    sent: dict[str, list[bytes]] = field(default_factory=dict)
    failures: dict[str, list[Reply | None]] = field(default_factory=dict)  # None: serve it
    delays: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    def handle(self, seen: Seen) -> Reply:
        with self.lock:
            self.seen.append(seen)
            delays = self.delays.get(seen.path)
            delay = delays.pop(0) if delays else 0.0
            scripted = self.failures.get(seen.path)
            failure = scripted.pop(0) if scripted else None
        if delay:
            time.sleep(delay)
        if failure is not None:
            return failure
        route = ROUTES.get(seen.path)
        if route is None:
            return reply({"error": f"no route {seen.path}"}, 404)
        status, headers, body = route(self, seen)
        if status == 200:
            with self.lock:
                self.sent.setdefault(seen.path, []).append(body)
        return status, headers, body


def reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    # Indented, non-ASCII, trailing newline: byte-for-byte comparisons mean something.
    body = (json.dumps(payload, indent=1, ensure_ascii=False) + "\n").encode()
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body


def arg(seen: Seen, name: str, default: str = "") -> str:
    return seen.query.get(name, [default])[0]


def window(start: int, size: int = PAGE_SIZE, rows: list[dict[str, Any]] = RECORDS) -> Any:
    return rows[start : start + size]


def paged(api: FakeApi, seen: Seen) -> Reply:
    page, size = int(arg(seen, "page", "1")), int(arg(seen, "page_size", "10"))
    return reply({"data": window((page - 1) * size, size), "page": page})


def cursor(api: FakeApi, seen: Seen) -> Reply:
    name = "after" if seen.path == "/cursor-after" else "cursor"
    start = int(arg(seen, name, "c0")[1:])
    following = f"c{start + PAGE_SIZE}" if start + PAGE_SIZE < len(RECORDS) else None
    return reply({"results": window(start), "meta": {"next": following}})


def cursor_url(api: FakeApi, seen: Seen) -> Reply:
    start = int(arg(seen, "offset", "0"))
    following = start + PAGE_SIZE
    url = f"{api.base_url}/cursor-url?offset={following}" if following < len(RECORDS) else None
    return reply({"results": window(start), "next_url": url})


def linked(api: FakeApi, seen: Seen) -> Reply:
    """A top-level list with a Link header; also serves the retry and API-key routes."""
    rows = RECORDS
    if seen.path == "/since":
        since = arg(seen, "updated_since")
        rows = [row for row in RECORDS if str(row["updated_at"]) >= since]
    start = int(arg(seen, "after", "0"))
    headers = {}
    if start + PAGE_SIZE < len(rows):
        query = f"after={start + PAGE_SIZE}"
        if "updated_since" in seen.query:
            query += f"&updated_since={arg(seen, 'updated_since')}"
        if "api_key" in seen.query:  # like many APIs, the next link repeats the key
            query += "&api_key=" + quote(arg(seen, "api_key"), safe="")
        headers["Link"] = f'<{api.base_url}{seen.path}?{query}>; rel="next", <x>; rel="last"'
    return reply(window(start, rows=rows), headers=headers)


def unauthorized() -> Reply:
    return reply({"error": "unauthorized", "detail": "bad or missing credentials"}, 401)


def bearer(api: FakeApi, seen: Seen) -> Reply:
    if seen.headers.get("authorization") != f"Bearer {TOKEN}":
        return unauthorized()
    return paged(api, seen)


def basic(api: FakeApi, seen: Seen) -> Reply:
    expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    if seen.headers.get("authorization") != expected:
        return unauthorized()
    return paged(api, seen)


def key_header(api: FakeApi, seen: Seen) -> Reply:
    header = "x-custom-key" if seen.path == "/key-custom" else "x-api-key"
    if seen.headers.get(header) != API_KEY:
        return unauthorized()
    return linked(api, seen)


def key_query(api: FakeApi, seen: Seen) -> Reply:
    if seen.query.get("api_key") != [API_KEY]:  # exactly once
        return unauthorized()
    return linked(api, seen)


def search(api: FakeApi, seen: Seen) -> Reply:
    query = json.loads(seen.body)
    rows = [row for row in RECORDS if row["id"] >= query["filter"]["min_id"]]
    start = int(arg(seen, "cursor", "c0")[1:])
    following = f"c{start + 3}" if start + 3 < len(rows) else None
    return reply({"hits": {"items": window(start, 3, rows)}, "next": following})


def forever(api: FakeApi, seen: Seen) -> Reply:
    page = int(arg(seen, "page", "1"))
    return reply({"data": [{"id": page}]})


def same_cursor(api: FakeApi, seen: Seen) -> Reply:
    return reply({"results": [{"id": 1}], "meta": {"next": "again"}})


def empty(api: FakeApi, seen: Seen) -> Reply:
    return reply({"data": []})


def not_json(api: FakeApi, seen: Seen) -> Reply:
    return 200, {"Content-Type": "text/html"}, b"<html>login here</html>"


def bad_request(api: FakeApi, seen: Seen) -> Reply:
    return reply({"error": "unknown parameter `colour`"}, 400)


ROUTES: dict[str, Callable[[FakeApi, Seen], Reply]] = {
    "/paged": paged,
    "/cursor": cursor,
    "/cursor-after": cursor,
    "/cursor-url": cursor_url,
    "/linked": linked,
    "/flaky": linked,
    "/slow": linked,
    "/since": linked,
    "/bearer": bearer,
    "/basic": basic,
    "/key-header": key_header,
    "/key-custom": key_header,
    "/key-query": key_query,
    "/search": search,
    "/forever": forever,
    "/same-cursor": same_cursor,
    "/empty": empty,
    "/not-json": not_json,
    "/bad-request": bad_request,
}


class Handler(BaseHTTPRequestHandler):
    server: ApiServer

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.answer()

    def answer(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(
            self.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {key.lower(): value for key, value in self.headers.items()},
            self.rfile.read(length),
        )
        status, headers, body = self.server.api.handle(seen)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ApiServer(ThreadingHTTPServer):
    api: FakeApi
    block_on_close = False  # a handler still sleeping for the timeout test must not hold teardown

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client hung up on a slow answer: expected in the timeout test


@pytest.fixture
def server() -> Iterator[FakeApi]:
    """A fresh fake API on 127.0.0.1 (port chosen by the OS) for one test."""
    httpd = ApiServer(("127.0.0.1", 0), Handler)
    httpd.api = FakeApi(base_url=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield httpd.api
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retry waits the source asked for (it does not actually sleep)."""
    waits: list[float] = []
    monkeypatch.setattr(api_source, "sleep", waits.append)
    return waits


CONNECTIONS: dict[str, dict[str, Any]] = {
    "bearer_api": {"token": TOKEN},
    "basic_api": {"username": USERNAME, "password": PASSWORD},
    "key_api": {"key": API_KEY},
    "key_custom_header": {"key": API_KEY, "header": "X-Custom-Key"},
    "key_query_api": {"key": API_KEY, "query_param": "api_key"},
    "wrong_token": {"token": "not-the-token-but-secret"},
    "wrong_key": {"key": "wr0ng/key", "query_param": "api_key"},
    "no_token": {"url": "whatever"},
}


def make_job(url: str, **api: Any) -> IngestJob:
    return IngestJob.model_validate(
        {
            "name": "events",
            "source_type": "api",
            "format": "jsonl",
            "config": {"api": {"url": url, **api}},
        }
    )


def fetch(job: IngestJob, landing: Path, lower_bound: str | None = None) -> Fetched:
    landing.mkdir(parents=True, exist_ok=True)
    request = FetchRequest(
        job=job,
        landing=landing,
        workspace=landing.parent,
        pipeline_dir=landing.parent,
        lower_bound=lower_bound,
        loaded=frozenset(),
        connection=lambda name: dict(CONNECTIONS[name]),
    )
    return source_for(job).fetch(request)


def loaded_records(fetched: Fetched) -> list[dict[str, Any]]:
    assert len(fetched.files) == 1
    load = fetched.files[0]
    assert load.format == "jsonl" and load.path.name == "records.jsonl"
    return [json.loads(line) for line in load.path.read_text(encoding="utf-8").splitlines()]


def ids(fetched: Fetched) -> list[int]:
    return [record["id"] for record in loaded_records(fetched)]


def assert_pages_saved(landing: Path, sent: list[bytes]) -> None:
    """Landing holds every body the server sent, byte-for-byte and in order, plus the records."""
    pages = sorted(landing.glob("page-*.json"))
    assert [page.name for page in pages] == [f"page-{n:05d}.json" for n in range(1, len(sent) + 1)]
    assert [page.read_bytes() for page in pages] == sent
    assert {path.name for path in landing.iterdir()} == {p.name for p in pages} | {"records.jsonl"}


ALL_IDS = [record["id"] for record in RECORDS]


def test_registered_for_source_type_api() -> None:
    assert isinstance(source_for(make_job("http://example.invalid")), ApiSource)


def test_page_number_pagination_stops_at_the_empty_page(server: FakeApi, tmp_path: Path) -> None:
    job = make_job(
        f"{server.base_url}/paged",
        records_path="data",
        pagination={"page_param": "page", "page_size": PAGE_SIZE},
    )
    fetched = fetch(job, tmp_path / "landing")
    assert ids(fetched) == ALL_IDS
    assert [(arg(s, "page"), arg(s, "page_size")) for s in server.seen] == [
        ("1", "10"),
        ("2", "10"),
        ("3", "10"),
        ("4", "10"),
    ]
    assert_pages_saved(tmp_path / "landing", server.sent["/paged"])
    assert loaded_records(fetched)[6]["name"] == "Zoë"
    assert fetched.files[0].source_uri == f"{server.base_url}/paged?page_size=10&page=1"
    assert fetched.manifest == [] and not fetched.watermark_pushed_down


@pytest.mark.parametrize(("path", "page_param"), [("/cursor", None), ("/cursor-after", "after")])
def test_next_token_pagination(
    server: FakeApi, tmp_path: Path, path: str, page_param: str | None
) -> None:
    job = make_job(
        f"{server.base_url}{path}",
        records_path="results",
        pagination={"next_token_path": "meta.next", "page_param": page_param},
    )
    fetched = fetch(job, tmp_path / "landing")
    assert ids(fetched) == ALL_IDS
    name = page_param or "cursor"
    assert [s.query.get(name) for s in server.seen] == [None, ["c10"], ["c20"]]
    assert_pages_saved(tmp_path / "landing", server.sent[path])


def test_next_token_that_is_a_url_is_followed_as_is(server: FakeApi, tmp_path: Path) -> None:
    job = make_job(
        f"{server.base_url}/cursor-url",
        records_path="results",
        pagination={"next_token_path": "next_url", "page_size": PAGE_SIZE},
    )
    fetched = fetch(job, tmp_path / "landing")
    assert ids(fetched) == ALL_IDS
    # The first request carries lakebook's parameters; the API's own URLs are used unchanged.
    assert [s.query for s in server.seen] == [
        {"page_size": ["10"]},
        {"offset": ["10"]},
        {"offset": ["20"]},
    ]
    assert_pages_saved(tmp_path / "landing", server.sent["/cursor-url"])


def test_link_header_pagination_and_top_level_list(server: FakeApi, tmp_path: Path) -> None:
    fetched = fetch(make_job(f"{server.base_url}/linked"), tmp_path / "landing")
    assert ids(fetched) == ALL_IDS
    assert [s.query for s in server.seen] == [{}, {"after": ["10"]}, {"after": ["20"]}]
    assert_pages_saved(tmp_path / "landing", server.sent["/linked"])
    assert server.seen[0].headers["accept"] == "application/json"


def test_503s_are_retried_with_exponential_backoff(
    server: FakeApi, tmp_path: Path, sleeps: list[float]
) -> None:
    server.failures["/flaky"] = [reply({"error": "busy"}, 503)] * 3
    fetched = fetch(make_job(f"{server.base_url}/flaky"), tmp_path / "landing")
    assert ids(fetched) == ALL_IDS
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(server.seen) == 3 + 3
    # Only the successful bodies are pages.
    assert_pages_saved(tmp_path / "landing", server.sent["/flaky"])


def test_429_retry_after_is_honoured_mid_pagination(
    server: FakeApi, tmp_path: Path, sleeps: list[float]
) -> None:
    server.failures["/flaky"] = [None, reply({"error": "slow down"}, 429, {"Retry-After": "1"})]
    fetched = fetch(make_job(f"{server.base_url}/flaky"), tmp_path / "landing")
    assert ids(fetched) == ALL_IDS
    assert sleeps == [1.0]
    assert [s.query.get("after") for s in server.seen] == [None, ["10"], ["10"], ["20"]]
    assert_pages_saved(tmp_path / "landing", server.sent["/flaky"])


def test_retry_after_as_http_date_and_the_sleep_cap(
    server: FakeApi, tmp_path: Path, sleeps: list[float]
) -> None:
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=600), usegmt=True)
    server.failures["/flaky"] = [reply({}, 503, {"Retry-After": later})]
    fetch(make_job(f"{server.base_url}/flaky"), tmp_path / "landing")
    assert sleeps == [api_source.MAX_SLEEP_SECONDS]


def test_retry_after_values() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds(" 0 ", now) == 0.0
    assert retry_after_seconds("Sun, 01 Mar 2026 12:00:05 GMT", now) == 5.0
    assert retry_after_seconds("Sun, 01 Mar 2026 11:00:00 GMT", now) == 0.0  # in the past
    for bad in (None, "", "soon", "nan", "inf"):
        assert retry_after_seconds(bad, now) is None


def test_gives_up_after_the_last_attempt(
    server: FakeApi, tmp_path: Path, sleeps: list[float]
) -> None:
    server.failures["/flaky"] = [reply({}, 502)] * 10
    with pytest.raises(IngestError) as raised:
        fetch(make_job(f"{server.base_url}/flaky"), tmp_path / "landing")
    message = str(raised.value)
    assert "Job `events`" in message and "502 Bad Gateway" in message
    assert f"`{server.base_url}/flaky`" in message and "all 5 attempts" in message
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert len(server.seen) == api_source.MAX_ATTEMPTS


def test_connection_errors_are_retried(tmp_path: Path, sleeps: list[float]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(IngestError, match="could not be reached") as raised:
        fetch(make_job(f"http://127.0.0.1:{port}/gone"), tmp_path / "landing")
    assert "ConnectionError" in str(raised.value)
    assert len(sleeps) == api_source.MAX_ATTEMPTS - 1


def test_timeouts_are_retried(
    server: FakeApi, tmp_path: Path, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_source, "REQUEST_TIMEOUT_SECONDS", 0.2)
    server.delays["/slow"] = [0.6]
    fetched = fetch(make_job(f"{server.base_url}/slow"), tmp_path / "landing")
    assert ids(fetched) == ALL_IDS
    assert sleeps == [0.5]


@pytest.mark.parametrize(
    ("path", "auth", "secret"),
    [
        ("/bearer", {"type": "bearer", "connection_id": "bearer_api"}, TOKEN),
        ("/basic", {"type": "basic", "connection_id": "basic_api"}, PASSWORD),
    ],
)
def test_bearer_and_basic_auth(
    server: FakeApi, tmp_path: Path, path: str, auth: dict[str, str], secret: str
) -> None:
    job = make_job(
        f"{server.base_url}{path}",
        auth=auth,
        records_path="data",
        pagination={"page_param": "page"},
    )
    fetched = fetch(job, tmp_path / "landing")
    assert ids(fetched) == ALL_IDS
    assert secret not in fetched.files[0].source_uri


@pytest.mark.parametrize(
    ("path", "connection", "header"),
    [("/key-header", "key_api", "X-API-Key"), ("/key-custom", "key_custom_header", "X-Custom-Key")],
)
def test_api_key_in_a_header(
    server: FakeApi, tmp_path: Path, path: str, connection: str, header: str
) -> None:
    job = make_job(
        f"{server.base_url}{path}",
        auth={"type": "api_key", "connection_id": connection},
    )
    fetched = fetch(job, tmp_path / "landing")
    assert ids(fetched) == ALL_IDS
    assert all(seen.headers[header.lower()] == API_KEY for seen in server.seen)


def test_api_key_in_the_query_is_sent_once_and_never_recorded(
    server: FakeApi, tmp_path: Path
) -> None:
    job = make_job(
        f"{server.base_url}/key-query", auth={"type": "api_key", "connection_id": "key_query_api"}
    )
    landing = tmp_path / "landing"
    fetched = fetch(job, landing)
    assert ids(fetched) == ALL_IDS
    # The server's next links repeat the key; the source does not add it a second time.
    assert [seen.query["api_key"] for seen in server.seen] == [[API_KEY]] * 3
    assert fetched.files[0].source_uri == f"{server.base_url}/key-query?api_key=***"
    assert all("k3y" not in path.name for path in landing.iterdir())


def test_401_names_the_job_status_url_and_connection_but_not_the_secret(
    server: FakeApi, tmp_path: Path, sleeps: list[float]
) -> None:
    job = make_job(
        f"{server.base_url}/bearer",
        auth={"type": "bearer", "connection_id": "wrong_token"},
        records_path="data",
        pagination={"page_param": "page"},
    )
    with pytest.raises(IngestError) as raised:
        fetch(job, tmp_path / "landing")
    message = str(raised.value)
    assert message.startswith("Job `events`: the API at ")
    assert f"`{server.base_url}/bearer?page=1`" in message
    assert "401 Unauthorized" in message and "bad or missing credentials" in message
    assert "Check the credentials in connection `wrong_token` (`bearer` auth)" in message
    assert "not-the-token-but-secret" not in message
    assert sleeps == [] and len(server.seen) == 1  # no retry on 4xx


def test_401_on_an_api_key_query_masks_the_key(server: FakeApi, tmp_path: Path) -> None:
    job = make_job(
        f"{server.base_url}/key-query", auth={"type": "api_key", "connection_id": "wrong_key"}
    )
    with pytest.raises(IngestError) as raised:
        fetch(job, tmp_path / "landing")
    message = str(raised.value)
    assert f"`{server.base_url}/key-query?api_key=***`" in message
    assert "wr0ng" not in message


def test_401_without_auth_configured_says_to_configure_it(server: FakeApi, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"wants credentials: set `config.api.auth`"):
        fetch(make_job(f"{server.base_url}/bearer"), tmp_path / "landing")


def test_other_4xx_fail_at_once_with_what_the_api_said(
    server: FakeApi, tmp_path: Path, sleeps: list[float]
) -> None:
    with pytest.raises(IngestError) as raised:
        fetch(make_job(f"{server.base_url}/bad-request"), tmp_path / "landing")
    assert "400 Bad Request" in str(raised.value)
    assert "unknown parameter `colour`" in str(raised.value)
    with pytest.raises(IngestError, match=r"404 Not Found.*Check `config.api.url`"):
        fetch(make_job(f"{server.base_url}/nowhere"), tmp_path / "landing2")
    assert sleeps == []


def test_auth_settings_problems(tmp_path: Path) -> None:
    job = make_job("http://127.0.0.1:9/x", auth={"type": "bearer"})
    with pytest.raises(IngestError, match=r"`config.api.auth.connection_id` is not set"):
        fetch(job, tmp_path / "a")
    job = make_job("http://127.0.0.1:9/x", auth={"type": "bearer", "connection_id": "no_token"})
    with pytest.raises(IngestError, match=r"connection `no_token` has no `token`.*`token_env:"):
        fetch(job, tmp_path / "b")


def test_watermark_is_pushed_down(server: FakeApi, tmp_path: Path) -> None:
    job = make_job(f"{server.base_url}/since", watermark={"param_name": "updated_since"})
    fetched = fetch(job, tmp_path / "full")
    assert ids(fetched) == ALL_IDS and not fetched.watermark_pushed_down
    assert "updated_since" not in server.seen[0].query

    server.seen.clear()
    fetched = fetch(job, tmp_path / "incremental", lower_bound="2026-01-12T00:00:00Z")
    assert fetched.watermark_pushed_down
    assert ids(fetched) == list(range(12, 26))
    assert server.seen[0].query["updated_since"] == ["2026-01-12T00:00:00Z"]


def test_post_sends_the_json_body(server: FakeApi, tmp_path: Path) -> None:
    body = {"filter": {"min_id": 18}, "fields": ["id", "name"]}
    job = make_job(
        f"{server.base_url}/search",
        method="POST",
        body=body,
        records_path="hits.items",
        pagination={"next_token_path": "next"},
    )
    fetched = fetch(job, tmp_path / "landing")
    assert ids(fetched) == list(range(18, 26))
    assert {seen.method for seen in server.seen} == {"POST"}
    assert all(json.loads(seen.body) == body for seen in server.seen)
    assert all(seen.headers["content-type"] == "application/json" for seen in server.seen)
    assert len(server.seen) == 3
    assert_pages_saved(tmp_path / "landing", server.sent["/search"])


def test_page_cap(server: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_source, "MAX_PAGES", 3)
    job = make_job(
        f"{server.base_url}/forever", records_path="data", pagination={"page_param": "page"}
    )
    with pytest.raises(IngestError) as raised:
        fetch(job, tmp_path / "landing")
    message = str(raised.value)
    assert "still had more pages after 3 pages" in message
    assert "`config.api.pagination`" in message
    assert len(server.seen) == 3


def test_a_cursor_that_repeats_is_an_error(server: FakeApi, tmp_path: Path) -> None:
    job = make_job(
        f"{server.base_url}/same-cursor",
        records_path="results",
        pagination={"next_token_path": "meta.next"},
    )
    with pytest.raises(IngestError, match="pointed back at a page it already returned"):
        fetch(job, tmp_path / "landing")
    assert len(server.seen) == 2


def test_no_records_means_no_files(server: FakeApi, tmp_path: Path) -> None:
    fetched = fetch(make_job(f"{server.base_url}/empty", records_path="data"), tmp_path / "l")
    assert fetched.files == []
    assert [path.name for path in (tmp_path / "l").iterdir()] == ["page-00001.json"]


def test_response_shape_errors_name_the_setting_and_the_saved_page(
    server: FakeApi, tmp_path: Path
) -> None:
    with pytest.raises(IngestError) as raised:
        fetch(make_job(f"{server.base_url}/paged", records_path="items"), tmp_path / "a")
    assert "`config.api.records_path` `items` is not in the response" in str(raised.value)
    assert "top-level keys: `data`, `page`" in str(raised.value)
    assert str(tmp_path / "a" / "page-00001.json") in str(raised.value)

    with pytest.raises(IngestError, match=r"is an object, not a list.*`data`, `page`"):
        fetch(make_job(f"{server.base_url}/paged"), tmp_path / "b")
    with pytest.raises(IngestError, match=r"records in .* are a number, not a list"):
        fetch(make_job(f"{server.base_url}/paged", records_path="page"), tmp_path / "c")
    with pytest.raises(IngestError, match=r"not JSON \(Content-Type `text/html`\)"):
        fetch(make_job(f"{server.base_url}/not-json"), tmp_path / "d")
    assert (tmp_path / "d" / "page-00001.json").read_bytes() == b"<html>login here</html>"


def test_redactor_masks_user_info_secret_params_and_secret_values() -> None:
    redactor = Redactor(secrets=("abc/123",))
    assert (
        redactor.url("https://user:pw@host/p?token=t&x=1&q=abc%2F123")
        == "https://host/p?token=***&x=1&q=***"
    )
    assert redactor.text("failed for abc/123 and abc%2F123") == "failed for *** and ***"


def test_retry_logs_mask_the_key(
    server: FakeApi, tmp_path: Path, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    server.failures["/key-query"] = [None, reply({}, 503)]
    job = make_job(
        f"{server.base_url}/key-query", auth={"type": "api_key", "connection_id": "key_query_api"}
    )
    with caplog.at_level("WARNING", logger="lakebook.sources.api"):
        assert ids(fetch(job, tmp_path / "landing")) == ALL_IDS
    assert len(caplog.records) == 1
    logged = caplog.records[0].getMessage()
    assert "503 Service Unavailable; retrying in 0.5 s (attempt 2 of 5)" in logged
    assert "api_key=***" in logged and "k3y" not in logged


# Through the loader: `ingest()` in a workspace whose jupyter_config.py defines the connection. ----

TOKEN_ENV = "LAKEBOOK_TEST_API_TOKEN"
RUN_DATE = "2026-11-30"
FEED: list[dict[str, Any]] = []  # what `/feed` serves; each test gets its own (`feed_rows`)


def feed(api: FakeApi, seen: Seen) -> Reply:
    """Bearer auth, `updated_since` read as an ISO 8601 instant (>=), paged by number."""
    if seen.headers.get("authorization") != f"Bearer {TOKEN}":
        return unauthorized()
    rows = FEED
    since = arg(seen, "updated_since")
    if since:
        try:
            bound = datetime.fromisoformat(since)
        except ValueError:
            return reply({"error": f"`updated_since` is not ISO 8601: {since!r}"}, 400)
        bound = bound if bound.tzinfo else bound.replace(tzinfo=timezone.utc)
        rows = [row for row in rows if datetime.fromisoformat(row["updated_at"]) >= bound]
    page, size = int(arg(seen, "page", "1")), int(arg(seen, "page_size", "10"))
    return reply({"data": window((page - 1) * size, size, rows)})


ROUTES["/feed"] = feed


@pytest.fixture
def feed_rows(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The rows `/feed` serves (a fresh copy of RECORDS); tests append to it between runs."""
    rows = [dict(row) for row in RECORDS]
    monkeypatch.setattr(sys.modules[__name__], "FEED", rows)
    return rows


def api_workspace(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The workspace with connection `feed_api` (token from the environment) in its config."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    config = root / "jupyter_config.py"
    config.write_text(
        config.read_text()
        + f"\nc.Lakebook.connections = {{'feed_api': {{'token_env': {TOKEN_ENV!r}}}}}\n"
    )
    return root


def feed_job(base_url: str, **fields: Any) -> IngestJob:
    return IngestJob.model_validate(
        {
            "name": "events",
            "source_type": "api",
            **fields,
            "config": {
                "api": {
                    "url": f"{base_url}/feed",
                    "records_path": "data",
                    "pagination": {"page_param": "page", "page_size": PAGE_SIZE},
                    "auth": {"type": "bearer", "connection_id": "feed_api"},
                    "watermark": {"param_name": "updated_since"},
                }
            },
        }
    )


def api_context(workspace: Path, run_id: str) -> JobContext:
    return JobContext.open(str(workspace), "demo", run_id, RUN_DATE)


def assert_accounting(result: JobResult) -> None:
    assert result.rows_read == (
        result.rows_written + result.quarantined_rows + result.deduplicated_rows
    )


def bronze_events(workspace: Path) -> list[dict[str, Any]]:
    table = DeltaTable(str(workspace / "lake" / "bronze" / "events")).to_pyarrow_table()
    return sorted(table.to_pylist(), key=lambda row: row["id"])


def instant(text: str | None) -> datetime:
    """A recorded timestamp watermark as an aware datetime."""
    assert text is not None
    return datetime.fromisoformat(text)


@pytest.mark.parametrize("fmt", [None, "jsonl", "parquet"])
def test_ingest_full_load_reads_the_landed_records_whatever_the_job_format(
    server: FakeApi,
    feed_rows: list[dict[str, Any]],
    empty_workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str | None,
) -> None:
    workspace = api_workspace(empty_workspace, monkeypatch)
    job = feed_job(server.base_url, **({"format": fmt} if fmt else {}))
    assert job.format == (fmt or "csv")  # the default; the loader goes by the landed file

    result, sample = lakebook.ingest.ingest(api_context(workspace, "r1"), job, None)

    assert (result.rows_read, result.rows_written, result.deduplicated_rows) == (25, 25, 0)
    assert_accounting(result)
    assert (result.watermark_before, result.watermark_after) == (None, None)  # full mode
    assert all("updated_since" not in seen.query for seen in server.seen)
    landing = Path("landing/demo/events/2026/11/30/r1")
    assert result.source_files == [str(landing / "records.jsonl")]
    assert_pages_saved(workspace / "lake" / landing, server.sent["/feed"])
    for path in (workspace / "lake" / landing).iterdir():
        assert TOKEN not in path.read_text(encoding="utf-8")
    rows = bronze_events(workspace)
    assert [row["id"] for row in rows] == ALL_IDS
    assert rows[6]["name"] == "Zoë"
    assert instant(str(rows[0]["updated_at"])) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert {row["_source_file"] for row in rows} == {str(landing / "records.jsonl")}
    types = {field.name: str(field.type) for field in sample.schema}
    assert types["id"] == "int64" and types["updated_at"].startswith("timestamp")


def test_ingest_incremental_sends_the_watermark_and_dedupes_the_boundary_row(
    server: FakeApi,
    feed_rows: list[dict[str, Any]],
    empty_workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace = api_workspace(empty_workspace, monkeypatch)
    job = feed_job(server.base_url, incremental_mode="incremental", watermark_column="updated_at")
    first, _ = lakebook.ingest.ingest(api_context(workspace, "r1"), job, None)
    assert all("updated_since" not in seen.query for seen in server.seen)  # no watermark yet
    assert (first.rows_read, first.rows_written, first.watermark_before) == (25, 25, None)
    assert instant(first.watermark_after) == datetime(2026, 1, 25, tzinfo=timezone.utc)
    assert_accounting(first)

    feed_rows.extend(
        {"id": i, "name": f"new {i}", "updated_at": f"2026-01-{i:02d}T00:00:00Z"} for i in (26, 27)
    )
    server.seen.clear()
    second, _ = lakebook.ingest.ingest(api_context(workspace, "r2"), job, first.watermark_after)

    # Every page request carries the lower bound; `>=` returns row 25 again, already in Bronze.
    assert [seen.query["updated_since"] for seen in server.seen] == [[first.watermark_after]] * 2
    assert (second.rows_read, second.rows_written, second.deduplicated_rows) == (3, 2, 1)
    assert second.watermark_before == first.watermark_after
    assert instant(second.watermark_after) == datetime(2026, 1, 27, tzinfo=timezone.utc)
    assert_accounting(second)
    rows = bronze_events(workspace)
    assert [row["id"] for row in rows] == [*ALL_IDS, 26, 27]
    assert {row["_run_id"] for row in rows if row["id"] >= 26} == {"r2"}

    third, _ = lakebook.ingest.ingest(api_context(workspace, "r3"), job, second.watermark_after)
    assert (third.rows_read, third.rows_written, third.deduplicated_rows) == (1, 0, 1)
    assert (third.watermark_after, third.table_version) == (second.watermark_after, None)
    assert_accounting(third)
    assert len(bronze_events(workspace)) == 27


def test_api_incremental_without_watermark_column_is_refused(
    server: FakeApi,
    feed_rows: list[dict[str, Any]],
    empty_workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace = api_workspace(empty_workspace, monkeypatch)
    try:
        job = feed_job(server.base_url, incremental_mode="incremental")
    except ValidationError:
        return  # refused up front: fine
    first, _ = lakebook.ingest.ingest(api_context(workspace, "r1"), job, None)
    lakebook.ingest.ingest(api_context(workspace, "r2"), job, first.watermark_after)
    assert len(bronze_events(workspace)) == len(RECORDS)


@pytest.fixture
def new_york_time() -> Iterator[None]:
    """The process (and so DuckDB's default) time zone is America/New_York for one test."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_timestamp_watermark_text_does_not_depend_on_the_machine_time_zone(
    server: FakeApi,
    feed_rows: list[dict[str, Any]],
    empty_workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    new_york_time: None,
) -> None:
    workspace = api_workspace(empty_workspace, monkeypatch)
    job = feed_job(server.base_url, incremental_mode="incremental", watermark_column="updated_at")
    result, _ = lakebook.ingest.ingest(api_context(workspace, "r1"), job, None)
    assert instant(result.watermark_after) == datetime(2026, 1, 25, tzinfo=timezone.utc)
    assert instant(result.watermark_after).utcoffset() == timedelta(0)  # as on a UTC machine
