"""upgrade/downgrade stopped part-way, by a lock never granted or by Ctrl-C: the operator is told
where the database stands and who held the lock, with the documented exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from pgsweep import errors, migrate
from tests.cli import matcha_time
from tests.pg import connect

MATCHA_TIME = (sys.executable, "-m", "pgsweep.matcha_cli")


def app_holding_refresh_tokens(dsn: str) -> tuple[psycopg.Connection[Any], int]:
    """An app session, named, in a transaction that holds ROW EXCLUSIVE on refresh_tokens."""
    app = connect(dsn, autocommit=False)
    app.execute("SET application_name = 'matcha-app'")
    app.execute("LOCK TABLE refresh_tokens IN ROW EXCLUSIVE MODE")
    row = app.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return app, int(row[0])


def test_a_downgrade_stopped_by_a_lock_says_where_it_stopped_and_who_held_the_lock(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(fresh_db, "head")
    app, app_pid = app_holding_refresh_tokens(fresh_db)
    try:
        done = matcha_time(
            capsys, "downgrade", "0005", "--yes", "--dsn", fresh_db, "--lock-timeout", "300",
            "--attempts", "2",
        )  # fmt: skip
    finally:
        app.rollback()
        app.close()
    assert done.code == errors.EXIT_LOCK_TIMEOUT, done.err
    # 0008 and 0007 came down; 0006's rollback needs refresh_tokens, which the app holds.
    assert migrate.current(fresh_db) == "0006"
    assert f"the database is at 0006 (it was at {migrate.head()})" in done.err
    assert f"blocked by pid {app_pid} (matcha-app, idle in transaction" in done.err
    assert "the application holds it" not in done.err
    assert len(done.err.strip().splitlines()) == 1


def test_an_upgrade_stopped_by_a_lock_says_the_database_did_not_move(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(fresh_db, "0005")
    app, app_pid = app_holding_refresh_tokens(fresh_db)
    try:
        done = matcha_time(
            capsys, "upgrade", "--dsn", fresh_db, "--lock-timeout", "300", "--attempts", "1"
        )
    finally:
        app.rollback()
        app.close()
    assert done.code == errors.EXIT_LOCK_TIMEOUT, done.err
    assert "the database is at 0005 (unchanged)" in done.err
    assert f"pid {app_pid} (matcha-app" in done.err


def test_ctrl_c_while_a_downgrade_waits_on_a_lock_reports_the_revision_and_exits_130(
    fresh_db: str,
) -> None:
    migrate.upgrade(fresh_db, "head")
    app, _ = app_holding_refresh_tokens(fresh_db)
    try:
        env = {**os.environ, "DATABASE_URL": fresh_db}
        process = subprocess.Popen(
            [*MATCHA_TIME, "downgrade", "0005", "--yes", "--lock-timeout", "600000"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Wait until the migration is queued behind the app's lock, then press Ctrl-C.
        deadline = time.monotonic() + 60
        with connect(fresh_db) as probe:
            while time.monotonic() < deadline:
                row = probe.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone()
                if row and row[0]:
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the downgrade never waited on the app's lock")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        app.rollback()
        app.close()
    assert process.returncode == errors.EXIT_INTERRUPTED, err
    assert "Traceback" not in err + out
    assert f"the database is at 0006 (it was at {migrate.head()})" in err
    assert len(err.strip().splitlines()) == 1, err
    # Nothing half-done: 0006 is whole, and a new upgrade goes on from there.
    assert migrate.current(fresh_db) == "0006"
    migrate.upgrade(fresh_db, "head")
    assert migrate.current(fresh_db) == migrate.head()


def test_lock_retries_keep_the_policys_pauses_and_log_lines(
    fresh_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrate.upgrade(fresh_db, "0005")
    policy = migrate.LockPolicy(lock_timeout_ms=100, attempts=3, first_pause_s=0.2)
    app, _ = app_holding_refresh_tokens(fresh_db)
    try:
        with (
            caplog.at_level("WARNING", logger="pgsweep.migrate"),
            pytest.raises((DBAPIError, psycopg.Error)) as caught,
        ):
            migrate.upgrade(fresh_db, "head", policy)
    finally:
        app.rollback()
        app.close()
    assert migrate.is_lock_timeout(caught.value)
    assert [r.getMessage() for r in caplog.records if r.name == "pgsweep.migrate"] == [
        "lock not granted within 100 ms (attempt 1 of 3); retrying in 0.2 s",
        "lock not granted within 100 ms (attempt 2 of 3); retrying in 0.4 s",
    ]
