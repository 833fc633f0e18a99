"""Engine 1.4, each fix proven on a real server with real sessions (every test fails on 1.3).

* A cancel that strikes CALL pgsweep.sweep() outside its exception handlers (no handler may
  enclose a COMMIT) left the run 'running' and the rule's session lock held for as long as the
  session lived: the session's next run closes and releases them, the run's close is committed
  before the ANALYZE at its end, and a session skipping the rule is told which pid holds it.
* install.embed.sql keeps the procedure's own COMMITs: installed from it, a sweep commits batch
  by batch.
* Every wait of a step on the app is bounded: a table the app holds ACCESS EXCLUSIVE is given
  way to ("table locked") and the run goes on with the next rule.
* keep_for with a negative field ('1 mon -30 days') is refused.
* Only a role that may delete from a rule's table can lock the rule's row.
* Default live view names stay unique past 63 bytes; another table's view is never replaced.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgsweep import engine
from pgsweep.health import Thresholds, health
from tests import own_tables
from tests.pg import connect
from tests.roles import temporary_roles
from tests.test_run_history_1_2 import grant_sweeping

Connection = psycopg.Connection[Any]
# A probe the tests hold to stop a sweep at a point of their choosing (test triggers and an
# index expression wait for it); never an engine key.
PROBE_KEY = 424242
# Detects a hang (a wait that is not bounded) without timing anything that works.
HANG = "SET statement_timeout = '120s'"


@pytest.fixture
def app_db(fresh_db: str) -> str:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
    return fresh_db


def one(conn: Connection, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def pid_of(conn: Connection) -> int:
    return int(one(conn, "SELECT pg_backend_pid()"))


def wait_until_waiting(watch: Connection, pid: int, event: str) -> None:
    """Until session ``pid`` waits on ``event`` (pg_stat_activity.wait_event)."""
    for _ in range(2400):
        if one(
            watch,
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event = %s",
            (pid, event),
        ):
            return
        watch.execute("SELECT pg_sleep(0.05)")
    raise AssertionError(f"session {pid} never waited on {event}")


class Call:
    """A statement run in a thread on ``conn``: its error, once it has ended."""

    def __init__(self, conn: Connection, statement: str) -> None:
        self.error: BaseException | None = None
        self.conn = conn
        self.statement = statement
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.conn.execute(self.statement)
        except BaseException as exc:  # handed to the test
            self.error = exc

    def join(self) -> BaseException | None:
        self.thread.join(timeout=180)
        assert not self.thread.is_alive()
        return self.error


def rule_locks_held(conn: Connection, pid: int) -> int:
    return int(
        one(
            conn,
            "SELECT count(*) FROM pgsweep.expiry_rule r,"
            " pgsweep.rule_lock_keys(r.table_name, r.column_name) k, pg_locks l"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.pid = %s AND l.objsubid = 2"
            " AND l.classid = k.classid::oid AND l.objid = k.objid::oid",
            (pid,),
        )
    )


def running_runs(conn: Connection) -> int:
    return int(one(conn, "SELECT count(*) FROM pgsweep.run WHERE status = 'running'"))


# --- a cancel outside the procedure's handlers -------------------------------------------------


@pytest.fixture
def stop_at_the_stopped_record(app_db: str) -> str:
    """A probe on the history: the record a run writes for the rule its time budget cut
    (sweep_step_end after the pace's COMMIT, outside any handler) waits for PROBE_KEY."""
    with connect(app_db) as conn:
        conn.execute(
            "CREATE FUNCTION public.probe_wait() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN PERFORM pg_advisory_xact_lock({PROBE_KEY}); RETURN coalesce(NEW, OLD);"
            " END $$"
        )
        conn.execute(
            "CREATE TRIGGER probe BEFORE INSERT OR UPDATE ON pgsweep.run_rule FOR EACH ROW"
            " WHEN (NEW.error LIKE 'stopped: %') EXECUTE FUNCTION public.probe_wait()"
        )
        # Enough garbage for more than one batch of 2.
        conn.execute(
            'INSERT INTO sessions (label, "userId", "expiresAt")'
            " SELECT 'old', 1, now() AT TIME ZONE 'UTC' - interval '1 day'"
            " FROM generate_series(1, 20)"
        )
    return app_db


@pytest.mark.parametrize(
    "next_run",
    [
        """CALL pgsweep.sweep('"ActingWeb"."Attributes"')""",
        # an app's call in its own transaction (a pooled connection the app uses too)
        """SELECT pgsweep.sweep_table('"ActingWeb"."Attributes"')""",
    ],
)
def test_a_cancel_right_after_a_commit_leaves_nothing_past_the_sessions_next_run(
    stop_at_the_stopped_record: str, next_run: str
) -> None:
    db = stop_at_the_stopped_record
    with connect(db) as sweeper, connect(db) as other, connect(db) as probe:
        sweeper.execute(HANG)
        sweeper.execute("SET pgsweep.max_run_time = '1ms'")  # stop after the first batch
        pid = pid_of(sweeper)
        probe.execute("SELECT pg_advisory_lock(%s)", (PROBE_KEY,))
        call = Call(sweeper, "CALL pgsweep.sweep('sessions', 2)")
        wait_until_waiting(probe, pid, "advisory")
        # The run is past the rule's last COMMIT, the rule's lock held: cancel it here.
        assert rule_locks_held(probe, pid) == 1
        probe.execute("SELECT pg_cancel_backend(%s)", (pid,))
        assert isinstance(call.join(), psycopg.errors.QueryCanceled)
        probe.execute("SELECT pg_advisory_unlock(%s)", (PROBE_KEY,))
        leftover = one(probe, "SELECT max(run_id) FROM pgsweep.run WHERE status = 'running'")
        assert leftover is not None  # what no handler could close
        assert rule_locks_held(probe, pid) == 1

        # Meanwhile another session is told who holds the rule and how to free it.
        other.execute("CALL pgsweep.sweep('sessions')")
        told = one(
            other,
            "SELECT rr.error FROM pgsweep.run_rule rr WHERE rr.run_id ="
            " (SELECT max(run_id) FROM pgsweep.run WHERE pid = pg_backend_pid())",
        )
        assert f"pid {pid}" in told
        assert f"pg_terminate_backend({pid})" in told

        # pgsweep health names the idle session holding the rule, and how to free it.
        found = {c.name: c for c in health(db, Thresholds(long_query_warning=0.0)).checks}
        assert found["rule_locks"].status == "warning"
        assert f"pg_terminate_backend({pid})" in found["rule_locks"].summary

        # The session's next run closes its leftover and frees the rule.
        sweeper.execute("RESET pgsweep.max_run_time")
        sweeper.execute(next_run)
        status, error = sweeper.execute(
            "SELECT status, error FROM pgsweep.run WHERE run_id = %s", (leftover,)
        ).fetchone() or (None, None)
        assert status == "interrupted"
        assert "next run" in error
        assert running_runs(probe) == 0
        assert rule_locks_held(probe, pid) == 0
        found = {c.name: c for c in health(db, Thresholds(long_query_warning=0.0)).checks}
        assert found["rule_locks"].status == "ok"
        (deleted,) = other.execute("CALL pgsweep.sweep('sessions')").fetchone() or (0,)
        assert deleted > 0
        assert (
            one(
                other,
                "SELECT count(*) FROM sessions WHERE \"expiresAt\" < now() AT TIME ZONE 'UTC'",
            )
            == 0
        )


# Where a cancel strikes, and how the test stops the run there: a probe (a test trigger that
# waits for PROBE_KEY) or a pause of the procedure's own.
BOUNDARIES = {
    # inside a step: its handler closes the run (1.2)
    # (the DELETE waits 20 ms for a lock: this probe sleeps until the test lets it go)
    "in a batch": (
        "CREATE FUNCTION public.probe_sleep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" WHILE NOT pg_try_advisory_xact_lock_shared({PROBE_KEY}) LOOP"
        " PERFORM pg_sleep(0.05); END LOOP; RETURN OLD; END $$;"
        " CREATE TRIGGER probe BEFORE DELETE ON sessions FOR EACH ROW"
        " EXECUTE FUNCTION public.probe_sleep()",
        "PgSleep",
        "CALL pgsweep.sweep('sessions', 2)",
    ),
    # between batches: the pause's handler closes the run (1.2)
    "in a pause": ("SELECT", "PgSleep", "CALL pgsweep.sweep('sessions', 2, '10min')"),
    # closing the run, outside any handler: its next run closes it (1.4)
    "at the run's close": (
        "CREATE TRIGGER probe BEFORE UPDATE ON pgsweep.run FOR EACH ROW"
        " WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION public.probe_wait()",
        "advisory",
        "CALL pgsweep.sweep('sessions', 2)",
    ),
}


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_a_cancel_anywhere_in_a_run_leaves_the_rule_to_others_and_no_run_open(
    stop_at_the_stopped_record: str, boundary: str
) -> None:
    db = stop_at_the_stopped_record
    probe_sql, event, statement = BOUNDARIES[boundary]
    with connect(db) as conn:
        conn.execute(probe_sql)
    with connect(db) as sweeper, connect(db) as other, connect(db) as probe:
        sweeper.execute(HANG)
        pid = pid_of(sweeper)
        probe.execute("SELECT pg_advisory_lock(%s)", (PROBE_KEY,))
        call = Call(sweeper, statement)
        wait_until_waiting(probe, pid, event)
        probe.execute("SELECT pg_cancel_backend(%s)", (pid,))
        assert isinstance(call.join(), psycopg.errors.QueryCanceled)
        probe.execute("SELECT pg_advisory_unlock(%s)", (PROBE_KEY,))
        # Another session sweeps the rule at once: nothing of the rule is left held.
        other.execute("CALL pgsweep.sweep('sessions')")
        assert (
            one(
                other,
                "SELECT count(*) FROM pgsweep.run_rule rr WHERE rr.error IS NOT NULL"
                " AND rr.run_id = (SELECT max(run_id) FROM pgsweep.run"
                "                   WHERE pid = pg_backend_pid())",
            )
            == 0
        )
        assert (
            one(
                other,
                "SELECT count(*) FROM sessions WHERE \"expiresAt\" < now() AT TIME ZONE 'UTC'",
            )
            == 0
        )
        # After the session's next run, no run of it is open.
        sweeper.execute("""CALL pgsweep.sweep('"ActingWeb"."Attributes"')""")
        assert running_runs(probe) == 0
        assert (
            one(
                probe,
                "SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory'",
                (pid,),
            )
            == 0
        )


def test_a_cancel_during_the_closing_analyze_leaves_the_run_closed_and_nothing_held(
    app_db: str,
) -> None:
    with connect(app_db) as conn:
        # ANALYZE evaluates an expression index's expression on its sample: this one waits for
        # the probe, in the session that sets probe.wait.
        conn.execute(
            "CREATE FUNCTION public.probe_value(v bigint) RETURNS bigint LANGUAGE plpgsql"
            " IMMUTABLE AS $$ BEGIN IF current_setting('probe.wait', true) = 'on' THEN"
            f" PERFORM pg_advisory_xact_lock_shared({PROBE_KEY}); END IF; RETURN v; END $$"
        )
        conn.execute(
            'CREATE INDEX attributes_probe ON "ActingWeb"."Attributes" (public.probe_value(id))'
        )
    with connect(app_db) as sweeper, connect(app_db) as probe:
        sweeper.execute(HANG)
        sweeper.execute("SET probe.wait = 'on'")
        pid = pid_of(sweeper)
        probe.execute("SELECT pg_advisory_lock(%s)", (PROBE_KEY,))
        call = Call(sweeper, 'CALL pgsweep.sweep(\'"ActingWeb"."Attributes"\')')
        wait_until_waiting(probe, pid, "advisory")
        assert (
            one(probe, "SELECT count(*) FROM pg_stat_progress_analyze WHERE pid = %s", (pid,)) == 1
        )
        probe.execute("SELECT pg_cancel_backend(%s)", (pid,))
        assert isinstance(call.join(), psycopg.errors.QueryCanceled)
        probe.execute("SELECT pg_advisory_unlock(%s)", (PROBE_KEY,))
        # Closed before the ANALYZE began: nothing for any later run to clean up.
        assert running_runs(probe) == 0
        assert one(probe, "SELECT status FROM pgsweep.run ORDER BY run_id DESC LIMIT 1") == (
            "succeeded"
        )
        assert rule_locks_held(probe, pid) == 0
        assert (
            one(
                probe,
                "SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory'",
                (pid,),
            )
            == 0
        )


# --- install.embed.sql keeps the procedure's COMMITs ---------------------------------------------


def test_a_sweep_installed_from_the_embed_file_commits_batch_by_batch(fresh_db: str) -> None:
    text = engine.release_file(engine.latest(), "install.embed.sql").read_text(encoding="utf-8")
    with connect(fresh_db, autocommit=False) as tool:
        tool.execute(text)  # as a migration tool sends it, in its own transaction
        tool.commit()
    with connect(fresh_db) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
        garbage = own_tables.GARBAGE[own_tables.ATTRIBUTES]
    counts: set[int] = set()
    with connect(fresh_db) as sweeper, connect(fresh_db) as watch:
        sweeper.execute("SET pgsweep.pacing = off")
        call = Call(
            sweeper,
            "CALL pgsweep.sweep('\"ActingWeb\".\"Attributes\"', 3, p_pause => '300ms')",
        )
        while call.thread.is_alive():
            counts.add(
                int(
                    one(
                        watch,
                        f"SELECT count(*) FROM {own_tables.ATTRIBUTES}"
                        " WHERE ttl_timestamp < extract(epoch FROM now())",
                    )
                )
            )
            watch.execute("SELECT pg_sleep(0.02)")
        assert call.join() is None
    # Seen from outside while the CALL ran: batches already committed, others not yet.
    assert any(0 < n < garbage for n in counts), sorted(counts)


# --- every wait of a step on the app is bounded ------------------------------------------------


def test_a_table_the_app_holds_is_given_way_to_and_the_run_sweeps_the_next_rule(
    app_db: str,
) -> None:
    with connect(app_db, autocommit=False) as app, connect(app_db) as sweeper:
        app.execute(f"LOCK TABLE {own_tables.ATTRIBUTES} IN ACCESS EXCLUSIVE MODE")
        sweeper.execute(HANG)
        sweeper.execute("SET pgsweep.lock_wait = '200ms'")
        (deleted,) = sweeper.execute("CALL pgsweep.sweep()").fetchone() or (None,)
        # Returned while the app still holds its lock, with the other rule swept.
        assert deleted == own_tables.GARBAGE[own_tables.SESSIONS]
        rows = dict(
            sweeper.execute(
                "SELECT rr.table_name, rr.error FROM pgsweep.run_rule rr WHERE rr.run_id ="
                " (SELECT max(run_id) FROM pgsweep.run WHERE pid = pg_backend_pid())"
            ).fetchall()
        )
        assert rows["public.sessions"] is None
        assert rows['"ActingWeb"."Attributes"'].startswith("gave way: table locked")
        assert (
            one(
                sweeper,
                "SELECT status FROM pgsweep.run WHERE pid = pg_backend_pid()"
                " ORDER BY run_id DESC LIMIT 1",
            )
            == "succeeded"
        )
        app.rollback()


@pytest.mark.parametrize("own", [None, "5s", "50ms"])
def test_a_call_in_the_callers_transaction_leaves_its_lock_timeout_as_it_was(
    app_db: str, own: str | None
) -> None:
    """The step bounds its own waits with pgsweep.lock_wait; the app's next statements in the
    same transaction keep the app's own lock_timeout."""
    with connect(app_db, autocommit=False) as app:
        app.execute("SET pgsweep.lock_wait = '200ms'")
        if own is not None:
            app.execute(f"SET LOCAL lock_timeout = '{own}'")
        before = one(app, "SHOW lock_timeout")
        app.execute("SELECT pgsweep.sweep_table(%s)", (own_tables.SESSIONS,))
        assert one(app, "SHOW lock_timeout") == before
        app.rollback()


# --- keep_for with a negative field ------------------------------------------------------------


@pytest.mark.parametrize(
    "keep_for", ["1 mon -30 days", "1 day -1 hour", "-1 mon 40 days", "2 days -00:01", "-1 second"]
)
def test_a_keep_for_with_a_negative_field_is_refused(app_db: str, keep_for: str) -> None:
    with connect(app_db) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="negative part"):
            conn.execute(
                "SELECT pgsweep.add_rule('sessions', 'expiresAt', %s::interval)", (keep_for,)
            )
        assert (
            one(
                conn,
                "SELECT keep_for::text FROM pgsweep.expiry_rule"
                " WHERE table_name = 'sessions'::regclass",
            )
            == "00:00:00"
        )


def test_a_keep_for_with_no_negative_field_is_kept(app_db: str) -> None:
    with connect(app_db) as conn:
        conn.execute("SELECT pgsweep.add_rule('sessions', 'expiresAt', '1 mon 2 days 03:00')")
        assert (
            one(
                conn,
                "SELECT keep_for::text FROM pgsweep.expiry_rule"
                " WHERE table_name = 'sessions'::regclass",
            )
            == "1 mon 2 days 03:00:00"
        )


# --- locking a rule's row ----------------------------------------------------------------------


def test_a_role_that_may_not_delete_from_the_table_cannot_hold_its_rule(app_db: str) -> None:
    with temporary_roles(app_db, "executor", "sweeper") as roles:
        for role in roles.values():
            grant_sweeping(app_db, role.name)
        with connect(app_db) as conn:
            conn.execute(
                sql.SQL("GRANT SELECT, DELETE ON sessions TO {}").format(
                    sql.Identifier(roles["sweeper"].name)
                )
            )
        with connect(roles["executor"].dsn, autocommit=False) as executor:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may not delete"):
                executor.execute("SELECT pgsweep.locked_rule('sessions', 'expiresAt')")
            executor.rollback()
            with connect(app_db) as owner:
                owner.execute("SET lock_timeout = '5s'")  # a held row would fail this
                owner.execute("SELECT pgsweep.add_rule('sessions', 'expiresAt', '1 day')")
        with connect(roles["sweeper"].dsn, autocommit=False) as sweeper:
            rule = sweeper.execute(
                "SELECT (pgsweep.locked_rule('sessions', 'expiresAt')).keep_for::text"
            ).fetchone()
            assert rule == ("1 day",)
            sweeper.rollback()


# --- live view names ---------------------------------------------------------------------------


def test_two_long_table_names_get_two_live_views(app_db: str) -> None:
    common = "t" * 60
    with connect(app_db) as conn:
        for tail in ("_alpha", "_beta"):
            conn.execute(
                sql.SQL("CREATE TABLE {} (id int, at timestamptz)").format(
                    sql.Identifier(common + tail)
                )
            )
            conn.execute(sql.SQL("CREATE INDEX ON {} (at)").format(sql.Identifier(common + tail)))
            conn.execute("SELECT pgsweep.add_rule(%s, 'at')", (f'"{common}{tail}"',))
        views = [
            one(conn, "SELECT pgsweep.create_live_view(%s)::text", (f'"{common}{tail}"',))
            for tail in ("_alpha", "_beta")
        ]
        assert views[0] != views[1]
        assert all(len(v.strip('"')) <= 63 and v.strip('"').endswith("_live") for v in views)
        # Again: the same view, replaced.
        again = one(conn, "SELECT pgsweep.create_live_view(%s)::text", (f'"{common}_alpha"',))
        assert again == views[0]
        # A short name keeps the name it always had.
        assert one(conn, "SELECT pgsweep.create_live_view('sessions')::text") == "sessions_live"


def test_a_live_view_never_replaces_the_apps_own_view_of_the_table(app_db: str) -> None:
    """The app's view of the same table under the name asked for keeps its own filter."""
    with connect(app_db) as conn:
        conn.execute("CREATE VIEW sessions_live AS SELECT * FROM sessions WHERE label <> 'soon'")
        before = one(conn, "SELECT pg_get_viewdef('sessions_live'::regclass)")
        with pytest.raises(psycopg.errors.DuplicateTable, match="not a live view of"):
            conn.execute("SELECT pgsweep.create_live_view('sessions')")
        assert one(conn, "SELECT pg_get_viewdef('sessions_live'::regclass)") == before


def test_a_live_view_never_replaces_another_tables_view(app_db: str) -> None:
    with connect(app_db) as conn:
        conn.execute("SELECT pgsweep.create_live_view('sessions', 'shared_name')")
        with pytest.raises(psycopg.errors.DuplicateTable, match="not a live view of"):
            conn.execute(
                "SELECT pgsweep.create_live_view(%s, 'public.shared_name')",
                (own_tables.ATTRIBUTES,),
            )
        # Still the view of sessions ("userId" is a column of sessions only).
        assert one(conn, 'SELECT count("userId") >= 0 FROM shared_name') is True


# --- a run nested in a live run of the same session --------------------------------------------


def test_a_function_call_nested_in_a_live_run_leaves_that_run_and_its_lock_alone(
    app_db: str,
) -> None:
    """An app's DELETE trigger that calls a cleanup function while the procedure deletes: the
    nested call's run_begin must not take the procedure's live run for a leftover."""
    with connect(app_db) as conn:
        conn.execute(
            "CREATE FUNCTION public.tidy_attributes() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN PERFORM pgsweep.sweep_table('{own_tables.ATTRIBUTES}');"
            " PERFORM set_config('test.lock_during', ("
            "   SELECT count(*) FROM pgsweep.expiry_rule r,"
            "   pgsweep.rule_lock_keys(r.table_name, r.column_name) k, pg_locks l"
            "   WHERE l.locktype = 'advisory' AND l.granted AND l.pid = pg_backend_pid()"
            "   AND l.objsubid = 2 AND l.classid = k.classid::oid AND l.objid = k.objid::oid"
            " )::text, false); RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE TRIGGER tidy AFTER DELETE ON sessions"
            " FOR EACH STATEMENT EXECUTE FUNCTION public.tidy_attributes()"
        )
        conn.execute("CALL pgsweep.sweep('sessions')")
        # The procedure's rule lock was still held inside its own batch.
        assert one(conn, "SELECT current_setting('test.lock_during')") == "1"
        statuses = conn.execute(
            "SELECT status FROM pgsweep.run WHERE invoked_by = 'procedure'"
        ).fetchall()
        assert statuses == [("succeeded",)]
        assert one(conn, "SELECT count(*) FROM sessions") == own_tables.KEPT[own_tables.SESSIONS]


def test_a_cancel_in_the_first_step_of_a_run_closes_the_run_and_is_raised_as_a_cancel(
    app_db: str,
) -> None:
    """A cancel before any step has returned (here while the step waits for a rule row another
    session is changing): the procedure still closes its run and raises the cancel itself."""
    with connect(app_db, autocommit=False) as changer, connect(app_db) as sweeper:
        changer.execute(
            "SELECT pgsweep.add_rule(%s, %s, '1 day')",
            (own_tables.SESSIONS, own_tables.SESSIONS_COLUMN),
        )  # the rule row stays locked until this transaction ends
        sweeper.execute("SET statement_timeout = '300ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            sweeper.execute("CALL pgsweep.sweep('sessions')")
        sweeper.execute("SET statement_timeout = 0")
        changer.rollback()
        pid = pid_of(sweeper)
        assert (
            one(
                sweeper,
                "SELECT status FROM pgsweep.run WHERE pid = %s ORDER BY run_id DESC LIMIT 1",
                (pid,),
            )
            == "failed"
        )
        assert running_runs(sweeper) == 0
        held = one(
            sweeper,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s",
            (pid,),
        )
        assert held == 0


def test_a_closed_run_is_history_never_closed_again_or_added_to(app_db: str) -> None:
    with connect(app_db) as conn:
        run_id = one(conn, "SELECT pgsweep.run_begin('cli')")
        conn.execute("SELECT pgsweep.run_end(%s, 'succeeded', NULL)", (run_id,))
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="closed already"):
            conn.execute("SELECT * FROM pgsweep.run_close(%s, 'failed', 'forged')", (run_id,))
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="closed already"):
            conn.execute(
                "SELECT pgsweep.run_record(%s, 'sessions', 'expiresAt', 123456789, 1)", (run_id,)
            )
        assert conn.execute(
            "SELECT status, error FROM pgsweep.run WHERE run_id = %s", (run_id,)
        ).fetchone() == ("succeeded", None)


def test_health_names_a_rule_lock_taken_by_hand_by_a_busy_session(app_db: str) -> None:
    """A session that took a rule's lock outside any run (pgsweep.lock_rule by hand) and is busy
    with something else keeps every sweep off the rule: health says so, though it is not idle."""
    with connect(app_db) as holder, connect(app_db) as watch:
        assert one(
            holder,
            "SELECT pgsweep.lock_rule(%s, %s, '0')",
            (own_tables.SESSIONS, own_tables.SESSIONS_COLUMN),
        )
        pid = pid_of(holder)
        busy = threading.Thread(target=lambda: holder.execute("SELECT pg_sleep(3)"))
        busy.start()
        try:
            wait_until_waiting(watch, pid, "PgSleep")
            found = {c.name: c for c in health(app_db, Thresholds(long_query_warning=0.0)).checks}
            assert found["rule_locks"].status == "warning"
            assert f"pg_terminate_backend({pid})" in found["rule_locks"].summary
            assert any("with no run of its own" in line for line in found["rule_locks"].lines)
        finally:
            busy.join()


# --- deferrable keys in the caller's transaction -----------------------------------------------


def test_a_key_the_app_defers_itself_never_fails_its_commit(fresh_db: str) -> None:
    """DEFERRABLE INITIALLY IMMEDIATE, deferred by the app (SET CONSTRAINTS ... DEFERRED) before
    it calls the cleanup: the referenced garbage stays, the rest goes, the COMMIT succeeds."""
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute("CREATE TABLE p (id int PRIMARY KEY, at timestamptz NOT NULL)")
        conn.execute("CREATE INDEX ON p (at)")
        conn.execute(
            "CREATE TABLE c (id int PRIMARY KEY, p int REFERENCES p DEFERRABLE INITIALLY IMMEDIATE)"
        )
        conn.execute(
            "INSERT INTO p SELECT g, now() - interval '2 days' FROM generate_series(1, 10) g"
        )
        conn.execute("INSERT INTO c VALUES (1, 3)")
        conn.execute("SELECT pgsweep.add_rule('p', 'at', '1 day')")
    with connect(fresh_db, autocommit=False) as app:
        app.execute("SET CONSTRAINTS ALL DEFERRED")
        (deleted,) = app.execute("SELECT pgsweep.sweep_table('p')").fetchone() or (None,)
        app.commit()  # 1.3: failed here on c_p_fkey, the app's whole transaction lost
        assert deleted == 9
        assert one(app, "SELECT array_agg(id) FROM p") == [3]


def test_a_leaf_partition_referenced_through_its_parents_deferred_key_never_fails_the_commit(
    fresh_db: str,
) -> None:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(
            "CREATE TABLE pr (id int, at timestamptz NOT NULL, PRIMARY KEY (id, at))"
            " PARTITION BY RANGE (at)"
        )
        conn.execute("CREATE TABLE pr_1 PARTITION OF pr FOR VALUES FROM (MINVALUE) TO (MAXVALUE)")
        conn.execute("CREATE INDEX ON pr_1 (at)")
        conn.execute(
            "CREATE TABLE ch (id int PRIMARY KEY, p int, pat timestamptz,"
            " FOREIGN KEY (p, pat) REFERENCES pr DEFERRABLE INITIALLY DEFERRED)"
        )
        conn.execute(
            "INSERT INTO pr SELECT g, now() - interval '2 days' FROM generate_series(1, 10) g"
        )
        conn.execute("INSERT INTO ch SELECT 1, id, at FROM pr WHERE id = 4")
        conn.execute("SELECT pgsweep.add_rule('pr_1', 'at', '1 day')")
    with connect(fresh_db, autocommit=False) as app:
        (deleted,) = app.execute("SELECT pgsweep.sweep_table('pr_1')").fetchone() or (None,)
        app.commit()  # 1.3: failed here on the clone of ch's key onto pr_1
        assert deleted == 9
        assert one(app, "SELECT array_agg(id) FROM pr") == [4]
