"""Faults: cleanups killed mid-backlog, an upgrade killed mid-way, a concurrent build that failed.

Every fault is real: a backend terminated with ``pg_terminate_backend`` or a statement cancelled
with ``pg_cancel_backend`` while it is provably in the middle of its work (seen in
``pg_stat_activity`` or in committed progress), never a flag flipped in the catalog.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from pgsweep import migrate
from tests.pg import PgServer, connect, scratch_database
from tests.sqlrun import assert_same_catalog, catalog_of, up_file
from tests.tokens import add_user

WAIT_S = 60  # upper bound of every poll below; reached only when something is broken
INDEXES_0006 = (
    "idx_password_reset_tokens_expires_at",
    "idx_password_reset_tokens_used_at",
    "idx_password_reset_tokens_user_id",
    "idx_email_verification_tokens_expires_at",
    "idx_email_verification_tokens_used_at",
    "idx_email_verification_tokens_user_id",
    "idx_refresh_tokens_expires_at",
)


def scalar(conn: psycopg.Connection[Any], query: str, *args: object) -> Any:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0]


def wait_for(what: str, probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


def messages(exc: BaseException | None) -> list[str]:
    """The messages of an exception and of everything it was raised from or during."""
    seen: list[str] = []
    while exc is not None and len(seen) < 10:
        seen.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return seen


GARBAGE = (
    "SELECT (SELECT count(*) FROM password_reset_tokens"
    "        WHERE expires_at < now() OR used_at IS NOT NULL)"
    "     + (SELECT count(*) FROM refresh_tokens WHERE expires_at < now())"
)
LIVE_IDS = (
    "SELECT id FROM password_reset_tokens WHERE used_at IS NULL AND expires_at > now()"
    " UNION ALL SELECT id FROM refresh_tokens WHERE expires_at > now()"
)


def seed_backlog(dsn: str) -> None:
    """20,000 garbage rows and 2,000 live ones over 100 users, inserted without the triggers."""
    with connect(dsn) as conn:
        conn.execute("SET session_replication_role = replica")
        users = [add_user(conn, f"backlog{i}") for i in range(100)]
        conn.execute(
            "INSERT INTO refresh_tokens (user_id, token_hash, expires_at)"
            " SELECT u, 'old' || g || u, now() - g * interval '1 second'"
            " FROM unnest(%s::uuid[]) u, generate_series(1, 150) g",
            (users,),
        )
        conn.execute(
            "INSERT INTO password_reset_tokens (user_id, token_hash, expires_at, used_at)"
            " SELECT u, 'used' || g || u, now() + interval '1 hour', now() - g * interval '1 s'"
            " FROM unnest(%s::uuid[]) u, generate_series(1, 50) g",
            (users,),
        )
        for table in ("refresh_tokens", "password_reset_tokens"):
            conn.execute(
                f"INSERT INTO {table} (user_id, token_hash, expires_at)"
                " SELECT u, 'live' || g || u, now() + g * interval '1 minute'"
                " FROM unnest(%s::uuid[]) u, generate_series(1, 10) g",
                (users,),
            )


def live_ids(dsn: str) -> set[str]:
    with connect(dsn) as conn:
        return {str(r[0]) for r in conn.execute(LIVE_IDS)}


def test_a_sweep_terminated_mid_backlog_keeps_its_batches_and_the_next_run_finishes(
    fresh_db: str,
) -> None:
    migrate.upgrade(fresh_db, "head")
    seed_backlog(fresh_db)
    live = live_ids(fresh_db)
    assert len(live) == 2000
    with connect(fresh_db) as watcher:
        backlog = scalar(watcher, GARBAGE)
        assert backlog == 20_000

        def sweep() -> None:
            with connect(fresh_db) as conn:
                conn.execute("SET application_name = 'victim-sweep'")
                conn.execute("CALL pgsweep.sweep(NULL, 500, '50 ms')")

        with ThreadPoolExecutor(1) as pool:
            victim: Future[None] = pool.submit(sweep)
            # Committed batches are visible to another session: wait for the first ones.
            wait_for("a committed batch", lambda: scalar(watcher, GARBAGE) < backlog)
            pid = scalar(
                watcher, "SELECT pid FROM pg_stat_activity WHERE application_name = 'victim-sweep'"
            )
            assert scalar(watcher, "SELECT pg_terminate_backend(%s, 10000)", pid) is True
            with pytest.raises(psycopg.OperationalError, match="terminating connection"):
                victim.result(timeout=WAIT_S)
        left = scalar(watcher, GARBAGE)
    assert 0 < left < backlog  # killed in the middle: some batches committed, work remains
    assert live_ids(fresh_db) == live

    with connect(fresh_db) as conn:
        finished = scalar(conn, "CALL pgsweep.sweep()")
        assert finished == left  # the killed run's open batch was rolled back, not half-done
        assert scalar(conn, GARBAGE) == 0
    assert live_ids(fresh_db) == live


# Test-only: the 5,000th row deleted from refresh_tokens stalls its transaction, so the cleanup
# can be terminated at a known point in the middle of its run. (Schema-qualified: it fires
# inside the cleanup, whose search_path is pg_catalog, pg_temp.)
STALL_SQL = """
CREATE SEQUENCE public.stall_after;
CREATE FUNCTION public.stall() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_catalog.nextval('public.stall_after') = 5000 THEN
        PERFORM pg_catalog.pg_sleep(600);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER stall AFTER DELETE ON refresh_tokens FOR EACH ROW EXECUTE FUNCTION public.stall();
"""


def test_a_cleanup_function_terminated_mid_run_commits_nothing_and_the_next_run_finishes(
    fresh_db: str,
) -> None:
    # The master function runs in its caller's transaction: killed half-way, it is all undone.
    migrate.upgrade(fresh_db, "head")
    seed_backlog(fresh_db)
    live = live_ids(fresh_db)
    with connect(fresh_db) as watcher:
        watcher.execute(STALL_SQL)
        backlog = scalar(watcher, GARBAGE)

        def cleanup() -> None:
            with connect(fresh_db) as conn:
                conn.execute("SET application_name = 'victim-cleanup'")
                conn.execute("SELECT * FROM cleanup_all_expired_tokens()")

        with ThreadPoolExecutor(1) as pool:
            victim: Future[None] = pool.submit(cleanup)
            pid = wait_for(
                "the cleanup to stall half-way",
                lambda: watcher.execute(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE application_name = 'victim-cleanup' AND wait_event = 'PgSleep'"
                ).fetchone(),
            )[0]
            assert scalar(watcher, "SELECT pg_terminate_backend(%s, 10000)", pid) is True
            with pytest.raises(psycopg.OperationalError, match="terminating connection"):
                victim.result(timeout=WAIT_S)
        assert scalar(watcher, GARBAGE) == backlog  # its 4,999 deletions undone with it
        watcher.execute("DROP TRIGGER stall ON refresh_tokens")
    assert live_ids(fresh_db) == live

    with connect(fresh_db) as conn:
        assert scalar(conn, "SELECT total_cleaned FROM cleanup_all_expired_tokens()") == backlog
        assert scalar(conn, GARBAGE) == 0
    assert live_ids(fresh_db) == live


def index_validity(dsn: str) -> dict[str, bool]:
    with connect(dsn) as conn:
        return {
            str(name): bool(valid)
            for name, valid in conn.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(%s)",
                (list(INDEXES_0006),),
            )
        }


def row_counts(dsn: str) -> dict[str, int]:
    with connect(dsn) as conn:
        return {
            table: int(scalar(conn, f"SELECT count(*) FROM {table}"))
            for table in (
                "users",
                "password_reset_tokens",
                "email_verification_tokens",
                "refresh_tokens",
            )
        }


def hold_writer_lock(dsn: str) -> psycopg.Connection[Any]:
    """An app transaction that wrote to email_verification_tokens and stays open: a concurrent
    index build on that table waits for it to end (it cannot see the row's outcome)."""
    app = connect(dsn, autocommit=False)
    user = add_user(app, "slow_app")
    app.execute(
        "INSERT INTO email_verification_tokens (user_id, token_hash, expires_at)"
        " VALUES (%s, 'in-flight', now() + interval '1 hour')",
        (user,),
    )
    return app


def waiting_index_build(conn: psycopg.Connection[Any]) -> int | None:
    row = conn.execute(
        "SELECT pid FROM pg_stat_activity"
        " WHERE query ILIKE 'CREATE INDEX CONCURRENTLY%%email_verification_tokens_expires_at%%'"
        "   AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    ).fetchone()
    return None if row is None else int(row[0])


def test_an_upgrade_terminated_during_its_index_builds_is_finished_by_running_it_again(
    fresh_db: str, pg_server: PgServer
) -> None:
    migrate.upgrade(fresh_db, "0005")
    seed_backlog(fresh_db)
    counts = row_counts(fresh_db)
    patient = migrate.LockPolicy(lock_timeout_ms=WAIT_S * 1000, attempts=1)
    app = hold_writer_lock(fresh_db)
    try:
        with connect(fresh_db) as watcher, ThreadPoolExecutor(1) as pool:
            upgrade = pool.submit(migrate.upgrade, fresh_db, "head", patient)
            pid = wait_for("the index build to wait", lambda: waiting_index_build(watcher))
            assert scalar(watcher, "SELECT pg_terminate_backend(%s, 10000)", pid) is True
            # The caller sees the real cause, not an error raised while cleaning up after it.
            with pytest.raises((psycopg.Error, DBAPIError)) as caught:
                upgrade.result(timeout=WAIT_S)
            chain = " <- ".join(messages(caught.value))
            assert "terminating connection due to administrator command" in chain
            assert "Can't reconnect" not in chain
    finally:
        app.rollback()
        app.close()

    # Mid-way: the earlier builds stand, the interrupted one is INVALID, Part 2 never ran.
    validity = index_validity(fresh_db)
    assert validity["idx_password_reset_tokens_user_id"] is True
    assert validity["idx_email_verification_tokens_expires_at"] is False
    assert "idx_refresh_tokens_expires_at" not in validity
    assert migrate.current(fresh_db) == "0005"
    with connect(fresh_db) as conn:
        assert scalar(conn, "SELECT to_regnamespace('pgsweep')") is None
    assert row_counts(fresh_db) == counts

    migrate.upgrade(fresh_db, "head")
    assert migrate.current(fresh_db) == migrate.head()
    assert index_validity(fresh_db) == dict.fromkeys(INDEXES_0006, True)
    assert row_counts(fresh_db) == counts
    with scratch_database(pg_server, "clean_head") as clean:
        migrate.upgrade(clean, "head")
        assert_same_catalog(catalog_of(clean), catalog_of(fresh_db), "repaired head differs")


def test_a_cancelled_concurrent_build_leaves_an_invalid_index_that_the_next_upgrade_repairs(
    fresh_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The operator's way: psql -f 0006 (with a patient lock_timeout), cancelled mid-build.
    migrate.upgrade(fresh_db, "0005")
    seed_backlog(fresh_db)
    counts = row_counts(fresh_db)
    app = hold_writer_lock(fresh_db)
    env = {**os.environ, "PGOPTIONS": f"-c lock_timeout={WAIT_S}s"}
    try:
        with connect(fresh_db) as watcher:
            psql = subprocess.Popen(
                ["psql", "-X", "-q", "-d", fresh_db, "-f", str(up_file("0006"))],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                pid = wait_for("the index build to wait", lambda: waiting_index_build(watcher))
                assert scalar(watcher, "SELECT pg_cancel_backend(%s)", pid) is True
                _, stderr = psql.communicate(timeout=WAIT_S)
            finally:
                if psql.poll() is None:
                    psql.kill()
                    psql.wait()
    finally:
        app.rollback()
        app.close()
    assert psql.returncode != 0
    assert "canceling statement due to user request" in stderr
    assert index_validity(fresh_db)["idx_email_verification_tokens_expires_at"] is False
    assert migrate.current(fresh_db) == "0005"

    with caplog.at_level(logging.INFO, logger="pgsweep.sql"):
        migrate.upgrade(fresh_db, "head")
    assert any(
        "dropping invalid index idx_email_verification_tokens_expires_at" in r.getMessage()
        for r in caplog.records
    )
    assert index_validity(fresh_db) == dict.fromkeys(INDEXES_0006, True)
    assert migrate.current(fresh_db) == migrate.head()
    assert row_counts(fresh_db) == counts
    with connect(fresh_db) as conn:
        assert scalar(conn, "SELECT total_cleaned FROM cleanup_all_expired_tokens()") == 20_000
