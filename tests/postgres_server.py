"""Throwaway real PostgreSQL servers for tests.

:class:`PostgresServer` runs ``initdb`` + ``pg_ctl`` to start a private
PostgreSQL instance on a free TCP port of ``127.0.0.1``, with trust
authentication for the ``postgres`` role and ``fsync=off``. Nothing is shared
with a system-wide PostgreSQL service, so several servers (from several test
processes) can run at the same time.

``initdb`` and ``pg_ctl`` refuse to run as root, so when the tests run as root
they are run as the ``postgres`` OS user via ``runuser``. The data and socket
directories therefore live in a fresh ``/tmp/lakebook-pg-*`` directory that
the ``postgres`` user can reach (pytest's ``tmp_path`` lives under a mode-700
directory when running as root, which ``postgres`` cannot traverse). The
server log is written to ``base_dir`` through a file descriptor opened by the
calling process, so ``base_dir`` itself may be anywhere.

Typical pytest usage::

    @pytest.fixture(scope="session")
    def postgres(tmp_path_factory):
        require_binaries()  # skips locally, fails on CI, if not installed
        with PostgresServer.start(tmp_path_factory.mktemp("pg")) as server:
            yield server

    def test_something(postgres):
        url = postgres.create_database("test_something")
        engine = sqlalchemy.create_engine(url)
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL

__all__ = [
    "PostgresServer",
    "PostgresServerError",
    "find_binaries",
    "require_binaries",
]

#: OS user that owns the cluster when the tests run as root.
POSTGRES_USER = "postgres"
#: Database superuser created by ``initdb`` (trust auth, no password).
SUPERUSER = "postgres"
HOST = "127.0.0.1"
INSTALL_HINT = "run scripts/install-test-deps.sh (Debian: apt-get install postgresql)"
_START_ATTEMPTS = 3
_LOG_TAIL_LINES = 40


class PostgresServerError(RuntimeError):
    """Raised when a throwaway PostgreSQL server cannot be set up."""


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def _version_key(bindir: str) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin`` (numeric version)."""
    version = Path(bindir).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version))


def find_binaries() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or ``None``.

    Looks, in order, at ``pg_config --bindir``, the newest
    ``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu layout) and ``PATH``. A
    directory only counts if it really contains the server binaries
    (``pg_config`` from ``libpq-dev`` alone does not).
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            candidates.append(Path(out))
    candidates.extend(
        Path(d)
        for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    )
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    return next((c for c in candidates if _has_server_binaries(c)), None)


def _running_on_ci() -> bool:
    """Tell whether ``CI`` is set to anything but an empty/false-ish value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_binaries() -> Path:
    """Return :func:`find_binaries`, or skip/fail the current test if missing.

    Without PostgreSQL the calling test is skipped (``pytest.skip``) with a
    clear reason -- unless the ``CI`` environment variable is set, in which
    case a missing PostgreSQL is a hard error: CI must never skip silently.
    """
    bindir = find_binaries()
    if bindir is not None:
        return bindir
    message = f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}"
    if _running_on_ci():
        raise PostgresServerError(f"{message} (CI is set, so this is an error, not a skip)")
    import pytest

    pytest.skip(message)


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<could not read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


class PostgresServer:
    """A running throwaway PostgreSQL server; create it with :meth:`start`.

    Attributes:
        bindir: Directory of the PostgreSQL binaries used.
        host: Always ``127.0.0.1``.
        port: TCP port the server listens on.
        root: Private ``/tmp/lakebook-pg-*`` directory (data + socket dirs),
            deleted by :meth:`stop`.
        data_dir: The cluster's data directory (under ``root``).
        socket_dir: Unix socket directory (under ``root``).
        log_file: Server log, ``base_dir / "postgres.log"``; kept after stop.
    """

    def __init__(self, bindir: Path, base_dir: Path) -> None:
        """Prepare (but do not start) a server; prefer :meth:`start`."""
        self.bindir = bindir
        self.host = HOST
        self.port = 0
        base_dir.mkdir(parents=True, exist_ok=True)
        self.log_file = base_dir / "postgres.log"
        self.root = Path(tempfile.mkdtemp(prefix="lakebook-pg-", dir="/tmp"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self._as_postgres = os.geteuid() == 0
        self._running = False

    @classmethod
    def start(cls, base_dir: Path, bindir: Path | None = None) -> PostgresServer:
        """Initialise and start a new server; its log goes to ``base_dir``.

        Args:
            base_dir: Directory for the server log (created if missing).
            bindir: PostgreSQL binaries to use; default :func:`find_binaries`.

        Raises:
            PostgresServerError: PostgreSQL is not installed, or ``initdb`` /
                ``pg_ctl start`` failed (the message includes the log tail).
        """
        bindir = bindir or find_binaries()
        if bindir is None:
            raise PostgresServerError(
                f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}"
            )
        server = cls(bindir, base_dir)
        try:
            server._prepare_dirs()
            server._initdb()
            server._start()
        except BaseException:
            server._abort()
            raise
        return server

    # -- public API ---------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL.

        The URL has the form ``postgresql+psycopg://postgres@127.0.0.1:PORT/NAME``.
        """
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for ``database`` on this server."""
        return URL.create(
            "postgresql+psycopg",
            username=SUPERUSER,
            host=self.host,
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    def dsn(self, database: str = "postgres") -> str:
        """Return the libpq connection string for ``database`` (for psycopg directly)."""
        return make_conninfo(host=self.host, port=self.port, user=SUPERUSER, dbname=database)

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``) and delete its directory.

        Idempotent; the log file in ``base_dir`` is kept.
        """
        try:
            if self._running:
                self._running = False
                self._run(
                    [self._bin("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data_dir)],
                    what="pg_ctl stop",
                )
        finally:
            self._cleanup()

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<PostgresServer {self.host}:{self.port} {state} data={self.data_dir}>"

    # -- internals ----------------------------------------------------------

    def _bin(self, name: str) -> str:
        return str(self.bindir / name)

    def _prepare_dirs(self) -> None:
        # mkdtemp creates 0700; the postgres user must be able to traverse it.
        self.root.chmod(0o755)
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(mode=0o700)
            if self._as_postgres:
                try:
                    user = pwd.getpwnam(POSTGRES_USER)
                except KeyError:
                    raise PostgresServerError(
                        f"running as root but there is no {POSTGRES_USER!r} OS user "
                        f"to run initdb/pg_ctl as; {INSTALL_HINT}"
                    ) from None
                os.chown(directory, user.pw_uid, user.pw_gid)

    def _command(self, args: list[str]) -> list[str]:
        if self._as_postgres:
            return ["runuser", "-u", POSTGRES_USER, "--", *args]
        return args

    def _run(self, args: list[str], what: str) -> None:
        """Run a PostgreSQL tool, appending its output to the log file.

        The log file is opened here (possibly as root) and handed down as
        stdout/stderr, so the server itself can keep writing to it even when
        the ``postgres`` user could not open ``base_dir`` on its own.
        """
        with self.log_file.open("ab") as log:
            log.write(f"\n### lakebook: {what}: {' '.join(args)}\n".encode())
            log.flush()
            result = subprocess.run(
                self._command(args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,  # the postgres user may not be able to read our cwd
                check=False,
            )
        if result.returncode != 0:
            raise PostgresServerError(
                f"{what} failed with exit code {result.returncode}; "
                f"last lines of {self.log_file}:\n{_tail(self.log_file)}"
            )

    def _initdb(self) -> None:
        self._run(
            [
                self._bin("initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                SUPERUSER,
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            what="initdb",
        )

    def _start(self) -> None:
        # A port picked by _free_port can be taken by someone else before the
        # server binds it, so retry a few times with a new port.
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.port = _free_port()
            options = f"-c listen_addresses={HOST} -p {self.port} -k {self.socket_dir} -c fsync=off"
            try:
                self._run(
                    [
                        self._bin("pg_ctl"),
                        "start",
                        "-w",
                        "-t",
                        "60",
                        "-D",
                        str(self.data_dir),
                        "-o",
                        options,
                    ],
                    what=f"pg_ctl start (port {self.port}, attempt {attempt})",
                )
            except PostgresServerError as exc:
                # Retry only on a port clash; anything else is a real problem.
                if attempt == _START_ATTEMPTS or "could not bind" not in str(exc):
                    raise
                continue
            self._running = True
            atexit.register(self.stop)
            return

    def _abort(self) -> None:
        """Best-effort teardown after a failed start (server may be half up)."""
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                self._command(
                    [self._bin("pg_ctl"), "stop", "-m", "immediate", "-D", str(self.data_dir)]
                ),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                cwd=self.root,
                check=False,
            )
        self._running = False
        self._cleanup()

    def _cleanup(self) -> None:
        atexit.unregister(self.stop)
        shutil.rmtree(self.root, ignore_errors=True)
