"""Run history, status in SQL, lag targets and ANALYZE after large deletes (engine 1.1,
docs/observability.md): every way of running the cleanup records its run with exact counts, a
failing run is recorded with its error, a killed one shows as interrupted, ``pgsweep.rule_status``
is exact on seed-shaped tables, ``pgsweep verify`` fails a rule whose lag is over its target."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Any

import psycopg
import pytest

from pgsweep import engine
from tests import own_tables
from tests.cli import pgsweep
from tests.own_tables import ATTRIBUTES, GARBAGE, KEPT, LONG_LIVE, NEVER, SESSIONS
from tests.pg import connect


@pytest.fixture
def app_db(fresh_db: str) -> str:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
    return fresh_db


def runs(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT invoked_by, status, rows_deleted, batches, error FROM pgsweep.runs"
        " WHERE invoked_by <> 'trigger' ORDER BY run_id"
    ).fetchall()


def rule_rows(conn: psycopg.Connection[Any], run_id: int) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        "SELECT table_name, column_name::text, rows_deleted FROM pgsweep.run_rule"
        " WHERE run_id = %s",
        (run_id,),
    ).fetchall()
    return {(str(t), str(c)): int(n) for t, c, n in rows}


def key(table: str) -> str:
    return "public.sessions" if table == SESSIONS else table


def test_the_procedure_records_its_run_per_rule_with_exact_counts(app_db: str) -> None:
    with connect(app_db) as conn:
        conn.execute("SET pgsweep.pacing = off")  # batches of exactly 3 rows
        conn.execute("CALL pgsweep.sweep(NULL, 3)")
        ((run_id, by, status, deleted, batches, error, ended),) = conn.execute(
            "SELECT run_id, invoked_by, status, rows_deleted, batches, error, ended_at IS NOT NULL"
            " FROM pgsweep.runs"
        ).fetchall()
        assert (by, status, deleted, error, ended) == (
            "procedure",
            "succeeded",
            sum(GARBAGE.values()),
            None,
            True,
        )
        assert batches >= 2 * 3  # 3 rows a batch: at least 4 batches for 11, 3 for 8
        assert rule_rows(conn, run_id) == {
            (key(ATTRIBUTES), own_tables.ATTRIBUTES_COLUMN): GARBAGE[ATTRIBUTES],
            (key(SESSIONS), own_tables.SESSIONS_COLUMN): GARBAGE[SESSIONS],
        }
        counters = conn.execute(
            "SELECT table_name, rows_deleted_total, runs_total, failures_total,"
            " last_success_at IS NOT NULL FROM pgsweep.rule_counters ORDER BY 1"
        ).fetchall()
        assert counters == sorted((key(t), GARBAGE[t], 1, 0, True) for t in (ATTRIBUTES, SESSIONS))


def test_sweep_table_records_a_function_run_in_the_callers_transaction(app_db: str) -> None:
    with connect(app_db) as conn:
        with conn.transaction():
            (deleted,) = conn.execute("SELECT pgsweep.sweep_table('sessions')").fetchone() or (0,)
            assert deleted == GARBAGE[SESSIONS]
        # A caller that rolls back leaves no run, as it deleted nothing.
        with conn.transaction(force_rollback=True):
            conn.execute(f"SELECT pgsweep.sweep_table('{ATTRIBUTES}')")
        assert runs(conn) == [("function", "succeeded", GARBAGE[SESSIONS], 1, None)]


def test_the_cleanup_and_run_commands_record_cli_runs_with_exact_counts(
    app_db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGOPTIONS", "-c pgsweep.pacing=off")  # batches of exactly 3 rows
    done = pgsweep(capsys, "cleanup", "--table", "sessions", "--batch-size", "3", "--dsn", app_db)
    assert done.code == 0, done.err
    ran = pgsweep(capsys, "run", "--every", "1s", "--max-runs", "1", "--dsn", app_db, "--json")
    assert ran.code == 0, ran.err
    with connect(app_db) as conn:
        recorded = runs(conn)
        assert recorded[0] == ("cli", "succeeded", GARBAGE[SESSIONS], 3, None)  # 3 + 3 + 2
        # Each run of `pgsweep run` is one 'cli' run over every rule.
        assert [r[:3] for r in recorded[1:]] == [("cli", "succeeded", GARBAGE[ATTRIBUTES])]
        per_day = conn.execute(
            "SELECT table_name, sum(rows_deleted) FROM pgsweep.rows_deleted_per_day GROUP BY 1"
        ).fetchall()
        assert dict(per_day) == {key(t): GARBAGE[t] for t in (ATTRIBUTES, SESSIONS)}


def test_a_failing_rule_is_recorded_with_its_error_and_the_run_goes_on_and_ends_failed(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(app_db) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'sessions are kept for audit'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER keep BEFORE DELETE ON sessions FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
        # The failing rule is said and recorded; the others are swept; nothing is raised.
        said: list[str] = []
        conn.add_notice_handler(lambda d: said.append(str(d.message_primary)))
        conn.execute("CALL pgsweep.sweep()")
        assert any(
            "rule public.sessions.expiresAt failed: sessions are kept for audit" in m for m in said
        )
        ((run_id, status, deleted, error),) = conn.execute(
            "SELECT run_id, status, rows_deleted, error FROM pgsweep.runs"
        ).fetchall()
        # The attributes (swept first) stay deleted and counted; the sessions' batch is undone.
        assert (status, deleted) == ("failed", GARBAGE[ATTRIBUTES])
        assert "kept for audit" in error
        assert "sessions" in error
        assert conn.execute(
            "SELECT table_name, column_name::text, error FROM pgsweep.run_failures"
        ).fetchall() == [
            ("public.sessions", "expiresAt", "sessions are kept for audit"),
        ]
        assert conn.execute(
            "SELECT failures_total, runs_total FROM pgsweep.rule_counters"
            " WHERE table_name = 'public.sessions'"
        ).fetchone() == (1, 1)
        last_error = conn.execute(
            "SELECT last_error, last_run_at IS NOT NULL FROM pgsweep.rule_status"
            " WHERE table_name = 'public.sessions'"
        ).fetchone()
        assert last_error == ("sessions are kept for audit", True)
    failed = pgsweep(capsys, "cleanup", "--table", "sessions", "--dsn", app_db)
    assert failed.code != 0
    with connect(app_db) as conn:
        assert conn.execute(
            "SELECT invoked_by, status FROM pgsweep.runs WHERE run_id > %s", (run_id,)
        ).fetchall() == [("cli", "failed")]


def test_a_run_whose_backend_was_killed_shows_as_interrupted(app_db: str) -> None:
    with connect(app_db) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert pid is not None

    def sweep() -> None:
        # One row a batch and a long pause after each: it is killed while pausing.
        with connect(app_db) as sweeper, contextlib.suppress(psycopg.OperationalError):
            sweeper.execute("CALL pgsweep.sweep(NULL, 1, '30s')")

    worker = threading.Thread(target=sweep)
    worker.start()
    with connect(app_db) as watcher:
        row = None
        for _ in range(600):  # until the first batch is committed (at most 60 s)
            row = watcher.execute(
                "SELECT pid, batches FROM pgsweep.run WHERE status = 'running' AND batches > 0"
            ).fetchone()
            if row is not None:
                break
            watcher.execute("SELECT pg_sleep(0.1)")
        assert row is not None, "the sweep never committed a batch"
        assert watcher.execute("SELECT status FROM pgsweep.runs").fetchone() == ("running",)
        watcher.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        worker.join(timeout=60)
        assert not worker.is_alive()
        for _ in range(600):  # the killed backend's locks are released as it exits
            if watcher.execute("SELECT status FROM pgsweep.runs").fetchone() == ("interrupted",):
                break
            watcher.execute("SELECT pg_sleep(0.1)")
        assert watcher.execute(
            "SELECT status, rows_deleted, batches FROM pgsweep.runs"
        ).fetchone() == ("interrupted", 1, 1)
        # The next run writes it down.
        watcher.execute("CALL pgsweep.sweep()")
        assert watcher.execute(
            "SELECT status, error IS NOT NULL FROM pgsweep.run ORDER BY run_id"
        ).fetchall() == [("interrupted", True), ("succeeded", False)]


def test_the_status_view_is_exact_on_seed_shaped_tables(app_db: str) -> None:
    columns = (
        "table_name, problem, rows_never_expire, rows_alive, garbage, counts_estimated,"
        " extract(epoch FROM expiry_lag), lag_target, lag_ok, last_run_at, deleted_24h,"
        " backlog_eta, table_bytes > 0, index_bytes > 0, dead_tuples IS NOT NULL"
    )
    with connect(app_db) as conn:
        before = {r[0]: r for r in conn.execute(f"SELECT {columns} FROM pgsweep.rule_status")}
        for table in (ATTRIBUTES, SESSIONS):
            got = before[key(table)]
            assert got[1:6] == (None, NEVER[table], LONG_LIVE[table] + 1, GARBAGE[table], False)
            lag = 86400 if table == ATTRIBUTES else 3600  # the oldest garbage
            assert lag - 5 < got[6] < lag + 5, got
            assert got[9:12] == (None, 0, None)  # no run yet, so no rate, so no ETA
            assert got[12:] == (True, True, True)
        assert before[key(ATTRIBUTES)][8] is False  # a day behind: over the 1 hour target
        conn.execute("CALL pgsweep.sweep()")
        after = {r[0]: r for r in conn.execute(f"SELECT {columns} FROM pgsweep.rule_status")}
        for table in (ATTRIBUTES, SESSIONS):
            got = after[key(table)]
            assert got[2:7] == (NEVER[table], LONG_LIVE[table] + 1, 0, False, 0), got
            assert got[8] is True
            assert got[9] is not None
            assert (got[10], got[11]) == (GARBAGE[table], dt.timedelta(0))
        # Above the exact-count limit the row counts are the planner's, and say so.
        conn.execute(f"ANALYZE {ATTRIBUTES}")
        conn.execute("SET pgsweep.exact_count_limit = 3")
        estimated = conn.execute(
            "SELECT rows_never_expire + rows_alive + garbage, counts_estimated, garbage"
            " FROM pgsweep.rule_status WHERE column_name = 'ttl_timestamp'"
        ).fetchone()
        assert estimated == (KEPT[ATTRIBUTES], True, 0)


def test_a_lag_over_its_target_turns_verify_red_until_a_sweep(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(app_db) as conn:
        conn.execute("SELECT pgsweep.set_lag_target('sessions', 'expiresAt', '2 hours')")
    red = pgsweep(capsys, "verify", "--no-cron", "--dsn", app_db, "--json").json()
    lags = {c["name"]: c for c in red["checks"] if c["name"].startswith("lag ")}
    assert lags[f"lag {ATTRIBUTES}.ttl_timestamp"]["status"] == "fail"  # a day > 1 hour
    assert "OVER TARGET" in lags[f"lag {ATTRIBUTES}.ttl_timestamp"]["evidence"]
    assert lags["lag sessions.expiresAt"]["status"] == "pass"  # an hour < 2 hours
    assert not red["ok"]
    with connect(app_db) as conn:
        conn.execute("CALL pgsweep.sweep()")
    green = pgsweep(capsys, "verify", "--no-cron", "--dsn", app_db, "--json").json()
    lags = {c["name"]: c for c in green["checks"] if c["name"].startswith("lag ")}
    assert {c["status"] for c in lags.values()} == {"pass"}
    assert "rows/s" in lags[f"lag {ATTRIBUTES}.ttl_timestamp"]["evidence"]


def analyze_count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'bulk'"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_run_that_deletes_a_large_share_analyzes_the_table_and_a_tiny_one_does_not(
    fresh_db: str,
) -> None:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(
            "CREATE TABLE bulk (id bigint PRIMARY KEY, expires_at timestamptz)"
            " WITH (autovacuum_enabled = false)"
        )
        conn.execute("CREATE INDEX ON bulk (expires_at)")
        conn.execute("SELECT pgsweep.add_rule('bulk', 'expires_at')")
        # 1000 rows: 5 expired (0.5 %), then 300 more (30 %).
        conn.execute(
            "INSERT INTO bulk SELECT g, now() + interval '1 day' FROM generate_series(1, 1000) g"
        )
        conn.execute("UPDATE bulk SET expires_at = now() - interval '1 day' WHERE id <= 5")
        conn.execute("ANALYZE bulk")
        analyzed = analyze_count(conn)
        conn.execute("CALL pgsweep.sweep()")
        assert analyze_count(conn) == analyzed  # a tiny delete: no ANALYZE
        conn.execute(
            "UPDATE bulk SET expires_at = now() - interval '1 day' WHERE id BETWEEN 6 AND 305"
        )
        conn.execute("SELECT pgsweep.sweep_table('bulk')")
        assert analyze_count(conn) == analyzed + 1
        reltuples = conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'bulk'")
        assert reltuples.fetchone() == (695,)


def test_the_insert_trigger_is_counted_in_aggregate_and_folded_by_the_next_run(
    app_db: str,
) -> None:
    with connect(app_db) as conn:
        conn.execute(
            "CREATE TRIGGER sweep AFTER INSERT ON sessions FOR EACH STATEMENT"
            " EXECUTE FUNCTION pgsweep.sweep_on_insert('expiresAt', '4', '0')"
        )
        for _ in range(4):  # 4 + 4 + 0 + 0: the garbage (8) is gone after two inserts
            conn.execute(
                'INSERT INTO sessions (label, "userId", "expiresAt")'
                " VALUES ('live', 1, now() AT TIME ZONE 'UTC' + interval '1 hour')"
            )
        assert conn.execute(
            "SELECT count(*), sum(rows_deleted) FROM pgsweep.trigger_sweep"
        ).fetchone() == (2, GARBAGE[SESSIONS])
        assert conn.execute(
            "SELECT rows_deleted_total FROM pgsweep.rule_counters"
            " WHERE table_name = 'public.sessions'"
        ).fetchone() == (GARBAGE[SESSIONS],)
        conn.execute("CALL pgsweep.sweep('sessions')")
        assert conn.execute("SELECT count(*) FROM pgsweep.trigger_sweep").fetchone() == (0,)
        assert conn.execute(
            "SELECT r.rows_deleted, r.batches, rr.rows_deleted FROM pgsweep.run r"
            " JOIN pgsweep.run_rule rr USING (run_id) WHERE r.invoked_by = 'trigger'"
        ).fetchall() == [(GARBAGE[SESSIONS], 2, GARBAGE[SESSIONS])]
        assert conn.execute(
            "SELECT rows_deleted_total, deleted_24h FROM pgsweep.rule_counters c"
            " JOIN pgsweep.rule_status s USING (table_name) WHERE table_name = 'public.sessions'"
        ).fetchone() == (GARBAGE[SESSIONS], GARBAGE[SESSIONS])


def test_status_shows_lag_history_and_a_sample_of_garbage_keys(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = pgsweep(capsys, "status", "--sample", "3", "--dsn", app_db, "--json")
    assert shown.code == 0, shown.err
    tables = {t["table"]: t for t in shown.json()["tables"]}
    (rule,) = tables[ATTRIBUTES]["rules"]
    assert rule["sample"] == [1, 2, 3]  # the oldest garbage, by primary key
    assert (rule["rows_never_expire"], rule["lag_ok"], rule["last_run_at"]) == (
        NEVER[ATTRIBUTES],
        False,
        None,
    )
    (session_rule,) = tables[SESSIONS]["rules"]
    assert len(session_rule["sample"]) == 3
    assert all(isinstance(k, str) for k in session_rule["sample"])
    human = pgsweep(capsys, "status", "--sample", "2", "--dsn", app_db)
    assert "OVER TARGET" in human.out
    assert "garbage keys: 1, 2" in human.out
