"""A throwaway cluster with pg_cron loaded, its cron database ``postgres``, and an empty app
database beside it: what the tests that wait for a real pg_cron run start from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pgsweep_testing.localpg import LocalCluster
from tests.pg import connect


@contextmanager
def cron_cluster(
    app_db: str, *, background_workers: bool = False, settings: dict[str, str] | None = None
) -> Iterator[tuple[LocalCluster, str]]:
    """(the cluster, the app database's DSN). ``background_workers`` runs jobs without a libpq
    login (``cron.use_background_workers``); ``settings`` are ``ALTER SYSTEM`` values. Both take
    a restart, done here."""
    with LocalCluster(cron_database="postgres") as cluster:
        if not cluster.has_pg_cron:
            pytest.skip("pg_cron is not installed (postgresql-15-cron)")
        wanted = dict(settings or {})
        if background_workers:
            wanted["cron.use_background_workers"] = "on"
        with connect(cluster.dsn()) as admin:
            admin.execute("CREATE EXTENSION pg_cron")
            admin.execute(f'CREATE DATABASE "{app_db}"')
            for name, value in wanted.items():
                admin.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        if wanted:
            cluster.restart()
        yield cluster, cluster.dsn(app_db)
