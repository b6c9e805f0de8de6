"""HTTP API source (`source_type: api`): pages through a JSON API with `requests`, lands every raw
response body byte-for-byte (`page-00001.json`, …) and the records it extracted as `records.jsonl`,
the one file the loader reads.

Pagination, first match wins:
- next token (`pagination.next_token_path`): a dotted path to the next token or cursor in each
  response. It is sent back as the query parameter `pagination.page_param` (default `cursor`), or
  followed as is when it is a full `http(s)://` URL. No token (missing, null or "") ends the run.
- page number (`pagination.page_param` alone): pages 1, 2, … in that query parameter; the first
  page with no records ends the run.
- the `Link: <…>; rel="next"` response header, followed when neither of the above is configured.
`pagination.page_size`, when set, is sent as the query parameter `page_size` on every request
lakebook builds; a URL handed out by the API (next-token URL, Link header) is followed as is.

Records are the list at `records_path` (dotted; numeric parts index lists), or the response itself
when it is a list; each record must be a JSON object. Incremental runs send the lower bound as the
query parameter `watermark.param_name`. A POST sends `body` as JSON and is retried like a GET, so it
must be a query, not an action.

Secrets come only from the named connection `auth.connection_id`: `bearer` uses `token`, `basic`
uses `username` and `password`, `api_key` uses `key`, sent in the header named by `header` (default
`X-API-Key`) or, when the connection sets `query_param`, as that query parameter. They are masked in
every URL and message this source records.

429, 5xx, connection errors and timeouts are retried with exponential backoff, honouring
`Retry-After`; any other 4xx fails at once with the status, the URL and what to check.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urljoin, urlsplit, urlunsplit

import requests

from lakebook.errors import IngestError
from lakebook.sources import Fetched, FetchRequest, LoadFile
from lakebook.specs import ApiConfig

MAX_PAGES = 10_000
MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 0.5
MAX_SLEEP_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 30.0
PAGE_SIZE_PARAM = "page_size"
DEFAULT_CURSOR_PARAM = "cursor"
DEFAULT_API_KEY_HEADER = "X-API-Key"
RECORDS_FILE = "records.jsonl"
MASK = "***"
ERROR_BODY_CHARS = 300
# Masked in recorded URLs even when no connection names them: users paste such URLs into configs.
SECRET_PARAMS = frozenset(
    {"access_token", "api_key", "apikey", "client_secret", "password", "secret", "token"}
)
AUTH_NEEDS = {"bearer": "`token`", "basic": "`username` and `password`", "api_key": "`key`"}
JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}

# The retry wait; tests replace it to record the waits instead of sleeping.
sleep: Callable[[float], None] = time.sleep

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    """What each request carries to authenticate, and the values that must never be recorded."""

    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    basic: tuple[str, str] | None = None
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Redactor:
    """Masks secrets in URLs and messages before they are recorded anywhere."""

    secrets: tuple[str, ...] = ()
    params: frozenset[str] = SECRET_PARAMS

    def url(self, url: str) -> str:
        """The URL without user info and with secret query parameters masked."""
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            masked = [(key, MASK if key.lower() in self.params else value) for key, value in pairs]
            query = urlencode(masked, safe="*")
        return self.text(urlunsplit(parts._replace(netloc=netloc, query=query)))

    def text(self, text: str) -> str:
        """The text with every secret value (plain or URL-encoded) masked."""
        for secret in self.secrets:
            for form in (secret, quote(secret, safe=""), quote_plus(secret)):
                text = text.replace(form, MASK)
        return text


@dataclass(frozen=True)
class PageRequest:
    """One page to ask for: a URL, the query parameters lakebook adds, the page number."""

    url: str
    params: dict[str, str]
    number: int = 1

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Identity of the request, to notice an API that points back at a page it returned."""
        return self.url, tuple(sorted(self.params.items()))


def credentials(request: FetchRequest) -> Credentials:
    """The job's auth settings with secrets from its named connection."""
    job = request.job
    assert job.config.api is not None  # the spec requires it for source_type api
    auth = job.config.api.auth
    if auth.type == "none":
        return Credentials()
    if not auth.connection_id:
        raise IngestError(
            f"Job `{job.name}`: `config.api.auth.type` is `{auth.type}` but "
            "`config.api.auth.connection_id` is not set. Name the workspace connection that "
            f"holds the {AUTH_NEEDS[auth.type]}."
        )
    connection = request.connection(auth.connection_id)

    def setting(key: str) -> str:
        value = connection.get(key)
        if value is None or value == "":
            raise IngestError(
                f"Job `{job.name}`: connection `{auth.connection_id}` has no `{key}` for "
                f"`{auth.type}` auth. Add `{key}_env: <ENVIRONMENT_VARIABLE>` to it in "
                "`c.Lakebook.connections` and export that variable."
            )
        return str(value)

    if auth.type == "bearer":
        token = setting("token")
        return Credentials(headers={"Authorization": f"Bearer {token}"}, secrets=(token,))
    if auth.type == "basic":
        username, password = setting("username"), setting("password")
        encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
        return Credentials(basic=(username, password), secrets=(password, encoded))
    key = setting("key")
    query_param = connection.get("query_param")
    if query_param:
        return Credentials(params={str(query_param): key}, secrets=(key,))
    header = str(connection.get("header") or DEFAULT_API_KEY_HEADER)
    return Credentials(headers={header: key}, secrets=(key,))


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """The wait a `Retry-After` header asks for (seconds or an HTTP date); None if absent or bad."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff after the given failed attempt (1-based), before the cap."""
    return BACKOFF_BASE_SECONDS * 2.0 ** (attempt - 1)


def lookup(value: Any, path: str) -> tuple[bool, Any]:
    """Follow a dotted path through objects (keys) and lists (numeric parts)."""
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def json_type(value: Any) -> str:
    """How a JSON value's type reads in a message."""
    if value is None:
        return "null"
    return JSON_TYPES.get(type(value), "a number")


def with_query(url: str, params: dict[str, str]) -> str:
    """The URL with the parameters appended, as requests sends it (for messages)."""
    if not params:
        return url
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"


class ApiSource:
    """A JSON HTTP API (see the module docstring for every setting)."""

    def fetch(self, request: FetchRequest) -> Fetched:
        """Page through the API, land every response and the records; load `records.jsonl`."""
        return ApiFetch(request).run()


class ApiFetch:
    """One run of an API source: its settings, credentials and the pages it fetched."""

    def __init__(self, request: FetchRequest) -> None:
        assert request.job.config.api is not None  # the spec requires it for source_type api
        self.request = request
        self.job_name = request.job.name
        self.api: ApiConfig = request.job.config.api
        self.credentials = credentials(request)
        secret_params = frozenset(name.lower() for name in self.credentials.params)
        self.redactor = Redactor(self.credentials.secrets, SECRET_PARAMS | secret_params)
        self.pushed_down = request.lower_bound is not None and self.api.watermark is not None

    def run(self) -> Fetched:
        """Fetch every page into Landing and describe the records file."""
        landing = self.request.landing
        records_file = landing / RECORDS_FILE
        written = 0
        source_uri = self.redactor.url(self.api.url)
        page = self.first_page()
        seen = {page.key}
        with (
            requests.Session() as session,
            records_file.open("w", encoding="utf-8", newline="\n") as out,
        ):
            for number in count(1):
                response = self.send(session, page)
                if number == 1:
                    source_uri = self.redactor.url(response.url)
                page_file = landing / f"page-{number:05d}.json"
                page_file.write_bytes(response.content)
                payload = self.parse(response, page_file)
                records = self.records(payload, page_file)
                for record in records:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += len(records)
                following = self.next_page(page, response, payload, records)
                if following is None:
                    break
                self.check_progress(following, number, seen)
                page = following
        if written == 0:
            records_file.unlink()
            return Fetched(files=[], watermark_pushed_down=self.pushed_down)
        return Fetched(
            files=[LoadFile(records_file, "jsonl", source_uri)],
            watermark_pushed_down=self.pushed_down,
        )

    def base_params(self) -> dict[str, str]:
        """Query parameters of every request lakebook builds: page size and watermark."""
        params: dict[str, str] = {}
        if self.api.pagination.page_size is not None:
            params[PAGE_SIZE_PARAM] = str(self.api.pagination.page_size)
        if self.pushed_down:
            assert self.api.watermark is not None and self.request.lower_bound is not None
            params[self.api.watermark.param_name] = self.request.lower_bound
        return params

    def first_page(self) -> PageRequest:
        """The first request: the configured URL with page 1 when paging by number."""
        params = self.base_params()
        pagination = self.api.pagination
        if pagination.page_param and not pagination.next_token_path:
            params[pagination.page_param] = "1"
        return PageRequest(self.api.url, params)

    def next_page(
        self,
        page: PageRequest,
        response: requests.Response,
        payload: Any,
        records: list[dict[str, Any]],
    ) -> PageRequest | None:
        """The request for the page after this one, or None when this was the last."""
        pagination = self.api.pagination
        if pagination.next_token_path:
            found, token = lookup(payload, pagination.next_token_path)
            if not found or token is None or token == "":
                return None
            if isinstance(token, (dict, list)):
                raise IngestError(
                    f"Job `{self.job_name}`: `config.api.pagination.next_token_path` "
                    f"`{pagination.next_token_path}` points at {json_type(token)}, not a token. "
                    "Point it at the string or number the API returns for the next page."
                )
            text = str(token)
            if text.startswith(("http://", "https://")):
                return PageRequest(text, {}, page.number + 1)
            name = pagination.page_param or DEFAULT_CURSOR_PARAM
            return PageRequest(self.api.url, {**self.base_params(), name: text}, page.number + 1)
        if pagination.page_param:
            if not records:
                return None
            number = page.number + 1
            params = {**self.base_params(), pagination.page_param: str(number)}
            return PageRequest(self.api.url, params, number)
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        return PageRequest(urljoin(response.url, link), {}, page.number + 1)

    def check_progress(
        self,
        following: PageRequest,
        fetched: int,
        seen: set[tuple[str, tuple[tuple[str, str], ...]]],
    ) -> None:
        """Stop an API that pages forever: the page cap, or a page asked for twice."""
        if fetched >= MAX_PAGES:
            raise IngestError(
                f"Job `{self.job_name}`: the API at `{self.redactor.url(self.api.url)}` still "
                f"had more pages after {fetched} pages, the most one run fetches. Check "
                "`config.api.pagination` (an API that ignores the page parameter returns the same "
                "page forever), or load less per run with an incremental watermark."
            )
        if following.key in seen:
            shown = self.redactor.url(with_query(following.url, following.params))
            raise IngestError(
                f"Job `{self.job_name}`: the API pointed back at a page it already returned "
                f"(`{shown}`), so paging would never end. Check `config.api.pagination`."
            )
        seen.add(following.key)

    def send(self, session: requests.Session, page: PageRequest) -> requests.Response:
        """GET or POST one page, retrying transient failures; raises IngestError otherwise."""
        params = dict(page.params)
        present = {name for name, _ in parse_qsl(urlsplit(page.url).query)}
        # A URL handed out by the API may already carry the key; sending it twice confuses some.
        params.update({k: v for k, v in self.credentials.params.items() if k not in present})
        headers = {"Accept": "application/json", **self.api.headers, **self.credentials.headers}
        body = self.api.body if self.api.method == "POST" else None
        shown = self.redactor.url(with_query(page.url, params))
        problem = ""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = session.request(
                    self.api.method,
                    page.url,
                    params=params,
                    headers=headers,
                    json=body,
                    auth=self.credentials.basic,
                    timeout=REQUEST_TIMEOUT_SECONDS,
                )
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as error:
                problem = f"could not be reached ({type(error).__name__}: {error})"
                delay = backoff_seconds(attempt)
            except requests.RequestException as error:
                raise IngestError(
                    f"Job `{self.job_name}`: the request to `{shown}` could not be sent: "
                    f"{self.redactor.text(str(error))}. Check `config.api.url` and "
                    "`config.api.headers`."
                ) from None
            else:
                status = response.status_code
                if status == 429 or status >= 500:
                    problem = f"answered {status} {response.reason}".rstrip()
                    asked = retry_after_seconds(response.headers.get("Retry-After"))
                    delay = backoff_seconds(attempt) if asked is None else asked
                    response.close()
                elif status >= 400:
                    raise self.client_error(response)
                else:
                    return response
            if attempt == MAX_ATTEMPTS:
                break
            delay = min(delay, MAX_SLEEP_SECONDS)
            logger.warning(
                "Job `%s`: `%s` %s; retrying in %.1f s (attempt %d of %d)",
                self.job_name,
                shown,
                self.redactor.text(problem),
                delay,
                attempt + 1,
                MAX_ATTEMPTS,
            )
            sleep(delay)
        raise IngestError(
            f"Job `{self.job_name}`: the API at `{shown}` {self.redactor.text(problem)} on all "
            f"{MAX_ATTEMPTS} attempts. Try again later; if it keeps failing, check the "
            "service's status and `config.api.url`."
        )

    def client_error(self, response: requests.Response) -> IngestError:
        """A 4xx other than 429: what failed, what the API said and what to check."""
        status = f"{response.status_code} {response.reason}".rstrip()
        auth = self.api.auth
        if response.status_code in (401, 403):
            if auth.type == "none":
                step = (
                    "The API wants credentials: set `config.api.auth` (`type` and `connection_id`)."
                )
            else:
                step = (
                    f"Check the credentials in connection `{auth.connection_id}` "
                    f"(`{auth.type}` auth) and that they may read this endpoint."
                )
        elif response.status_code == 404:
            step = "Check `config.api.url`."
        else:
            step = "Check `config.api` (url, headers, body and parameters)."
        said = " ".join(response.text.split())[:ERROR_BODY_CHARS]
        said = f" It said: {self.redactor.text(said)}." if said else ""
        return IngestError(
            f"Job `{self.job_name}`: the API at `{self.redactor.url(response.url)}` answered "
            f"{status}.{said} {step}"
        )

    def parse(self, response: requests.Response, page_file: Path) -> Any:
        """The response's JSON, or None for an empty body."""
        if not response.content.strip():
            return None
        try:
            return json.loads(response.content)
        except ValueError:
            content_type = response.headers.get("Content-Type", "none")
            raise IngestError(
                f"Job `{self.job_name}`: the API at `{self.redactor.url(response.url)}` "
                f"returned something that is not JSON (Content-Type `{content_type}`); it is "
                f"saved as `{page_file}`. Check `config.api.url` and `config.api.headers`."
            ) from None

    def records(self, payload: Any, page_file: Path) -> list[dict[str, Any]]:
        """The records in one response; errors name the setting and the saved page."""
        if payload is None:
            return []
        path = self.api.records_path
        if path:
            found, value = lookup(payload, path)
            if not found:
                keys = ""
                if isinstance(payload, dict):
                    keys = " Its top-level keys: " + ", ".join(f"`{key}`" for key in payload) + "."
                raise IngestError(
                    f"Job `{self.job_name}`: `config.api.records_path` `{path}` is not in the "
                    f"response saved as `{page_file}`.{keys} Point it at the list of records."
                )
            if value is None:
                return []
        else:
            value = payload
            if isinstance(value, dict):
                keys = ", ".join(f"`{key}`" for key in value)
                raise IngestError(
                    f"Job `{self.job_name}`: the response saved as `{page_file}` is an object, "
                    "not a list of records. Set `config.api.records_path` to the dotted path of "
                    f"its list of records; its top-level keys: {keys}."
                )
        if not isinstance(value, list):
            raise IngestError(
                f"Job `{self.job_name}`: the records in `{page_file}` are {json_type(value)}, "
                "not a list. Point `config.api.records_path` at the list of records."
            )
        for index, record in enumerate(value):
            if not isinstance(record, dict):
                raise IngestError(
                    f"Job `{self.job_name}`: record {index} in `{page_file}` is "
                    f"{json_type(record)}, not an object. Point `config.api.records_path` at a "
                    "list of objects."
                )
        return value
