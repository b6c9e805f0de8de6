"""S3 source (`source_type: s3`): one object, or every object under a prefix that matches
`filename_pattern`, copied into Landing byte-for-byte through `pyarrow.fs.S3FileSystem`.

Endpoint, region and credentials come only from the named connection `config.file.connection_id`
(`endpoint_url`, `region`, `access_key_id`, `secret_access_key`, `session_token`; secrets as
`*_env` keys). Without credentials the source connects anonymously; it never falls back to the
machine's ambient AWS configuration. Secrets never reach an error message, a URI or a file name.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from lakebook.errors import ConnectionNotFoundError, IngestError
from lakebook.sources import Fetched, FetchRequest, LoadFile, ManifestEntry
from lakebook.sources.files import DEFAULT_PATTERNS, landed_names
from lakebook.specs import IngestJob

DEFAULT_REGION = "us-east-1"
CHUNK_SIZE = 8 * 1024 * 1024  # bytes per read while streaming an object into Landing
SECRET_KEYS = ("access_key_id", "secret_access_key", "session_token")
AWS_ERROR = re.compile(r"AWS Error ([A-Z_]+)")
NOT_FOUND_CODES = frozenset({"NO_SUCH_BUCKET"})
DENIED_CODES = frozenset(
    {
        "ACCESS_DENIED",
        "INVALID_ACCESS_KEY_ID",
        "SIGNATURE_DOES_NOT_MATCH",
        "EXPIRED_TOKEN",
        "INVALID_CLIENT_TOKEN_ID",
        "UNRECOGNIZED_CLIENT",
        "MISSING_AUTHENTICATION_TOKEN",
        "INVALID_SIGNATURE",
        "REQUEST_EXPIRED",
    }
)
UNREACHABLE_CODES = frozenset({"NETWORK_CONNECTION", "REQUEST_TIMEOUT"})


@dataclass(frozen=True)
class S3Location:
    """Bucket and key (or key prefix, without slashes at either end) a job reads."""

    bucket: str
    key: str

    @property
    def path(self) -> str:
        """The location as a pyarrow filesystem path (`bucket/key`)."""
        return f"{self.bucket}/{self.key}" if self.key else self.bucket

    @property
    def uri(self) -> str:
        """The location as an `s3://` URI."""
        return f"s3://{self.path}"


@dataclass(frozen=True)
class S3Endpoint:
    """Where and how to reach S3, resolved from a named connection (holds secrets: never print)."""

    connection_id: str | None
    display: str  # endpoint for messages: `scheme://host[:port]`, never credentials
    filesystem: pafs.S3FileSystem
    secrets: tuple[str, ...]  # resolved secret values, scrubbed from every message


def location(job: IngestJob) -> S3Location:
    """The bucket and key prefix from `config.file.s3_uri`, or from `bucket` and `prefix`."""
    assert job.config.file is not None  # the spec guarantees it for source_type s3
    file = job.config.file
    if file.s3_uri:
        parts = urlsplit(file.s3_uri)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise IngestError(
                f"Job `{job.name}`: `config.file.s3_uri` must look like `s3://bucket/prefix`, "
                f"got `{file.s3_uri}`. Fix the URI in the pipeline file."
            )
        found = S3Location(parts.netloc, parts.path.strip("/"))
        if file.bucket and file.bucket != found.bucket:
            raise IngestError(
                f"Job `{job.name}`: `config.file.s3_uri` names bucket `{found.bucket}` but "
                f"`config.file.bucket` is `{file.bucket}`. Set only one of them."
            )
        return found
    assert file.bucket  # the spec requires s3_uri or bucket
    return S3Location(file.bucket.strip("/"), (file.prefix or "").strip("/"))


def endpoint(request: FetchRequest) -> S3Endpoint:
    """The S3 filesystem for the job's named connection (AWS and anonymous access without one)."""
    job = request.job
    assert job.config.file is not None
    name = job.config.file.connection_id
    settings: dict[str, Any] = {}
    if name:
        try:
            settings = request.connection(name)
        except ConnectionNotFoundError as error:
            raise ConnectionNotFoundError(f"Job `{job.name}`: {error}") from None
    label = f"connection `{name}`" if name else "no connection (`config.file.connection_id`)"
    options: dict[str, Any] = {"region": str(settings.get("region") or DEFAULT_REGION)}
    display = f"AWS S3 in `{options['region']}`"
    if settings.get("endpoint_url"):
        raw = str(settings["endpoint_url"])
        parts = urlsplit(raw)
        has_credentials = "@" in parts.netloc
        if parts.scheme not in ("http", "https") or not parts.hostname or has_credentials:
            shown = "" if has_credentials else f" (`{raw}`)"
            raise IngestError(
                f"Job `{job.name}`: `endpoint_url` of {label} must be `http://host:port` or "
                f"`https://host:port` without credentials{shown}. Fix the connection in "
                "jupyter_config.py."
            )
        if parts.path.strip("/"):
            raise IngestError(
                f"Job `{job.name}`: `endpoint_url` of {label} must not have a path "
                f"(`{parts.scheme}://{parts.netloc}{parts.path}`). "
                "Put the bucket in `config.file.s3_uri` instead."
            )
        display = f"`{parts.scheme}://{parts.netloc}`"
        options.update(endpoint_override=parts.netloc, scheme=parts.scheme)
    access_key = settings.get("access_key_id")
    secret_key = settings.get("secret_access_key")
    token = settings.get("session_token")
    if bool(access_key) != bool(secret_key):
        raise IngestError(
            f"Job `{job.name}`: {label} sets only one of `access_key_id` and "
            "`secret_access_key`. Set both (as `*_env` keys) or neither for anonymous access."
        )
    if access_key:
        options.update(access_key=str(access_key), secret_key=str(secret_key))
        if token:
            options["session_token"] = str(token)
    else:
        # No credentials in the connection: never pick up ambient ones (environment, ~/.aws).
        options["anonymous"] = True
    secrets = tuple(str(settings[key]) for key in SECRET_KEYS if settings.get(key))
    return S3Endpoint(name, display, pafs.S3FileSystem(**options), secrets)


def fingerprint(info: pafs.FileInfo) -> str:
    """Identity of an object as far as the manifest cares: URI, size and modification time.

    The time is cut to whole seconds: listings report milliseconds, HEAD requests only seconds.
    """
    seconds = (info.mtime_ns or 0) // 1_000_000_000
    return f"{object_uri(info)}|{info.size}|{seconds * 1_000_000_000}"


class S3Source:
    """An object or a prefix in an S3 bucket (AWS or any S3-compatible endpoint)."""

    def fetch(self, request: FetchRequest) -> Fetched:
        """Copy the matching objects not loaded before into Landing."""
        job = request.job
        where = location(job)
        s3 = endpoint(request)
        entries = [
            (info, ManifestEntry(object_uri(info), fingerprint(info)))
            for info in self.matching_objects(request, s3, where)
        ]
        fresh = [
            (info, entry) for info, entry in entries if entry.fingerprint not in request.loaded
        ]
        names = landed_names([info.base_name for info, _ in fresh])
        loads = []
        for (info, entry), name in zip(fresh, names, strict=True):
            target = request.landing / name
            self.copy(job, s3, where, info, target)
            loads.append(LoadFile(target, job.format, entry.uri))
        return Fetched(loads, [entry for _, entry in fresh])

    def copy(
        self, job: IngestJob, s3: S3Endpoint, where: S3Location, info: pafs.FileInfo, target: Path
    ) -> None:
        """Stream one object into `target` byte-for-byte, chunk by chunk; no partial file stays."""
        copied = 0
        try:
            # compression=None: pyarrow would otherwise decompress `.gz` keys on the fly.
            with (
                target.open("wb") as out,
                self.translated(job, s3, where),
                s3.filesystem.open_input_stream(info.path, compression=None) as stream,
            ):
                while chunk := stream.read(CHUNK_SIZE):
                    out.write(chunk)
                    copied += len(chunk)
            if copied != info.size:
                raise IngestError(
                    f"Job `{job.name}`: `{object_uri(info)}` changed while it was being copied "
                    f"({info.size} bytes listed, {copied} read). Run the job again."
                )
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    def matching_objects(
        self, request: FetchRequest, s3: S3Endpoint, where: S3Location
    ) -> list[pafs.FileInfo]:
        """The objects to load, sorted by key; an error naming the location when there are none."""
        job = request.job
        pattern = job.filename_pattern
        with self.translated(job, s3, where):
            target = s3.filesystem.get_file_info(where.path)
            if target.type == pafs.FileType.File:
                objects = [target]
            elif target.type == pafs.FileType.Directory:
                pattern = pattern or DEFAULT_PATTERNS[job.format]
                listing = s3.filesystem.get_file_info(pafs.FileSelector(where.path, recursive=True))
                objects = [info for info in listing if info.type == pafs.FileType.File]
            else:
                bucket = s3.filesystem.get_file_info(where.bucket) if where.key else target
                if bucket.type == pafs.FileType.NotFound:
                    raise self.bucket_missing(job, s3, where)
                objects = []
        if pattern:
            objects = [info for info in objects if fnmatch.fnmatchcase(info.base_name, pattern)]
        if not objects:
            with_pattern = f" with filename_pattern `{pattern}`" if pattern else ""
            raise IngestError(
                f"Job `{job.name}`: no objects match `{where.uri}`{with_pattern} "
                f"(endpoint {s3.display}). Upload the source files there or fix "
                "`config.file.s3_uri` (or `bucket`/`prefix`) and `filename_pattern`."
            )
        return sorted(objects, key=lambda info: info.path)

    def bucket_missing(self, job: IngestJob, s3: S3Endpoint, where: S3Location) -> IngestError:
        """The error for a bucket that does not exist."""
        via = f"connection `{s3.connection_id}`" if s3.connection_id else "no connection"
        return IngestError(
            f"Job `{job.name}`: bucket `{where.bucket}` does not exist at {s3.display} ({via}). "
            "Check the bucket name in `config.file.s3_uri` (or `bucket`) and the connection's "
            "`endpoint_url` and `region`."
        )

    @contextmanager
    def translated(self, job: IngestJob, s3: S3Endpoint, where: S3Location) -> Iterator[None]:
        """Turn S3 client failures into `IngestError`s that say what to do (secrets scrubbed)."""
        try:
            yield
        except (OSError, pa.ArrowException) as error:
            if isinstance(error, FileNotFoundError):
                raise IngestError(
                    f"Job `{job.name}`: `{where.uri}` disappeared while it was being read "
                    f"(endpoint {s3.display}). Run the job again."
                ) from None
            detail = scrub(str(error), s3.secrets)
            found = AWS_ERROR.search(detail)
            code = found.group(1) if found else ""
            via = f"connection `{s3.connection_id}`" if s3.connection_id else "no connection"
            if code in NOT_FOUND_CODES:
                raise self.bucket_missing(job, s3, where) from None
            if code in DENIED_CODES:
                raise IngestError(
                    f"Job `{job.name}`: access to `{where.uri}` was denied at {s3.display} "
                    f"({via}; {code}). Check the credentials the connection names "
                    "(`access_key_id_env`, `secret_access_key_env`, `session_token_env`) and "
                    f"that they may list and read bucket `{where.bucket}`."
                ) from None
            if code in UNREACHABLE_CODES or "curlCode" in detail:
                raise IngestError(
                    f"Job `{job.name}`: could not reach the S3 endpoint {s3.display} ({via}) "
                    f"to read `{where.uri}`. Check the connection's `endpoint_url` and that the "
                    "service is running and reachable from this machine."
                ) from None
            raise IngestError(
                f"Job `{job.name}`: reading `{where.uri}` from {s3.display} ({via}) failed: "
                f"{detail}. Check the connection and the location, then run the job again."
            ) from None


def object_uri(info: pafs.FileInfo) -> str:
    """The `s3://bucket/key` URI of a listed object."""
    return f"s3://{info.path}"


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """The text with every secret value replaced by `***`."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
