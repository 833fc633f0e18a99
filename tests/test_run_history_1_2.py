"""Run history of engine 1.2 (docs/observability.md): the SECURITY DEFINER recorders obey no
session setting and analyze nothing with the owner's rights; a function call that deletes
nothing writes one idle record and the counters still add up; a run cut by its time budget ends
'stopped'; a run that failed on one rule blames that rule only; a rule's last error is that of
its latest run; create_live_view quotes the view's name or refuses it."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgsweep import engine
from tests import own_tables
from tests.engine_downgrade import downgrade_to
from tests.own_tables import ATTRIBUTES, GARBAGE, SESSIONS
from tests.pg import connect
from tests.roles import temporary_roles

ATTRIBUTES_KEY = ATTRIBUTES
SESSIONS_KEY = "public.sessions"


@pytest.fixture
def app_db(fresh_db: str) -> str:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
    return fresh_db


def one(conn: psycopg.Connection[Any], query: str, *args: object) -> tuple[Any, ...]:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return tuple(row)


def history_rows(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    return (
        one(conn, "SELECT count(*) FROM pgsweep.run")[0],
        one(conn, "SELECT count(*) FROM pgsweep.run_rule")[0],
    )


def counters(conn: psycopg.Connection[Any], table: str) -> tuple[Any, ...]:
    return one(
        conn,
        "SELECT rows_deleted_total, runs_total, failures_total FROM pgsweep.rule_counters"
        " WHERE table_name = %s",
        table,
    )


def grant_sweeping(admin_dsn: str, role: str) -> None:
    """What docs/engine.md gives a role that sweeps: EXECUTE on the engine's routines."""
    with connect(admin_dsn) as conn:
        conn.execute(
            sql.SQL("GRANT EXECUTE ON ALL ROUTINES IN SCHEMA pgsweep TO {}").format(
                sql.Identifier(role)
            )
        )


# --- the SECURITY DEFINER recorders ------------------------------------------------------


def test_a_session_setting_cannot_make_the_recorders_wipe_the_history(app_db: str) -> None:
    with connect(app_db) as conn:
        conn.execute(
            "INSERT INTO pgsweep.run (invoked_by, started_at, ended_at, status)"
            " VALUES ('cli', now() - interval '10 days', now() - interval '10 days', 'succeeded')"
        )
    with temporary_roles(app_db, "sweeper") as roles:
        grant_sweeping(app_db, roles["sweeper"].name)
        with connect(roles["sweeper"].dsn) as sweeper:
            sweeper.execute("SET pgsweep.history_retention = '-1000 days'")
            (run_id,) = one(sweeper, "SELECT pgsweep.run_begin('cli')")
            sweeper.execute("SELECT pgsweep.run_end(%s)", (run_id,))
            # Not even a positive retention shorter than the database's default counts.
            sweeper.execute("SET pgsweep.history_retention = '1 day'")
            (run_id,) = one(sweeper, "SELECT pgsweep.run_begin('cli')")
            sweeper.execute("SELECT pgsweep.run_end(%s)", (run_id,))
    with connect(app_db) as conn:
        assert one(
            conn, "SELECT count(*) FROM pgsweep.run WHERE started_at < now() - '9 days'::interval"
        ) == (1,)
        # The database's own default is obeyed, and a day at least.
        (database,) = one(conn, "SELECT current_database()")
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET pgsweep.history_retention = '-5 days'").format(
                sql.Identifier(database)
            )
        )
        assert one(conn, "SELECT pgsweep.history_retention()") == (dt.timedelta(days=1),)
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET pgsweep.history_retention = '5 days'").format(
                sql.Identifier(database)
            )
        )
        (run_id,) = one(conn, "SELECT pgsweep.run_begin('cli')")
        conn.execute("SELECT pgsweep.run_end(%s)", (run_id,))
        assert one(
            conn, "SELECT count(*) FROM pgsweep.run WHERE started_at < now() - '9 days'::interval"
        ) == (0,)
        assert one(conn, "SELECT count(*) FROM pgsweep.run") == (2 + 1,)
        conn.execute(
            sql.SQL("ALTER DATABASE {} RESET pgsweep.history_retention").format(
                sql.Identifier(database)
            )
        )


def reltuples(conn: psycopg.Connection[Any]) -> float:
    return float(one(conn, "SELECT reltuples FROM pg_class WHERE oid = 'secret'::regclass")[0])


def test_run_end_analyzes_with_the_callers_rights_never_the_owners(app_db: str) -> None:
    with connect(app_db) as conn:
        conn.execute("CREATE TABLE secret (id int) WITH (autovacuum_enabled = false)")
        conn.execute("INSERT INTO secret SELECT generate_series(1, 100)")
        conn.execute("ANALYZE secret")
        conn.execute("INSERT INTO secret SELECT generate_series(101, 200)")  # not analyzed yet
        assert reltuples(conn) == 100
    with temporary_roles(app_db, "sweeper") as roles:
        grant_sweeping(app_db, roles["sweeper"].name)
        with connect(roles["sweeper"].dsn) as sweeper:
            # Any table name goes into one's own run; run_end must not analyze it as the owner.
            (run_id,) = one(sweeper, "SELECT pgsweep.run_begin('cli')")
            sweeper.execute("SELECT pgsweep.run_record(%s, 'secret', 'id', 1000)", (run_id,))
            sweeper.execute("SELECT pgsweep.run_end(%s)", (run_id,))
    with connect(app_db) as conn:
        assert one(conn, "SELECT status FROM pgsweep.runs WHERE run_id = %s", run_id) == (
            "succeeded",
        )
        assert reltuples(conn) == 100
        # The owner's own run still analyzes its table.
        (run_id,) = one(conn, "SELECT pgsweep.run_begin('cli')")
        conn.execute("SELECT pgsweep.run_record(%s, 'secret', 'id', 1000)", (run_id,))
        conn.execute("SELECT pgsweep.run_end(%s)", (run_id,))
        assert reltuples(conn) == 200


def test_the_analyze_share_is_kept_within_zero_and_one(app_db: str) -> None:
    with connect(app_db) as conn:
        for value, share in (("-1", 0.1), ("0", 0.1), ("5", 0.1), ("NaN", 0.1), ("0.5", 0.5)):
            conn.execute("SELECT set_config('pgsweep.analyze_share', %s, false)", (value,))
            assert one(conn, "SELECT pgsweep.analyze_share()") == (share,)


# --- a function call that deletes nothing -----------------------------------------------------


def test_a_sweep_table_call_that_deletes_nothing_writes_one_idle_record_and_counts_true(
    app_db: str,
) -> None:
    with connect(app_db) as conn:
        conn.execute("SELECT pgsweep.sweep_table('sessions')")  # deletes: a full run
        assert history_rows(conn) == (1, 1)
        with conn.transaction():
            for _ in range(3):  # as cleanup_all_expired_tokens() calls it, in one transaction
                assert one(conn, "SELECT pgsweep.sweep_table('sessions')") == (0,)
        for _ in range(2):
            conn.execute("SELECT pgsweep.sweep_table('sessions')")
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT pgsweep.sweep_table('sessions')")  # rolled back: not a run
        assert history_rows(conn) == (1, 1)
        assert one(conn, "SELECT count(*) FROM pgsweep.idle_run") == (5,)
        assert counters(conn, SESSIONS_KEY) == (GARBAGE[SESSIONS], 6, 0)
        last = one(
            conn,
            "SELECT l.run_status, l.invoked_by, l.rows_deleted, l.started_at = i.started_at"
            " FROM pgsweep.rule_last_run l,"
            "      (SELECT max(started_at) AS started_at FROM pgsweep.idle_run) i"
            " WHERE l.table_name = %s",
            SESSIONS_KEY,
        )
        assert last == ("succeeded", "function", 0, True)
        # A committing run tidies up: the idle runs go into the counters (each rule's newest
        # stays, as its last run), and the totals do not move but by that run's own.
        conn.execute("CALL pgsweep.sweep('sessions')")
        assert one(conn, "SELECT count(*) FROM pgsweep.idle_run") == (1,)
        assert counters(conn, SESSIONS_KEY) == (GARBAGE[SESSIONS], 7, 0)
        assert one(
            conn, "SELECT runs_total FROM pgsweep.rule_counter WHERE table_name = %s", SESSIONS_KEY
        ) == (4,)


def test_a_function_run_that_deletes_after_an_idle_rule_records_both_rules(app_db: str) -> None:
    with connect(app_db) as conn:
        conn.execute(f"SELECT pgsweep.sweep_table('{ATTRIBUTES}')")
        with conn.transaction():  # a run that does not commit lives in one transaction
            (run_id,) = one(conn, "SELECT pgsweep.run_begin('function', false)")
            conn.execute(
                f"SELECT pgsweep.run_record(%s, '{ATTRIBUTES}', 'ttl_timestamp', 0)", (run_id,)
            )
            conn.execute("SELECT pgsweep.run_record(%s, 'sessions', 'expiresAt', 4)", (run_id,))
            conn.execute("SELECT pgsweep.run_end(%s)", (run_id,))
        assert one(
            conn, "SELECT status, rows_deleted, batches FROM pgsweep.run WHERE run_id = %s", run_id
        ) == ("succeeded", 4, 2)
        assert conn.execute(
            "SELECT table_name, rows_deleted, batches FROM pgsweep.run_rule WHERE run_id = %s"
            " ORDER BY 1",
            (run_id,),
        ).fetchall() == [(ATTRIBUTES_KEY, 0, 1), (SESSIONS_KEY, 4, 1)]
        assert one(conn, "SELECT count(*) FROM pgsweep.idle_run") == (0,)


# --- stopped and partly failed runs --------------------------------------------------------------


def recorded_run(
    conn: psycopg.Connection[Any],
    status: str,
    error: str | None,
    *records: tuple[str, str, int, str | None],
) -> int:
    (run_id,) = one(conn, "SELECT pgsweep.run_begin('cli')")
    for table, column, deleted, rule_error in records:
        conn.execute(
            "SELECT pgsweep.run_record(%s, %s::regclass, %s, %s, 1, p_error => %s)",
            (run_id, table, column, deleted, rule_error),
        )
    conn.execute("SELECT pgsweep.run_end(%s, %s, %s)", (run_id, status, error))
    return int(run_id)


def test_a_run_cut_by_its_time_budget_is_stopped_and_only_its_finished_rules_succeeded(
    app_db: str,
) -> None:
    with connect(app_db) as conn:
        recorded_run(
            conn,
            "stopped",
            "max_run_time (1s) reached",
            (SESSIONS, "expiresAt", 3, None),
            (ATTRIBUTES, "ttl_timestamp", 2, None),
        )
        assert one(conn, "SELECT status, error FROM pgsweep.runs") == (
            "stopped",
            "max_run_time (1s) reached",
        )
        last = {
            r[0]: r[1:]
            for r in conn.execute("SELECT table_name, run_status, error FROM pgsweep.rule_last_run")
        }
        assert last == {SESSIONS_KEY: ("succeeded", None), ATTRIBUTES_KEY: ("stopped", None)}
        assert conn.execute(
            "SELECT table_name, runs_total, failures_total, last_success_at IS NOT NULL"
            " FROM pgsweep.rule_counters ORDER BY 1"
        ).fetchall() == [(ATTRIBUTES_KEY, 1, 0, False), (SESSIONS_KEY, 1, 0, True)]
        assert one(conn, "SELECT count(*) FROM pgsweep.run_failures") == (0,)


def test_a_run_that_failed_on_one_rule_blames_that_rule_only(app_db: str) -> None:
    with connect(app_db) as conn:
        recorded_run(
            conn,
            "failed",
            "1 rule(s) failed: sessions (expiresAt): boom",
            (SESSIONS, "expiresAt", 0, "boom"),
            (ATTRIBUTES, "ttl_timestamp", 2, None),
        )
        last = {
            r[0]: r[1:]
            for r in conn.execute("SELECT table_name, run_status, error FROM pgsweep.rule_last_run")
        }
        assert last == {SESSIONS_KEY: ("failed", "boom"), ATTRIBUTES_KEY: ("succeeded", None)}
        assert conn.execute(
            "SELECT table_name, status, error FROM pgsweep.run_failures"
        ).fetchall() == [(SESSIONS_KEY, "failed", "boom")]
        assert conn.execute(
            "SELECT table_name, failures_total, last_success_at IS NOT NULL"
            " FROM pgsweep.rule_counters ORDER BY 1"
        ).fetchall() == [(ATTRIBUTES_KEY, 0, True), (SESSIONS_KEY, 1, False)]
        # Pruned into rule_counter, the same counts.
        conn.execute("UPDATE pgsweep.run SET started_at = started_at - interval '60 days'")
        conn.execute("SELECT pgsweep.run_housekeeping()")
        assert conn.execute(
            "SELECT table_name, runs_total, failures_total, last_success_at IS NOT NULL"
            " FROM pgsweep.rule_counter ORDER BY 1"
        ).fetchall() == [(ATTRIBUTES_KEY, 1, 0, True), (SESSIONS_KEY, 1, 1, False)]


def test_a_rules_last_error_is_that_of_its_latest_run_only(app_db: str) -> None:
    with connect(app_db) as conn:
        conn.execute(
            "WITH r AS (INSERT INTO pgsweep.run (invoked_by, started_at, ended_at, status, error)"
            "  VALUES ('procedure', now() - interval '1 hour', now() - interval '1 hour',"
            "          'interrupted', 'the session running it ended before the run did')"
            "  RETURNING run_id)"
            " INSERT INTO pgsweep.run_rule (run_id, table_name, column_name, started_at, ended_at)"
            " SELECT run_id, 'public.sessions', 'expiresAt', now() - interval '1 hour',"
            "        now() - interval '1 hour' FROM r"
        )
        status = "SELECT last_run_status, last_error FROM pgsweep.rule_status WHERE table_name = %s"
        assert one(conn, status, SESSIONS_KEY) == (
            "interrupted",
            "the session running it ended before the run did",
        )
        conn.execute("CALL pgsweep.sweep('sessions')")
        assert one(conn, status, SESSIONS_KEY) == ("succeeded", None)


def test_the_downgrade_keeps_stopped_runs_as_1_1_can_hold_them(app_db: str) -> None:
    downgrade_to(app_db, "1.2")
    with connect(app_db) as conn:
        recorded_run(conn, "stopped", "max_run_time (1s) reached", (SESSIONS, "expiresAt", 3, None))
        for _ in range(2):  # the first deletes the garbage, the second is an idle run
            conn.execute("SELECT pgsweep.sweep_table('sessions')")
        assert one(conn, "SELECT count(*) FROM pgsweep.idle_run") == (1,)
        before = counters(conn, SESSIONS_KEY)
    path = Path(__file__).resolve().parents[1] / "engine/releases/1.2/downgrade.sql"
    done = subprocess.run(
        ["psql", "-X", "-q", "-d", app_db, "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    with connect(app_db) as conn:
        assert one(conn, "SELECT pgsweep.version()") == ("1.1",)
        assert one(conn, "SELECT status, error FROM pgsweep.run ORDER BY run_id LIMIT 1") == (
            "succeeded",
            "stopped before it finished: max_run_time (1s) reached",
        )
        assert counters(conn, SESSIONS_KEY) == before
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE pgsweep.run SET status = 'stopped'")


# --- create_live_view ---------------------------------------------------------------------------


def test_a_live_view_name_is_quoted_part_by_part_and_anything_else_is_refused(
    app_db: str,
) -> None:
    with connect(app_db) as conn:
        made = one(conn, """SELECT pgsweep.create_live_view('sessions', '"sessions live"')::text""")
        assert made == ('"sessions live"',)  # in the table's schema, public
        made = one(
            conn, """SELECT pgsweep.create_live_view('sessions', 'public."Sessions Live"')::text"""
        )
        assert made == ('"Sessions Live"',)
        conn.execute("CREATE TABLE t (id int)")
        for name in ("x AS SELECT 1; DROP TABLE t; --", "sessions live", "a.b.c", ""):
            with pytest.raises(psycopg.errors.InvalidName, match="is not a view name"):
                conn.execute("SELECT pgsweep.create_live_view('sessions', %s)", (name,))
        assert one(conn, "SELECT to_regclass('t') IS NOT NULL, to_regclass('x')") == (True, None)
