"""pg_cron really runs the job ``pgsweep schedule`` registers for a database that is not the cron
database, and ``pgsweep verify`` then shows its successful last run.

pg_cron starts jobs on minute boundaries, so this waits up to a minute: marked ``soak``
(``pytest -m "not soak"`` leaves it out). Its cluster runs jobs in background workers
(``cron.use_background_workers``), so no libpq login is needed (docs/scheduling.md, "Scheduling with
pg_cron")."""

from __future__ import annotations

import time

import pytest

from pgsweep import cron, migrate, verify
from tests.cli import pgsweep
from tests.cron_cluster import cron_cluster
from tests.pg import connect

pytestmark = pytest.mark.soak


def test_pg_cron_runs_the_scheduled_cleanup_in_the_app_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with cron_cluster("matcha", background_workers=True) as (cluster, app):
        migrate.upgrade(app, "head")
        with connect(app) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute(
                "INSERT INTO users (username, email, password_hash) VALUES ('a', 'a@x', 'h')"
            )
            conn.execute(
                "INSERT INTO refresh_tokens (user_id, token_hash, expires_at)"
                " SELECT (SELECT id FROM users), 'h' || g, now() - interval '1 day'"
                " FROM generate_series(1, 25) g"
            )
        # 0007 registered nothing here (the app's database is not the cron database).
        done = pgsweep(capsys, "schedule", "--dsn", app, "--cron", "* * * * *")
        assert done.code == 0, done.err

        deadline = time.monotonic() + 90
        with connect(cluster.dsn()) as cron_db:
            while time.monotonic() < deadline:
                runs = cron_db.execute(
                    "SELECT d.status, d.return_message FROM cron.job_run_details d"
                    " JOIN cron.job j USING (jobid) WHERE j.jobname = %s"
                    " AND d.status IN ('succeeded', 'failed')",
                    (cron.DEFAULT_JOB,),
                ).fetchall()
                if runs:
                    break
                time.sleep(1)
        assert runs == [("succeeded", "CALL")]
        with connect(app) as conn:
            assert conn.execute("SELECT count(*) FROM refresh_tokens").fetchone() == (0,)
            # The run history tells what pg_cron's "CALL" does not (docs/observability.md).
            assert conn.execute(
                "SELECT invoked_by, status, rows_deleted FROM pgsweep.runs"
            ).fetchall() == [("scheduler", "succeeded", 25)]
        report = verify.verify(app)
        assert report.ok, [c.evidence for c in report.failures]
        last = next(c for c in report.checks if c.name.startswith("pg_cron last run"))
        assert last.evidence.startswith("succeeded, started")
