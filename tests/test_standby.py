"""Standbys, failover and crashes (issue 13), with a real streaming standby on localhost
(``pg_basebackup -R`` from a LocalCluster primary; one pair for the module, the failover last,
as it ends the pair): a sweep on the standby refuses politely (procedure and CLI); the sweep
pauses while the standby does not replay, says why, keeps the standby's replay lag within its
budget plus one batch's WAL, and finishes once the standby replays again; ``pgsweep run`` with
a multi-host DSN keeps going after the standby is promoted, and nothing live is lost. A crash
(kill -9 of the postmaster and its processes) in the middle of a sweep loses no live row, and
the next run finishes the job."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from pgsweep import engine, runner
from pgsweep_testing.localpg import LocalCluster
from tests import scale_tables
from tests.cli import pgsweep
from tests.pg import connect
from tests.scale_tables import Notices

Pair = tuple[LocalCluster, LocalCluster]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with LocalCluster(preload_cron=False) as primary:
        engine.install(primary.dsn())
        standby = LocalCluster.standby_of(primary).start()
        try:
            yield primary, standby
        finally:
            standby.stop()


def _one(conn: psycopg.Connection[Any], query: str, *params: object) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def caught_up(primary: LocalCluster, standby: LocalCluster, timeout_s: float = 60) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with connect(primary.dsn()) as p, connect(standby.dsn()) as s:
        target = _one(p, "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout_s
        while not _one(s, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", target):
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.02)


def test_a_sweep_on_the_standby_refuses_politely(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    primary, standby = pair
    with connect(primary.dsn()) as conn:
        scale_tables.create(conn, "on_standby", garbage=10, live=2)
    caught_up(primary, standby)
    with connect(standby.dsn()) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="is a standby") as info:
            conn.execute("CALL pgsweep.sweep()")
        assert info.value.diag.message_hint is not None
        assert "primary" in info.value.diag.message_hint
    for argv in (["run", "--every", "1h", "--max-runs", "1"], ["cleanup", "--yes"]):
        out = pgsweep(capsys, *argv, "--dsn", standby.dsn())
        assert out.code == 1, out
        assert "is a standby (in recovery)" in out.err, out
        assert "Traceback" not in out.err
    with connect(primary.dsn()) as conn:
        assert scale_tables.counts(conn, "on_standby")[:2] == (10, 2)


def test_the_sweep_pauses_while_the_standby_does_not_replay_and_finishes_once_it_does(
    pair: Pair,
) -> None:
    primary, standby = pair
    budget = 512 * 1024
    garbage, live, batch_max = 40_000, 500, 2000
    with connect(primary.dsn()) as conn:
        scale_tables.create(conn, "lagging", garbage=garbage, live=live, payload=50)
    caught_up(primary, standby)
    samples: list[int] = []
    done = threading.Event()
    result: list[int] = []
    notices: list[Notices] = []

    def sweep() -> None:
        with connect(primary.dsn()) as conn:
            notices.append(Notices(conn))
            conn.execute(f"SET pgsweep.max_replay_lag = '{budget}'")
            conn.execute(f"SET pgsweep.batch_max = {batch_max}")
            conn.execute("SET pgsweep.pause_step = '50ms'")
            start = _one(conn, "SELECT pg_current_wal_lsn()::text")
            result.append(int(_one(conn, "CALL pgsweep.sweep('lagging', 1000)")))
            result.append(
                int(_one(conn, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", start))
            )
        done.set()

    def sample() -> None:
        with connect(primary.dsn()) as conn:
            while not done.is_set():
                lag = _one(
                    conn,
                    "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)"
                    " FROM pg_stat_replication",
                )
                samples.append(int(lag))
                time.sleep(0.01)

    with connect(standby.dsn()) as s:
        s.execute("SELECT pg_wal_replay_pause()")
        sweeper = threading.Thread(target=sweep)
        sampler = threading.Thread(target=sample)
        sampler.start()
        sweeper.start()
        try:
            deadline = time.monotonic() + 120
            while not (notices and notices[0].matching("pausing")):
                assert not done.is_set(), "the sweep finished without pausing"
                assert time.monotonic() < deadline, "the sweep never paused"
                time.sleep(0.02)
            with connect(primary.dsn()) as conn:
                left = scale_tables.counts(conn, "lagging")[0]
            assert 0 < left < garbage  # it worked, and it stopped before the end
            time.sleep(0.3)  # paused: the standby replays nothing, the sweep deletes nothing
            with connect(primary.dsn()) as conn:
                assert scale_tables.counts(conn, "lagging")[0] == left
            assert not done.is_set()
        finally:
            s.execute("SELECT pg_wal_replay_resume()")
            sweeper.join(180)
            done.set()
            sampler.join(30)
    pauses = notices[0].matching("pgsweep: pausing lagging (expires_at): standby")
    assert pauses
    assert all("of WAL to replay, a batch writes about " in p for p in pauses)
    assert all(p.endswith("(pgsweep.max_replay_lag = 512 kB)") for p in pauses)
    deleted, wal = result
    assert deleted == garbage
    # It paused once the lag and the next batch would pass the budget (the batch's room is at
    # most half the budget); the budget holds but for a batch that writes more than expected:
    # the first change to a page after a checkpoint logs the whole page, so one batch can write
    # twice the average, and other sessions (autovacuum) write meanwhile. Two batches' average
    # WAL is the margin asserted (docs/scheduling.md, "Pacing").
    one_batch = wal / garbage * batch_max
    assert max(samples) > budget // 2
    assert max(samples) <= budget + 2 * one_batch, (max(samples), budget, one_batch)
    caught_up(primary, standby)
    for server in pair:
        # Polled: on a loaded machine the standby's first query after catching up has been seen
        # to run before the last commits showed; the counts must still come right, exactly.
        deadline = time.monotonic() + 30
        with connect(server.dsn()) as conn:
            while (got := scale_tables.counts(conn, "lagging")[:2]) != (0, live):
                assert time.monotonic() < deadline, (server is standby, got)
                time.sleep(0.1)


def test_a_crash_in_the_middle_of_a_sweep_loses_no_live_row_and_the_next_run_finishes() -> None:
    with LocalCluster(preload_cron=False) as pg:
        engine.install(pg.dsn())
        garbage, live = 30_000, 3000
        with connect(pg.dsn()) as conn:
            scale_tables.create(conn, "crashing", garbage=garbage, live=live)
            before = scale_tables.counts(conn, "crashing")
        failure: list[BaseException] = []

        def sweep() -> None:
            try:
                with connect(pg.dsn()) as conn:
                    conn.execute("SET pgsweep.max_rows_per_second = 20000")
                    conn.execute("CALL pgsweep.sweep('crashing', 1000)")
            except psycopg.OperationalError as exc:
                failure.append(exc)

        sweeper = threading.Thread(target=sweep)
        sweeper.start()
        with connect(pg.dsn()) as conn:
            deadline = time.monotonic() + 60
            while scale_tables.counts(conn, "crashing")[0] > garbage - 5000:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        pg.kill()
        sweeper.join(60)
        assert len(failure) == 1  # the sweep's connection died with the server
        pg.start_again()
        with connect(pg.dsn()) as conn:
            left, kept, ids = scale_tables.counts(conn, "crashing")
            assert (kept, ids) == before[1:]  # every live row, the same rows
            assert 0 < left < garbage
            assert _one(conn, "SELECT pgsweep.rule_lock_holder('crashing', 'expires_at')") is None
            assert _one(conn, "CALL pgsweep.sweep()") == left
            assert scale_tables.counts(conn, "crashing") == (0, *before[1:])


def test_pgsweep_run_with_two_hosts_keeps_going_after_the_standby_is_promoted(pair: Pair) -> None:
    primary, standby = pair
    garbage, live = 24_000, 700
    with connect(primary.dsn()) as conn:
        scale_tables.create(conn, "failover", garbage=garbage, live=live)
        before = scale_tables.counts(conn, "failover")
        # Slow enough to be at work when the primary goes (each run's sessions read it).
        conn.execute("ALTER DATABASE postgres SET pgsweep.max_rows_per_second = 8000")
    caught_up(primary, standby)
    url = urlsplit(primary.dsn())
    both = (
        f"postgresql://{url.username}:{url.password}@127.0.0.1:{primary.port},"
        f"127.0.0.1:{standby.port}/postgres?target_session_attrs=read-write"
    )
    stop = threading.Event()
    runs: list[runner.RunCounts] = []
    outages: list[runner.Outage] = []
    worker = threading.Thread(
        target=runner.run,
        args=(both, 0.1),
        kwargs={
            "stop": stop,
            "on_run": runs.append,
            "on_outage": outages.append,
            "batch_size": 1000,
            "max_backoff_s": 1.0,
        },
    )
    worker.start()
    try:
        with connect(primary.dsn()) as conn:
            deadline = time.monotonic() + 60
            while scale_tables.counts(conn, "failover")[0] > garbage - 5000:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        primary.stop_server()  # a fast shutdown: the standby has every committed batch
        standby.promote()
        with connect(standby.dsn()) as conn:
            deadline = time.monotonic() + 120
            while scale_tables.counts(conn, "failover")[0] > 0:
                assert time.monotonic() < deadline, (runs, outages)
                time.sleep(0.05)
            final = scale_tables.counts(conn, "failover")
            deadline = time.monotonic() + 60
            while not any(r.deleted.get("failover") for r in runs):
                assert time.monotonic() < deadline, (runs, outages)
                time.sleep(0.05)
    finally:
        stop.set()
        worker.join(60)
    assert final == (0, *before[1:])  # every live row, the same rows
    assert outages  # it saw the primary go, and came back on the new one
    # Nothing counted twice: the runs after the failover deleted only what was left.
    assert sum(r.deleted.get("failover", 0) for r in runs) <= garbage
