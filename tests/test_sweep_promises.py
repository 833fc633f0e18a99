"""What every sweep driver promises, whichever driver runs it: ``CALL pgsweep.sweep()``
(commits per batch), ``pgsweep cleanup`` (cleanup.cleanup), ``pgsweep run``
(runner.sweep_once) and, where it applies, ``pgsweep.sweep_table()``.

* A run follows the rules as they are when each batch starts, not as they were when the run
  began: a longer keep_for, a removed rule, committed by another session mid-run, hold for the
  batches that follow.
* One failing rule does not stop the others; its error is in the history.
* A cancel or an error between batches leaks no lock: another session sweeps the rule next.
* An orphan rule runs after the rules of its parent table, whatever the names.
* A run stopped by its time budget says so; pacing counts rows deleted, not partitions dropped.
* The lag of a rule that is not an age rule is the time its garbage has waited.
* sweep_table() does not keep a parent table locked for the caller's whole transaction.

The "mid-run" moment is chosen by the test (tests/sweep_gates.py): sweeps delete one row per
batch (pgsweep.batch_min = 1, batch size 1) and wait at a gate row until the test has made its
change. Every table name needs no quoting and sorts where the case needs it.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgsweep import cleanup, engine, runner
from pgsweep.errors import PgsweepError
from tests.pg import connect
from tests.sweep_gates import (
    Background,
    Gates,
    advisory_locks_of,
    age_table,
    gates,
    labels,
    pid_of,
    sweeper,
    wait_until,
)

Connection = psycopg.Connection[Any]
DRIVERS = ("procedure", "cleanup", "runner")


@pytest.fixture
def db(fresh_db: str) -> str:
    engine.install(fresh_db)
    return fresh_db


def with_settings(dsn: str, settings: dict[str, str]) -> str:
    """``dsn`` whose sessions start with these settings (for cleanup.cleanup's own session)."""
    options = " ".join(f"-c {name}={value}" for name, value in settings.items())
    return make_conninfo(dsn, options=options)


def start_sweep(
    dsn: str, driver: str, settings: dict[str, str] | None = None, batch_size: int = 1
) -> tuple[Background[Any], Connection | None]:
    """A sweep by ``driver`` in a thread of its own, one-row batches; its session (None for
    cleanup, which opens its own)."""
    all_settings = {"pgsweep.batch_min": "1", **(settings or {})}
    if driver == "cleanup":
        own = with_settings(dsn, all_settings)
        return Background(lambda: cleanup.cleanup(own, batch_size=batch_size)), None
    conn = sweeper(dsn, all_settings)
    if driver == "procedure":
        return Background(
            lambda: conn.execute("CALL pgsweep.sweep(NULL, %s)", (batch_size,)).fetchone()
        ), conn
    return Background(lambda: runner.sweep_once(conn, 1, batch_size)), conn


def sweep(dsn: str, driver: str, settings: dict[str, str] | None = None) -> Any:
    """A whole sweep by ``driver``, waited for; its result (or its error, raised)."""
    work, conn = start_sweep(dsn, driver, settings, batch_size=5000)
    try:
        return work.result()
    finally:
        if conn is not None:
            conn.close()


def partitioned_events(conn: Connection, table: str) -> None:
    """``table`` range-partitioned on ``at``: one partition entirely past the cutoff (rows 50
    and 40 days old), one straddling it (10 days old, and live); an age rule on ``at``."""
    conn.execute(
        f"CREATE TABLE {table} (label text NOT NULL, at timestamptz NOT NULL)"
        " PARTITION BY RANGE (at)"
    )
    conn.execute(
        f"CREATE TABLE {table}_old PARTITION OF {table}"
        " FOR VALUES FROM (now() - interval '60 days') TO (now() - interval '30 days')"
    )
    conn.execute(
        f"CREATE TABLE {table}_now PARTITION OF {table}"
        " FOR VALUES FROM (now() - interval '30 days') TO (now() + interval '30 days')"
    )
    conn.execute(f"CREATE INDEX ON {table} (at)")
    conn.execute(
        f"INSERT INTO {table} (label, at) SELECT l, now() + d * interval '1 day'"
        " FROM (VALUES ('old 50', -50), ('old 40', -40), ('now 10', -10), ('live', 1)) v(l, d)"
    )
    conn.execute("SELECT pgsweep.add_rule(%s, 'at')", (table,))


def partitions_of(conn: Connection, table: str) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT relid::text FROM pg_partition_tree(%s::regclass) WHERE isleaf ORDER BY 1",
            (table,),
        )
    ]


# --- 1. the rules as they are when each batch starts ------------------------------------


TOKENS_AGES = {
    "gate:1": -30.0,
    "old 25": -25.0,
    "mid 15": -15.0,
    "mid 10": -10.0,
    "recent 5": -5.0,
    "recent 1": -1.0,
    "live": 1.0,
}


# One row per 2 s: after its first batch the sweep paces for about 2 s, the moment a rule change
# that waited for that batch commits in.
PACED = {"pgsweep.max_rows_per_second": "0.5"}


def change_during_the_batch(dsn: str, gate: Gates, statement: str) -> None:
    """``statement`` (a rule change) from another session while the sweep's batch is under way
    (held at ``gate`` 1): it waits for that batch, which read the rule and holds it until it
    commits, and commits right after it, while the sweep paces (PACED). So the batch under way
    finishes under the rule it began with, and every later batch runs under the new one."""

    def change() -> None:
        with connect(dsn) as other:
            other.execute("SET lock_timeout = '30s'")
            other.execute(statement)

    changing = Background(change)
    with connect(dsn) as watcher:
        deadline = time.monotonic() + 30
        while not watcher.execute(
            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query = %s)",
            (statement,),
        ).fetchone()[0]:  # type: ignore[index]
            assert not changing.done(), "the rule change did not wait for the batch under way"
            assert time.monotonic() < deadline, "the rule change never started"
            time.sleep(0.01)
    gate.release(1)
    changing.result()


@pytest.mark.parametrize("driver", DRIVERS)
def test_longer_keep_for_committed_mid_run_holds_for_the_next_batches(db: str, driver: str) -> None:
    """keep_for made 20 days while the sweep is in its first batch of a_tokens: the change
    waits for that batch, and the following batches leave the rows younger than 20 days."""
    with connect(db) as conn:
        age_table(conn, "a_tokens", TOKENS_AGES, gate=True)
        with gates(db, [1]) as gate:
            work, session = start_sweep(db, driver, PACED)
            gate.wait_at(1)
            change_during_the_batch(
                db, gate, "SELECT pgsweep.add_rule('a_tokens', 'at', '20 days')"
            )
            work.result()
        assert labels(conn, "a_tokens") == ["live", "mid 10", "mid 15", "recent 1", "recent 5"], (
            "rows inside the new 20-day retention were deleted by the batches after the change"
        )
        if session is not None:
            session.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_rule_removed_mid_run_deletes_nothing_more(db: str, driver: str) -> None:
    """remove_rule on a_tokens while the sweep is in its first batch: the batch under way
    commits (its row was garbage then), the removal right after it, and no later batch deletes
    anything."""
    with connect(db) as conn:
        age_table(conn, "a_tokens", TOKENS_AGES, gate=True)
        with gates(db, [1]) as gate:
            work, session = start_sweep(db, driver, PACED)
            gate.wait_at(1)
            change_during_the_batch(db, gate, "SELECT pgsweep.remove_rule('a_tokens')")
            error = work.error()
        assert error is None or isinstance(error, PgsweepError), error
        kept = sorted(label for label in TOKENS_AGES if label != "gate:1")
        assert labels(conn, "a_tokens") == kept, "rows deleted after their rule was removed"
        if session is not None:
            session.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_rule_removed_mid_run_drops_no_partition(db: str, driver: str) -> None:
    """remove_rule on the partitioned b_events while the sweep is still on a_tokens: when the
    sweep reaches b_events, it drops none of its partitions and deletes none of its rows."""
    with connect(db) as conn:
        age_table(conn, "a_tokens", {"gate:1": -30.0, "old 25": -25.0}, gate=True)
        partitioned_events(conn, "b_events")
        with gates(db, [1]) as gate:
            work, session = start_sweep(db, driver)
            gate.wait_at(1)
            conn.execute("SET lock_timeout = '5s'")
            conn.execute("SELECT pgsweep.remove_rule('b_events')")
            gate.release(1)
            error = work.error()
        assert error is None, f"the sweep failed on a rule removed before it got there: {error}"
        assert partitions_of(conn, "b_events") == ["b_events_now", "b_events_old"], (
            "a partition of a table whose rule was removed mid-run was dropped"
        )
        assert labels(conn, "b_events") == ["live", "now 10", "old 40", "old 50"]
        assert labels(conn, "a_tokens") == []
        if session is not None:
            session.close()


# --- 2. one failing rule does not stop the others ----------------------------------------

FAILURES = ("orphan_key_cast", "archive_missing_column", "archive_dropped", "fk_deferred", "fk")


def failing_rule(conn: Connection, failure: str) -> str:
    """A rule that fails when it deletes, on a table sorting before the others; its table
    (every row of it stays: the failing batch is undone)."""
    if failure == "orphan_key_cast":
        conn.execute("CREATE TABLE p_users (id bigint PRIMARY KEY)")
        conn.execute("INSERT INTO p_users VALUES (1)")
        conn.execute("CREATE TABLE a_cache (key text PRIMARY KEY, label text NOT NULL)")
        conn.execute(
            "INSERT INTO a_cache VALUES ('user:abc:profile', 'not a number'),"
            " ('user:1:profile', 'user 1')"
        )
        conn.execute(
            "SELECT pgsweep.add_orphan_rule('a_cache', 'key', 'p_users', 'id',"
            " $$nullif(split_part(key, ':', 2), '')::bigint$$)"
        )
        return "a_cache"
    if failure.startswith("archive"):
        age_table(conn, "a_logs", {"old": -3.0, "live": 1.0})
        conn.execute("SELECT pgsweep.set_archive('a_logs', 'at')")
        if failure == "archive_missing_column":
            conn.execute("ALTER TABLE a_logs ADD COLUMN added_later text DEFAULT 'x'")
        else:
            conn.execute("DROP TABLE a_logs_archive")
        return "a_logs"
    age_table(conn, "a_sessions", {"old": -3.0, "live": 1.0})
    deferred = " DEFERRABLE INITIALLY DEFERRED" if failure == "fk_deferred" else ""
    conn.execute(
        "CREATE TABLE z_refs (id bigserial PRIMARY KEY,"
        f" session_id bigint NOT NULL REFERENCES a_sessions (id){deferred})"
    )
    conn.execute("INSERT INTO z_refs (session_id) SELECT id FROM a_sessions WHERE label = 'old'")
    return "a_sessions"


def other_rules(conn: Connection) -> None:
    age_table(conn, "b_tokens", {"old 1": -2.0, "old 2": -1.0, "live": 1.0})
    age_table(conn, "c_sessions", {"old": -1.0, "live": 1.0})


def failed_rule_names(result: Any) -> set[str]:
    """Tables a driver's result reports as failed or skipped (whatever the shape chosen)."""
    reported = list(getattr(result, "skipped", [])) + list(getattr(result, "failed", []))
    reported += list(getattr(result, "errors", []))
    return {str(getattr(r, "table", r)) for r in reported}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_failing_rule_does_not_stop_the_others(db: str, driver: str, failure: str) -> None:
    with connect(db) as conn:
        failing = failing_rule(conn, failure)
        other_rules(conn)
        rows_before = labels(conn, failing)
        work, session = start_sweep(db, driver, batch_size=5000)
        error = work.error()
        if driver == "runner":
            assert error is None, f"pgsweep run's loop raised: {error!r}"
            assert failing in failed_rule_names(work.result()), "the failed rule is not reported"
        elif driver == "cleanup":
            assert error is None or isinstance(error, PgsweepError), f"raised: {error!r}"
            if error is None:
                assert failing in failed_rule_names(work.result()), "the failure is not reported"
        else:
            assert error is None or isinstance(error, psycopg.Error), error
        assert labels(conn, "b_tokens") == ["live"], f"the rule after {failing}'s was not done"
        assert labels(conn, "c_sessions") == ["live"], f"the rule after {failing}'s was not done"
        assert labels(conn, failing) == rows_before
        recorded = conn.execute(
            "SELECT rr.error, ru.status, ru.error FROM pgsweep.run_rule rr"
            " JOIN pgsweep.run ru USING (run_id)"
            " WHERE rr.table_name = %s ORDER BY rr.started_at DESC LIMIT 1",
            (f"public.{failing}",),
        ).fetchone()
        assert recorded is not None, f"no run recorded {failing}'s rule"
        assert recorded[0], "the rule's error is not in run_rule.error"
        if failure == "archive_dropped":
            # 1.2 knows a dropped archive before it runs: a problem the rule is skipped for,
            # and said why (not a failure of the run).
            assert recorded[0].startswith("skipped: its archive table"), recorded
            return
        assert recorded[1] == "failed", (
            f"the run of the failed rule ended {recorded[1]!r} with error {recorded[2]!r}"
        )
        assert recorded[2], "the failed run has no error"
        if session is not None:
            assert advisory_locks_of(conn, pid_of(session)) == [], "the sweep kept locks"
            session.close()
        assert conn.execute(
            "SELECT count(*) FROM pgsweep.run WHERE status = 'running'"
        ).fetchone() == (0,), "a run is left 'running'"


# --- 3. a cancel or an error between batches leaks no lock --------------------------------

INTERRUPTIONS = ("statement_timeout", "cancel", "error")
POISON_SQL = """
CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.label = 'poison' THEN
        RAISE EXCEPTION 'the commit of the batch that deleted %%', OLD.label;
    END IF;
    RETURN OLD;
END $$;
CREATE CONSTRAINT TRIGGER poison AFTER DELETE ON a_tokens DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION poison();
"""


@pytest.mark.parametrize("interruption", INTERRUPTIONS)
def test_interrupted_between_batches_the_rule_is_free_for_the_next_run(
    db: str, interruption: str
) -> None:
    """The procedure is stopped between two batches (a statement_timeout or a cancel while it
    pauses for pgsweep.max_rows_per_second), or a batch fails at its deferred check: its session
    stays open and idle, holds no advisory lock, its run is not 'running' and says why, and
    another session's sweep then gets the rule and finishes it."""
    with connect(db) as conn:
        ages = {"poison" if interruption == "error" else "first": -6.0}
        ages.update({f"old {n}": -float(n) for n in range(1, 5)} | {"live": 1.0})
        age_table(conn, "a_tokens", ages)
        if interruption == "error":
            conn.execute(POISON_SQL.replace("%%", "%"))
        # 0.2 rows a second: after the first one-row batch, the sweep pauses for 5 s.
        session = sweeper(db, {"pgsweep.max_rows_per_second": "0.2"})
        pid = pid_of(session)
        if interruption == "statement_timeout":
            session.execute("SET statement_timeout = '1s'")
        work = Background(lambda: session.execute("CALL pgsweep.sweep(NULL, 1)"))
        if interruption == "cancel":
            wait_until(
                lambda: (
                    conn.execute(
                        "SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (pid,)
                    ).fetchone()
                    == ("PgSleep",)
                ),
                "the sweep pauses",
            )
            conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
        if interruption == "error":
            # The deferred check is made inside the step (1.2): the rule's step fails, is
            # recorded, and the run ends 'failed' without raising.
            assert work.error() is None, work.error()
        else:
            assert work.error() is not None, "the sweep was not interrupted"
        session.execute("SET statement_timeout = 0")
        if interruption == "error":
            conn.execute("DROP TRIGGER poison ON a_tokens")
        assert session.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert advisory_locks_of(conn, pid) == [], (
            "the interrupted session still holds advisory locks (the rule's, the run's)"
        )
        run = conn.execute(
            "SELECT status, error FROM pgsweep.run WHERE pid = %s ORDER BY run_id DESC LIMIT 1",
            (pid,),
        ).fetchone()
        assert run is not None
        assert run[0] != "running", f"the interrupted run shows {run[0]!r}"
        assert run[1], "the interrupted run has no error"
        with sweeper(db) as other:
            other.execute("CALL pgsweep.sweep()")
            skipped = conn.execute(
                "SELECT rr.error FROM pgsweep.run_rule rr JOIN pgsweep.run ru USING (run_id)"
                " WHERE ru.pid = %s AND rr.error IS NOT NULL",
                (pid_of(other),),
            ).fetchall()
        assert skipped == [], f"the next run skipped the rule: {skipped}"
        assert labels(conn, "a_tokens") == ["live"]
        assert not session.closed
        session.close()


# --- 4. an orphan rule runs after its parent's rules -------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_one_run_leaves_no_orphans_of_the_parents_it_deleted(db: str, driver: str) -> None:
    """a_child's orphan rule (a_child sorts first) and b_parent's age rule: after one run, no
    child of a parent that run deleted is left."""
    with connect(db) as conn:
        age_table(conn, "b_parent", {"expired": -5.0, "live": 1.0})
        conn.execute(
            "CREATE TABLE a_child (id bigserial PRIMARY KEY, label text NOT NULL, parent_id bigint)"
        )
        conn.execute("CREATE INDEX ON a_child (parent_id)")
        conn.execute(
            "INSERT INTO a_child (label, parent_id) SELECT 'child of ' || label, id FROM b_parent"
            " UNION ALL SELECT 'orphan already', 1000"
        )
        conn.execute("SELECT pgsweep.add_orphan_rule('a_child', 'parent_id', 'b_parent', 'id')")
        sweep(db, driver)
        assert labels(conn, "b_parent") == ["live"]
        assert labels(conn, "a_child") == ["child of live"], "the run left orphans it made"


# --- 5. a run stopped by its time budget says so -----------------------------------------


@pytest.mark.parametrize("driver", ["procedure", "cleanup"])
def test_run_stopped_by_max_run_time_is_recorded_stopped(db: str, driver: str) -> None:
    with connect(db) as conn:
        age_table(conn, "a_tokens", {f"old {n}": -float(n) for n in range(1, 6)})
        age_table(conn, "b_tokens", {"old": -1.0, "live": 1.0})
        settings = {"pgsweep.max_run_time": "1ms"}
        work, session = start_sweep(db, driver, settings)
        result = work.result()
        if session is not None:
            session.close()
        first = conn.execute(
            "SELECT ru.run_id, ru.status FROM pgsweep.run ru JOIN pgsweep.run_rule rr"
            " USING (run_id) WHERE rr.table_name = 'public.a_tokens' ORDER BY run_id LIMIT 1"
        ).fetchone()
        assert first is not None
        assert first[1] == "stopped", f"a run stopped by max_run_time is recorded {first[1]!r}"
        assert labels(conn, "b_tokens") == ["live", "old"]
        in_history = conn.execute(
            "SELECT count(*) FROM pgsweep.run_rule WHERE table_name = 'public.b_tokens'"
        ).fetchone() == (1,)
        in_result = any(
            getattr(p, "table", None) == "b_tokens" and getattr(p, "stopped", False)
            for p in getattr(result, "pauses", [])
        )
        assert in_history or in_result, "b_tokens, never reached, is not shown as left"
        if driver == "procedure":
            assert in_history, "the procedure's history does not show b_tokens left"


# --- 6. pacing counts rows deleted row by row ---------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_partitions_dropped_whole_cause_no_pause(db: str, driver: str) -> None:
    """2,000 rows of a partition dropped whole, 3 rows deleted in one-row batches, at most
    1,000 rows a second: 3 rows need no pause (1.1 counted the partition's rows and paused
    2 s)."""
    with connect(db) as conn:
        partitioned_events(conn, "b_events")
        conn.execute(
            "INSERT INTO b_events (label, at) SELECT 'old', now() - interval '45 days'"
            " FROM generate_series(1, 1998)"
        )
        conn.execute(
            "INSERT INTO b_events (label, at) SELECT 'now', now() - n * interval '1 hour'"
            " FROM generate_series(1, 2) n"
        )
        work, session = start_sweep(db, driver, {"pgsweep.max_rows_per_second": "1000"})
        work.result()
        if session is not None:
            session.close()
        assert labels(conn, "b_events") == ["live"]
        assert partitions_of(conn, "b_events") == ["b_events_now"]
        assert conn.execute("SELECT sum(pauses), sum(paused_for) FROM pgsweep.run").fetchone() == (
            0,
            dt.timedelta(0),
        ), "the run paused for rows it never deleted one by one"


# --- 7. the lag of rules that are not age rules -------------------------------------------


def test_lag_of_condition_and_orphan_rules_is_the_time_their_garbage_waited(db: str) -> None:
    """Both rules were last left clean by a run 3 hours ago, and have garbage now: their lag
    is those 3 hours, past the 1-hour target (1.1: 0, on target)."""
    with connect(db) as conn:
        conn.execute(
            "CREATE TABLE a_tokens (id bigserial PRIMARY KEY, label text NOT NULL,"
            " used_at timestamptz)"
        )
        conn.execute("CREATE INDEX ON a_tokens (used_at)")
        conn.execute(
            "SELECT pgsweep.add_condition_rule('a_tokens', 'used_at', 'used_at IS NOT NULL')"
        )
        conn.execute("CREATE TABLE b_users (id bigint PRIMARY KEY)")
        conn.execute("CREATE TABLE b_cache (id bigserial PRIMARY KEY, user_id bigint)")
        conn.execute("CREATE INDEX ON b_cache (user_id)")
        conn.execute("SELECT pgsweep.add_orphan_rule('b_cache', 'user_id', 'b_users', 'id')")
        # Registered a day ago (1.2 keeps when), last left clean 3 hours ago.
        conn.execute("UPDATE pgsweep.expiry_rule SET registered_at = now() - interval '1 day'")
        conn.execute(
            "WITH r AS (INSERT INTO pgsweep.run (started_at, ended_at, invoked_by, status)"
            " VALUES (now() - interval '3 hours', now() - interval '3 hours' + interval '1s',"
            " 'procedure', 'succeeded') RETURNING run_id)"
            " INSERT INTO pgsweep.run_rule (run_id, table_name, column_name, started_at, ended_at)"
            " SELECT r.run_id, t, c, now() - interval '3 hours',"
            " now() - interval '3 hours' + interval '1s'"
            " FROM r, (VALUES ('public.a_tokens', 'used_at'),"
            " ('public.b_cache', 'user_id')) v(t, c)"
        )
        conn.execute("INSERT INTO a_tokens (label, used_at) VALUES ('used', now())")
        conn.execute("INSERT INTO b_cache (user_id) VALUES (7)")
        status = conn.execute(
            "SELECT table_name::text, garbage, expiry_lag >= interval '2 hours 59 minutes', lag_ok"
            " FROM pgsweep.rule_status ORDER BY 1"
        ).fetchall()
        assert status == [
            ("public.a_tokens", 1, True, False),
            ("public.b_cache", 1, True, False),
        ], status
        # Never swept since it was registered 2 hours ago: the lag counts from there.
        conn.execute("DELETE FROM pgsweep.run")
        conn.execute("UPDATE pgsweep.expiry_rule SET registered_at = now() - interval '2 hours'")
        status = conn.execute(
            "SELECT table_name::text, expiry_lag >= interval '1 hour 59 minutes',"
            " expiry_lag < interval '2 hours 1 minute', lag_ok"
            " FROM pgsweep.rule_status ORDER BY 1"
        ).fetchall()
        assert status == [
            ("public.a_tokens", True, True, False),
            ("public.b_cache", True, True, False),
        ]
        # No garbage: no lag.
        conn.execute("DELETE FROM a_tokens")
        conn.execute("DELETE FROM b_cache")
        status = conn.execute(
            "SELECT expiry_lag, lag_ok FROM pgsweep.rule_status ORDER BY table_name"
        ).fetchall()
        assert status == [(dt.timedelta(0), True), (dt.timedelta(0), True)]


# --- 8. sweep_table() holds no parent's lock for the caller's transaction ----------------


def test_sweep_table_leaves_the_parent_table_writable(db: str) -> None:
    with connect(db) as conn:
        conn.execute("CREATE TABLE b_users (id bigint PRIMARY KEY)")
        conn.execute("INSERT INTO b_users VALUES (1)")
        conn.execute(
            "CREATE TABLE a_cache (id bigserial PRIMARY KEY, label text NOT NULL, user_id bigint)"
        )
        conn.execute("CREATE INDEX ON a_cache (user_id)")
        conn.execute("INSERT INTO a_cache (label, user_id) VALUES ('kept', 1), ('orphan', 2)")
        conn.execute("SELECT pgsweep.add_orphan_rule('a_cache', 'user_id', 'b_users', 'id')")
        with connect(db, autocommit=False) as caller, connect(db) as app:
            caller.execute("SELECT pgsweep.sweep_table('a_cache')")
            app.execute("SET lock_timeout = '500ms'")
            try:
                app.execute("INSERT INTO b_users VALUES (2)")
            except psycopg.errors.LockNotAvailable as exc:
                pytest.fail(f"the app waited for sweep_table's lock on b_users: {exc}")
            finally:
                caller.rollback()
