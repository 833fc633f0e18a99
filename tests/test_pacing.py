"""Pacing by health (issue 13): the decision is pgsweep.pace (one function for CALL
pgsweep.sweep(), pgsweep run and pgsweep cleanup), the batch size pgsweep.next_batch_size.
Facts only, no timings: each budget, when exceeded, makes the sweep pause with a NOTICE naming
it, and the rows deleted are exactly the garbage. The standby budgets are in
tests/test_standby.py (a real streaming standby)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import psycopg
import pytest

from pgsweep import cleanup, engine, runner
from tests import scale_tables
from tests.cli import pgsweep
from tests.pg import connect
from tests.scale_tables import Notices


@pytest.fixture(scope="module")
def db(module_db: str) -> str:
    engine.install(module_db)
    return module_db


def _one(conn: psycopg.Connection[Any], query: str, *params: object) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def test_every_setting_has_a_default_and_an_unknown_one_is_an_error(db: str) -> None:
    with connect(db) as conn:
        defaults = {
            name: _one(conn, "SELECT pgsweep.setting(%s)", name)
            for name in ("pacing", "batch_target", "max_replay_lag", "lock_wait", "max_run_time")
        }
        assert defaults == {
            "pacing": "on",
            "batch_target": "25ms",
            "max_replay_lag": "64MB",
            "lock_wait": "1s",
            "max_run_time": "0",
        }
        conn.execute("SET pgsweep.max_replay_lag = '128MB'")
        assert _one(conn, "SELECT pgsweep.setting('max_replay_lag')") == "128MB"
        with pytest.raises(psycopg.errors.UndefinedObject, match="unknown pgsweep setting"):
            conn.execute("SELECT pgsweep.setting('max_replay_lagg')")


def test_the_batch_size_moves_towards_the_target_within_bounds(db: str) -> None:
    with connect(db) as conn:
        size = "SELECT pgsweep.next_batch_size(%s, %s::interval, %s)"
        assert _one(conn, size, 5000, "50ms", 0) == 2500  # twice the 25 ms target: halved
        assert _one(conn, size, 5000, "500ms", 0) == 2500  # never below half per batch
        assert _one(conn, size, 5000, "1ms", 0) == 6000  # never above 1.2x per batch
        assert _one(conn, size, 5000, "20ms", 0) == 6000
        assert _one(conn, size, 5000, "1ms", 2) == 2500  # sessions waited: halved
        assert _one(conn, size, 150, "1s", 0) == 100  # pgsweep.batch_min
        assert _one(conn, size, 49000, "1ms", 0) == 50000  # pgsweep.batch_max
        conn.execute("SET pgsweep.pacing = off")
        assert _one(conn, size, 5000, "1s", 0) == 5000


def test_a_row_rate_limit_pauses_the_sweep_and_says_why(db: str) -> None:
    with connect(db) as conn:
        scale_tables.create(conn, "rate", garbage=3000, live=10)
        notices = Notices(conn)
        conn.execute("SET pgsweep.max_rows_per_second = 5000")
        assert conn.execute("CALL pgsweep.sweep('rate', 500)").fetchone() == (3000,)
        pauses = notices.matching("pgsweep: pausing rate (expires_at): rows deleted faster than")
        assert pauses, notices.messages
        assert all(p.startswith("NOTICE:") for p in pauses)
        assert notices.matching(f"pgsweep: paused {len(pauses)} time(s)")
        assert scale_tables.counts(conn, "rate")[:2] == (0, 10)


def test_a_wal_rate_limit_pauses_the_sweep(db: str) -> None:
    with connect(db) as conn:
        scale_tables.create(conn, "walrate", garbage=3000, live=10, payload=100)
        notices = Notices(conn)
        conn.execute("SET pgsweep.max_wal_rate = '256kB'")
        assert conn.execute("CALL pgsweep.sweep('walrate', 1000)").fetchone() == (3000,)
        assert notices.matching("pausing walrate (expires_at): WAL written faster than"), (
            notices.messages
        )


def test_pacing_off_keeps_fixed_batches_and_never_pauses(db: str) -> None:
    with connect(db) as conn:
        scale_tables.create(conn, "unpaced", garbage=2000, live=10)
        notices = Notices(conn)
        conn.execute("SET pgsweep.pacing = off")
        conn.execute("SET pgsweep.max_rows_per_second = 100")
        assert conn.execute("CALL pgsweep.sweep('unpaced', 500)").fetchone() == (2000,)
        assert notices.matching("pausing") == []


def test_the_time_budget_stops_a_run_and_the_next_run_finishes(db: str) -> None:
    with connect(db) as conn:
        scale_tables.create(conn, "budget", garbage=2000, live=10)
        notices = Notices(conn)
        conn.execute("SET pgsweep.max_run_time = '1us'")
        assert conn.execute("CALL pgsweep.sweep('budget', 500)").fetchone() == (500,)
        [stop] = notices.matching("pgsweep: stopping budget (expires_at): the run's time budget")
        assert stop.endswith("the rest is left for the next run")
        assert scale_tables.counts(conn, "budget")[:2] == (1500, 10)
        # pgsweep run: the budget is the run's (used up before this table here), the stop is in
        # the run's report.
        counts = runner.sweep_once(conn, 1, 500)
        assert counts.deleted.get("budget", 0) <= 500
        [pause] = [p for p in counts.pauses if p.table == "budget"]
        assert pause.stopped
        assert pause.reason.startswith("the run's time budget")
        conn.execute("RESET pgsweep.max_run_time")
        left = scale_tables.counts(conn, "budget")[0]
        assert conn.execute("CALL pgsweep.sweep('budget')").fetchone() == (left,)
        assert scale_tables.counts(conn, "budget")[:2] == (0, 10)


def test_a_session_waiting_for_a_batch_is_seen_and_the_sweep_backs_off(db: str) -> None:
    with connect(db) as conn, connect(db) as app:
        scale_tables.create(conn, "blocked", garbage=5, live=1)
        conn.execute("BEGIN")
        # As a batch does: its rows deleted, not yet committed.
        conn.execute("DELETE FROM blocked WHERE expires_at < now()")
        waiting = threading.Thread(
            target=lambda: app.execute("UPDATE blocked SET payload = 'app' WHERE id = 1")
        )
        waiting.start()
        try:
            deadline = time.monotonic() + 30
            while _one(conn, "SELECT pgsweep.sessions_waiting_for_me()") == 0:
                assert time.monotonic() < deadline, "the app's update never waited"
                time.sleep(0.01)
            seen = _one(conn, "SELECT pgsweep.sessions_waiting_for_me()")
            wait, reason, stop = _one(
                conn,
                "SELECT p.wait, p.reason, p.stop"
                " FROM pgsweep.pace('blocked', now(), 5, pg_current_wal_lsn(), 1) p",
            )
        finally:
            conn.execute("COMMIT")  # the app's update goes on (and finds its row gone)
            waiting.join(30)
        assert seen == 1
        assert wait > dt.timedelta(0)
        assert reason == (
            "1 session waited for the last batch of public.blocked (pgsweep.pause_for_blocked)"
        )
        assert stop is False
        assert _one(conn, "SELECT pgsweep.sessions_waiting_for_me()") == 0


def test_pgsweep_run_and_cleanup_report_the_pauses(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(db) as conn:
        scale_tables.create(conn, "reported", garbage=2000, live=10)
        conn.execute("ALTER TABLE reported SET (autovacuum_enabled = off)")
    # The settings as an operator gives them to pgsweep run: in the connection's options.
    dsn = f"{db} options='-c pgsweep.max_rows_per_second=4000'"
    out = pgsweep(
        capsys, "run", "--every", "1h", "--max-runs", "1", "--batch-size", "500", "--dsn", dsn
    )
    assert out.code == 0, out
    assert (
        "paused reported.expires_at: rows deleted faster than pgsweep.max_rows_per_second"
        in out.out
    )
    with connect(db) as conn:
        scale_tables.add(conn, "reported", garbage=2000)
    result = cleanup.cleanup(dsn, table="reported", batch_size=500)
    assert result.total == 2000
    assert result.pauses
    assert {p.reason.split(" = ")[0] for p in result.pauses} == {
        "rows deleted faster than pgsweep.max_rows_per_second"
    }
