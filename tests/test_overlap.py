"""Never two runs of one rule at once (issue 13, "Never overlap"), with real concurrent
connections: a second ``CALL pgsweep.sweep()`` (a second pg_cron job), ``pgsweep run`` and
``pgsweep cleanup`` skip a rule another run is working on, say so, and delete nothing of it;
the first deletes every row, once. A lock left by a call that failed half-way is dropped by the
session's next call. Two installs or upgrades at once both succeed, one after the other."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgsweep import cleanup, engine, runner
from tests import scale_tables
from tests.pg import connect
from tests.scale_tables import Notices
from tests.sqlrun import catalog_of, psql_ok

OTHER_RUN = "another run is working on it"


@pytest.fixture(scope="module")
def db(module_db: str) -> str:
    engine.install(module_db)
    return module_db


@pytest.fixture
def holder(db: str) -> Iterator[psycopg.Connection[Any]]:
    """A session that holds the rule of table ``held`` as a run working on it does."""
    with connect(db) as conn:
        yield conn


def _holds(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(
        "SELECT pgsweep.lock_rule(%s, 'expires_at', '0'), pg_backend_pid()", (table,)
    ).fetchone()
    assert row is not None
    assert row[0] is True
    return int(row[1])


def test_two_sweeps_of_one_rule_at_once_one_works_the_other_skips_and_says_so(db: str) -> None:
    with connect(db) as conn:
        scale_tables.create(conn, "overlap", garbage=6000, live=100)
    first_done: list[int] = []

    def first() -> None:
        with connect(db) as conn:
            # Slow enough to still be at work when the second starts (paced at 4,000 rows/s).
            conn.execute("SET pgsweep.max_rows_per_second = 4000")
            row = conn.execute("CALL pgsweep.sweep('overlap', 500)").fetchone()
            assert row is not None
            first_done.append(int(row[0]))

    thread = threading.Thread(target=first)
    thread.start()
    try:
        with connect(db) as conn:
            deadline = time.monotonic() + 60
            while conn.execute(
                "SELECT pgsweep.rule_lock_holder('overlap', 'expires_at')"
            ).fetchone() == (None,):
                assert time.monotonic() < deadline, "the first sweep never took the rule's lock"
                time.sleep(0.01)
            notices = Notices(conn)
            conn.execute("SET pgsweep.lock_wait = '10ms'")
            row = conn.execute("CALL pgsweep.sweep('overlap')").fetchone()
            assert row == (0,)
            assert len(notices.matching(f"skipped: {OTHER_RUN}")) == 1, notices.messages
            said = notices.messages[0]
            assert said.startswith("WARNING: pgsweep: rule public.overlap.expires_at"), said
    finally:
        thread.join(120)
    assert first_done == [6000]
    with connect(db) as conn:
        assert scale_tables.counts(conn, "overlap")[:2] == (0, 100)
        # Released once the rule is done.
        assert conn.execute(
            "SELECT pgsweep.rule_lock_holder('overlap', 'expires_at')"
        ).fetchone() == (None,)


def test_a_second_run_waits_briefly_for_the_first_to_finish(db: str) -> None:
    with connect(db) as conn, connect(db) as other:
        scale_tables.create(conn, "waits", garbage=50, live=5)
        _holds(other, "waits")
        timer = threading.Timer(
            0.2, lambda: other.execute("SELECT pgsweep.unlock_rule('waits', 'expires_at')")
        )
        timer.start()
        conn.execute("SET pgsweep.lock_wait = '30s'")
        notices = Notices(conn)
        row = conn.execute("CALL pgsweep.sweep('waits')").fetchone()
        timer.join()
        assert row == (50,)
        assert notices.matching(OTHER_RUN) == []


def test_pgsweep_run_and_cleanup_skip_a_rule_another_run_holds_and_report_it(
    db: str, holder: psycopg.Connection[Any]
) -> None:
    with connect(db) as conn:
        scale_tables.create(conn, "held", garbage=30, live=3)
        scale_tables.create(conn, "free", garbage=20, live=2)
    pid = _holds(holder, "held")
    with connect(db) as conn:
        conn.execute("SET pgsweep.lock_wait = '10ms'")
        counts = runner.sweep_once(conn, 1, 1000)
    assert counts.deleted["held"] == 0
    assert counts.deleted["free"] == 20
    [skip] = [s for s in counts.skipped if s.table == "held"]
    assert skip.column == "expires_at"
    # 1.4 adds how to free it (tests/test_engine_1_4.py).
    assert skip.problem.startswith(f"another run is working on it (pid {pid}")

    result = cleanup.cleanup(db, table="held")
    assert result.total == 0
    [skip] = result.skipped
    assert (skip.table, skip.column) == ("held", "expires_at")
    assert skip.problem.startswith(f"another run is working on it (pid {pid}")
    assert f"pg_terminate_backend({pid})" in skip.problem
    with connect(db) as conn:
        assert scale_tables.counts(conn, "held")[:2] == (30, 3)
    holder.execute("SELECT pgsweep.unlock_rule('held', 'expires_at')")
    assert cleanup.cleanup(db, table="held").total == 30


def test_a_lock_left_by_a_call_that_failed_is_dropped_by_the_sessions_next_call(db: str) -> None:
    with connect(db) as conn, connect(db) as other:
        scale_tables.create(conn, "leftover", garbage=10, live=1)
        # As a call that failed half-way leaves it (twice, even): held by this session.
        _holds(conn, "leftover")
        _holds(conn, "leftover")
        # Another run meanwhile skips the rule.
        other.execute("SET pgsweep.lock_wait = '0'")
        assert other.execute("CALL pgsweep.sweep('leftover')").fetchone() == (0,)
        assert conn.execute("CALL pgsweep.sweep('leftover')").fetchone() == (10,)
        assert other.execute(
            "SELECT pgsweep.rule_lock_holder('leftover', 'expires_at')"
        ).fetchone() == (None,)


def test_the_lock_key_is_the_tables_oid_and_a_hash_of_the_column(db: str) -> None:
    with connect(db) as conn, connect(db) as other:
        scale_tables.create(conn, "keyed", garbage=1, live=1)
        _holds(other, "keyed")
        row = conn.execute(
            "SELECT l.classid::regclass = 'keyed'::regclass,"
            " l.objid::bigint = (hashtext('pgsweep.rule:expires_at')::bigint + 4294967296)"
            "   %% 4294967296, l.objsubid"
            " FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid = %s",
            (int(other.info.backend_pid),),
        ).fetchone()
        assert row == (True, True, 2)


@pytest.mark.parametrize("start", ["empty", "1.0"])
def test_two_installs_at_once_both_succeed_one_after_the_other(fresh_db: str, start: str) -> None:
    """Two deploy pods: `pgsweep install` (or the upgrade from 1.0) twice at once."""
    if start == "1.0":
        psql_ok(fresh_db, engine.release_file("1.0", "install.sql"))
    errors: list[BaseException] = []
    results: list[engine.InstallResult] = []

    def install() -> None:
        try:
            results.append(engine.install(fresh_db))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=install) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sorted(r.after for r in results) == [engine.latest()] * 2
    with connect(fresh_db) as conn:
        versions = conn.execute("SELECT version FROM pgsweep.release ORDER BY 1").fetchall()
        assert versions[-1] == (engine.latest(),)
    # Both left the one catalog a single install leaves.
    first = catalog_of(fresh_db)
    engine.install(fresh_db)
    assert catalog_of(fresh_db) == first
