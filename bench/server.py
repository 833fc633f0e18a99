"""The server the benchmark runs on, and the databases it creates there.

Either a throwaway local cluster (tuned as described in :data:`OWN_CLUSTER_SETTINGS`) or a
server given by DSN (``DATABASE_URL``, or the test harness's admin DSN) on which we may create
and drop databases as a superuser. Every database the benchmark creates is named ``bench_*``
and dropped at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgsweep.dsn import conninfo, with_dbname
from pgsweep_testing.localpg import LocalCluster

# Settings of the benchmark's own cluster. shared_buffers large enough that the tables of the
# 1M-row scenarios stay cached (the plain side's scans then cost CPU, not disk reads, which is
# the kinder comparison for it); checkpoints far apart so none lands inside a timed run.
# Autovacuum stays on as shipped; the timed cleanups turn it off per table (the data sets
# switch it off on their token tables) and vacuum both sides themselves, at the same points.
OWN_CLUSTER_SETTINGS = {
    "shared_buffers": "4GB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "16GB",
    "checkpoint_timeout": "1h",
}

# Every benchmark session: JIT off, because compiling the plain side's full-table DELETE would
# add tens of milliseconds that are not the cost of its design.
SESSION_OPTIONS = "-c jit=off"


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(dsn, autocommit=autocommit, options=SESSION_OPTIONS)


@dataclass
class BenchServer:
    """Where the benchmark's databases live. ``admin_dsn`` holds a password: never print it."""

    admin_dsn: str
    description: str
    created: list[str] = field(default_factory=list)

    def dsn(self, dbname: str) -> str:
        return with_dbname(self.admin_dsn, dbname)

    def version(self) -> str:
        with connect(self.admin_dsn) as conn:
            row = conn.execute("SELECT current_setting('server_version')").fetchone()
        assert row is not None
        return str(row[0])

    def settings(self, names: list[str]) -> dict[str, str]:
        with connect(self.admin_dsn) as conn:
            rows = conn.execute(
                "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name", (names,)
            ).fetchall()
        return {str(name): str(value) for name, value in rows}

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` (empty, or a file copy of ``template``) and return its DSN.

        A file copy is what makes "the same data twice" exact: the plain side and every
        per-run copy hold the same tuples in the same pages as the original.
        """
        self.drop_database(name)
        with connect(self.admin_dsn) as conn:
            if template is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
                )
            else:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
        self.created.append(name)
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        with connect(self.admin_dsn) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop_database(name)


@contextlib.contextmanager
def bench_server(admin_dsn: str | None) -> Iterator[BenchServer]:
    """The given server (databases dropped afterwards), or a tuned throwaway local cluster."""
    if admin_dsn is not None:
        server = BenchServer(conninfo(admin_dsn), "server given by DSN")
        try:
            yield server
        finally:
            server.drop_all()
        return
    with LocalCluster(preload_cron=False) as cluster:
        with connect(cluster.dsn()) as conn:
            for name, value in OWN_CLUSTER_SETTINGS.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
        cluster.restart()
        settings = ", ".join(f"{k}={v}" for k, v in OWN_CLUSTER_SETTINGS.items())
        yield BenchServer(
            cluster.dsn(), f"throwaway local cluster (fsync off, {settings}, jit off)"
        )
