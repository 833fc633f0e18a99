"""The test-suite's PostgreSQL server and throwaway databases.

One server per session, picked in this order:

1. ``DATABASE_URL``: a server we are allowed to create and drop databases on;
2. a Docker engine (only if testcontainers imports and the engine answers): ``postgres:15``;
3. :class:`pgsweep_testing.localpg.LocalCluster` with pg_cron preloaded for ``postgres``.

``PGSWEEP_TEST_SERVER=env|docker|local`` forces one of them (e.g. ``local`` to get pg_cron on a
machine that also has Docker).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from pgsweep.dsn import conninfo, redact, with_dbname
from pgsweep_testing.localpg import LocalCluster

ServerKind = Literal["env", "docker", "local"]
_KINDS: tuple[ServerKind, ...] = ("env", "docker", "local")

DOCKER_IMAGE = "postgres:15"
CRON_DATABASE = "postgres"
CONNECT_TIMEOUT_S = 10
_DOCKER_PROBE_TIMEOUT_S = 5


@dataclass(frozen=True)
class PgServer:
    """What a test needs to know about the session's server. ``admin_dsn`` holds a password."""

    kind: ServerKind
    admin_dsn: str
    has_pg_cron: bool  # pg_cron is preloaded: CREATE EXTENSION pg_cron works in cron_database
    has_plpgsql_check: bool
    cron_database: str | None = None  # the server's cron.database_name, when pg_cron is loaded
    cluster: LocalCluster | None = None  # set only when kind == "local"

    def dsn(self, dbname: str) -> str:
        return with_dbname(self.admin_dsn, dbname)

    def __repr__(self) -> str:  # pytest prints fixtures on failure: keep the password out
        return f"PgServer(kind={self.kind!r}, admin_dsn={redact(self.admin_dsn)!r})"


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)


# --- databases -------------------------------------------------------------------------


def unique_dbname(hint: str = "") -> str:
    """``pgsweep_<hint>_<random>``, at most 63 bytes, safe as an identifier anywhere."""
    slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:40]
    return "_".join(filter(None, ("pgsweep", slug, uuid.uuid4().hex[:10])))


def create_database(admin_dsn: str, name: str) -> None:
    # template0: a shared server's template1 may carry objects, or be in use (which would make
    # CREATE DATABASE fail); template0 is always clean and never connectable.
    with connect(admin_dsn) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


def drop_database(admin_dsn: str, name: str) -> None:
    # FORCE: a test that leaked a connection must not leak its database too.
    with connect(admin_dsn) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def scratch_database(server: PgServer, hint: str = "") -> Iterator[str]:
    """Create a uniquely named database, yield its DSN, drop it afterwards."""
    name = unique_dbname(hint)
    create_database(server.admin_dsn, name)
    try:
        yield server.dsn(name)
    finally:
        drop_database(server.admin_dsn, name)


# --- servers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Capabilities:
    has_pg_cron: bool
    has_plpgsql_check: bool
    cron_database: str | None


def _probe(dsn: str) -> _Capabilities:
    """What the server behind ``dsn`` offers; asks the server, so it works for any kind."""
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT"
            " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron')"
            " AND current_setting('shared_preload_libraries') ~ '(^|[, ])pg_cron($|[, ])',"
            " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'plpgsql_check'),"
            " current_setting('cron.database_name', true)"
        ).fetchone()
    assert row is not None
    cron = bool(row[0])
    return _Capabilities(cron, bool(row[1]), str(row[2]) if cron and row[2] else None)


def _docker_engine_answers() -> bool:
    try:
        importlib.import_module("testcontainers")
    except ImportError:
        return False
    if shutil.which("docker"):
        try:
            return (
                subprocess.run(
                    ["docker", "info", "--format", "{{.ServerVersion}}"],
                    capture_output=True,
                    timeout=_DOCKER_PROBE_TIMEOUT_S,
                    check=False,
                ).returncode
                == 0
            )
        except subprocess.TimeoutExpired:
            return False
    try:
        docker: Any = importlib.import_module("docker")
        return bool(docker.from_env(timeout=_DOCKER_PROBE_TIMEOUT_S).ping())
    except Exception:  # any failure to reach an engine means "no Docker"
        return False


def _postgres_container_class() -> Any:
    # testcontainers moved the module in 4.x; accept both spellings.
    for module in ("testcontainers.community.postgres", "testcontainers.postgres"):
        with contextlib.suppress(ImportError):
            return importlib.import_module(module).PostgresContainer
    raise ImportError("testcontainers has no PostgresContainer")


@contextlib.contextmanager
def _env_server(url: str) -> Iterator[PgServer]:
    dsn = conninfo(url)
    caps = _probe(dsn)
    yield PgServer("env", dsn, caps.has_pg_cron, caps.has_plpgsql_check, caps.cron_database)


@contextlib.contextmanager
def _docker_server() -> Iterator[PgServer]:
    container = _postgres_container_class()(DOCKER_IMAGE, driver=None)
    with container:
        dsn = with_dbname(conninfo(str(container.get_connection_url())), "postgres")
        caps = _probe(dsn)
        yield PgServer("docker", dsn, caps.has_pg_cron, caps.has_plpgsql_check, caps.cron_database)


@contextlib.contextmanager
def _local_server() -> Iterator[PgServer]:
    with LocalCluster(preload_cron=True, cron_database=CRON_DATABASE) as cluster:
        yield PgServer(
            "local",
            cluster.dsn("postgres"),
            cluster.has_pg_cron,
            cluster.has_plpgsql_check,
            CRON_DATABASE if cluster.has_pg_cron else None,
            cluster,
        )


def _choose() -> ServerKind:
    forced = os.environ.get("PGSWEEP_TEST_SERVER", "").strip()
    if forced:
        for kind in _KINDS:
            if forced == kind:
                return kind
        raise ValueError(f"PGSWEEP_TEST_SERVER must be one of {_KINDS}, not {forced!r}")
    if os.environ.get("DATABASE_URL"):
        return "env"
    if _docker_engine_answers():
        return "docker"
    return "local"


@contextlib.contextmanager
def session_server() -> Iterator[PgServer]:
    """Start (or adopt) the session's server and yield it; tear it down afterwards."""
    kind = _choose()
    if kind == "env":
        url = os.environ.get("DATABASE_URL")
        if not url:
            raise RuntimeError("PGSWEEP_TEST_SERVER=env needs DATABASE_URL")
        with _env_server(url) as server:
            yield server
    elif kind == "docker":
        with _docker_server() as server:
            yield server
    else:
        with _local_server() as server:
            yield server


def tolerate_lag(dsn: str) -> None:
    """Let the rules of this database fall behind without verify failing them: for tests about
    other checks, whose garbage waits on purpose (the lag check: tests/test_run_history.py)."""
    with connect(dsn) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        assert name is not None
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET pgsweep.default_lag_target = '100 years'").format(
                sql.Identifier(str(name[0]))
            )
        )
