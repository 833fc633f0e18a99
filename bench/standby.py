"""The backlog with a streaming standby attached (issue 13): ``CALL pgsweep.sweep()`` paced
(the default) against unpaced (``pgsweep.pacing = off``), on a primary and a standby of their
own (``pg_basebackup -R`` on this machine: whatever server ``--dsn`` names, a standby is made
here), the same rows each time.

One table of ``rows`` rows (id, expires_at, 60 bytes of payload, an index on expires_at), every
second row expired, so every page holds garbage. For each variant: the table is loaded afresh,
checkpointed, the standby caught up; an app workload (one client updating random live rows by
id, one transaction each) runs for a while alone (its idle p99) and then during the sweep; a
sampler reads the standby's replay lag (pg_stat_replication, bytes) every 20 ms. Two regimes:

* ``replaying``: the standby replays as fast as it can;
* ``stalled``: the standby stops replaying (pg_wal_replay_pause) for the first STALL_S seconds
  of the sweep, as a standby busy with a long query or a slow disk does.

Reported per variant: replay lag max, WAL bytes per deleted row, throughput (rows deleted per
second of the sweep), the app's p99 during the sweep against its idle p99.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.report import Figure, ScenarioResult, percentile
from pgsweep import engine
from pgsweep_testing.localpg import LocalCluster

STALL_S = 5.0  # how long the stalled standby replays nothing
IDLE_S = 3.0  # how long the app runs alone, for its idle p99
BUDGET = 64 * 1024 * 1024  # pgsweep.max_replay_lag's default
# full_page_writes on (as in production: the first change to a page after a checkpoint logs the
# whole page), unlike the other scenarios' cluster.
PRIMARY_SETTINGS = {
    "shared_buffers": "'2GB'", "max_wal_size": "'16GB'", "checkpoint_timeout": "'1h'",
    "full_page_writes": "on",
}

Conn = psycopg.Connection[tuple[Any, ...]]


def _connect(dsn: str) -> Conn:
    return psycopg.connect(dsn, autocommit=True)


def _one(conn: Conn, query: str, *params: object) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


@dataclass
class Run:
    deleted: int
    seconds: float
    wal_bytes: int
    lag_max: int
    app_p99_ms: float
    app_idle_p99_ms: float
    pauses: int


def _load(conn: Conn, rows: int) -> None:
    conn.execute("DROP TABLE IF EXISTS backlog")
    conn.execute(
        "CREATE TABLE backlog (id bigint PRIMARY KEY, expires_at timestamptz NOT NULL,"
        " payload text NOT NULL)"
    )
    conn.execute(
        "INSERT INTO backlog SELECT g, CASE WHEN g %% 2 = 0"
        " THEN now() - interval '2 days' + g * interval '1 ms'"
        " ELSE now() + interval '1 day' END, repeat('x', 60)"
        " FROM generate_series(1, %s) g",
        (rows,),
    )
    conn.execute("CREATE INDEX ON backlog (expires_at)")
    conn.execute("SELECT pgsweep.add_rule('backlog', 'expires_at')")
    conn.execute("VACUUM ANALYZE backlog")
    conn.execute("CHECKPOINT")


def _caught_up(primary: Conn, standby: Conn) -> None:
    target = _one(primary, "SELECT pg_current_wal_lsn()::text")
    while not _one(standby, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", target):
        time.sleep(0.05)


def _app(dsn: str, rows: int, stop: threading.Event, out: list[float]) -> None:
    rng = random.Random(7)  # noqa: S311 - which rows, not a secret
    with _connect(dsn) as conn:
        while not stop.is_set():
            row_id = rng.randrange(0, rows // 2) * 2 + 1  # odd ids: the live rows
            start = time.perf_counter()
            conn.execute("UPDATE backlog SET payload = payload WHERE id = %s", (row_id,))
            out.append((time.perf_counter() - start) * 1000.0)
            time.sleep(0.002)


def _sampler(dsn: str, stop: threading.Event, out: list[int]) -> None:
    with _connect(dsn) as conn:
        while not stop.is_set():
            out.append(
                int(
                    _one(
                        conn,
                        "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)),"
                        " 0) FROM pg_stat_replication",
                    )
                )
            )
            time.sleep(0.02)


def _variant(
    primary: LocalCluster,
    standby: LocalCluster,
    rows: int,
    paced: bool,
    stalled: bool,
    idle_s: float,
    stall_s: float,
) -> Run:
    with _connect(primary.dsn()) as conn, _connect(standby.dsn()) as s:
        _load(conn, rows)
        _caught_up(conn, s)
        stop_app, stop_sampler = threading.Event(), threading.Event()
        idle: list[float] = []
        app = threading.Thread(target=_app, args=(primary.dsn(), rows, stop_app, idle))
        app.start()
        time.sleep(idle_s)
        stop_app.set()
        app.join()
        busy: list[float] = []
        lags: list[int] = []
        stop_app = threading.Event()
        app = threading.Thread(target=_app, args=(primary.dsn(), rows, stop_app, busy))
        sampler = threading.Thread(target=_sampler, args=(primary.dsn(), stop_sampler, lags))
        pauses: list[str] = []
        conn.add_notice_handler(
            lambda d: pauses.append(d.message_primary or "")
            if (d.message_primary or "").startswith("pgsweep: pausing")
            else None
        )
        conn.execute(f"SET pgsweep.pacing = {'on' if paced else 'off'}")
        wal_start = _one(conn, "SELECT pg_current_wal_lsn()::text")
        if stalled:
            s.execute("SELECT pg_wal_replay_pause()")
            threading.Timer(stall_s, lambda: _resume(standby)).start()
        app.start()
        sampler.start()
        start = time.perf_counter()
        deleted = int(_one(conn, "CALL pgsweep.sweep()"))
        seconds = time.perf_counter() - start
        wal = int(_one(conn, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", wal_start))
        stop_app.set()
        app.join()
        if stalled:
            time.sleep(max(0.0, stall_s - seconds) + 0.1)
        _caught_up(conn, s)
        stop_sampler.set()
        sampler.join()
        if deleted != rows // 2:
            raise RuntimeError(f"the sweep deleted {deleted:,} rows, not {rows // 2:,}")
        return Run(
            deleted, seconds, wal, max(lags, default=0), percentile(busy, 0.99),
            percentile(idle, 0.99), len(pauses),
        )


def _resume(standby: LocalCluster) -> None:
    with _connect(standby.dsn()) as s:
        s.execute("SELECT pg_wal_replay_resume()")


def standby_backlog(rows: int, idle_s: float = IDLE_S, stall_s: float = STALL_S) -> ScenarioResult:
    result = ScenarioResult("standby backlog")
    with LocalCluster(preload_cron=False) as primary:
        with _connect(primary.dsn()) as conn:
            for name, value in PRIMARY_SETTINGS.items():
                conn.execute(f"ALTER SYSTEM SET {name} = {value}")
        primary.restart()
        engine.install(primary.dsn())
        standby = LocalCluster.standby_of(primary).start()
        try:
            runs = {
                (regime, paced): _variant(
                    primary, standby, rows, paced, regime == "stalled", idle_s, stall_s
                )
                for regime in ("replaying", "stalled")
                for paced in (False, True)
            }
        finally:
            standby.stop()
    scenario = f"standby backlog {rows // 2:,} of {rows:,}"
    for regime in ("replaying", "stalled"):
        unpaced, paced = runs[regime, False], runs[regime, True]
        label = f"{scenario}, standby {regime}"
        result.figures += [
            Figure(label, "replay lag max (paced vs unpaced)", paced.lag_max / 2**20,
                   unpaced.lag_max / 2**20, "MB", baseline_name="unpaced",
                   target="<= 64 MB" if regime == "stalled" else "report",
                   met=(paced.lag_max <= BUDGET) if regime == "stalled" else None),
            Figure(label, "throughput, rows deleted per second", paced.deleted / paced.seconds,
                   unpaced.deleted / unpaced.seconds, "rows/s", baseline_name="unpaced",
                   ratio=(paced.deleted / paced.seconds) / (unpaced.deleted / unpaced.seconds),
                   ratio_label="x unpaced",
                   target=">= 0.5x unpaced" if regime == "replaying" else "report",
                   met=(paced.seconds <= 2 * unpaced.seconds) if regime == "replaying" else None),
            Figure(label, "WAL bytes per deleted row", paced.wal_bytes / paced.deleted,
                   unpaced.wal_bytes / unpaced.deleted, "B", baseline_name="unpaced"),
            Figure(label, "app p99 during the sweep (baseline: the app's idle p99, paced run)",
                   paced.app_p99_ms, paced.app_idle_p99_ms, "ms", baseline_name="idle",
                   ratio=paced.app_p99_ms / paced.app_idle_p99_ms, ratio_label="x idle",
                   target="<= 2x idle", met=paced.app_p99_ms <= 2 * paced.app_idle_p99_ms),
            Figure(label, "app p99 during the unpaced sweep", unpaced.app_p99_ms,
                   unpaced.app_idle_p99_ms, "ms", baseline_name="idle",
                   ratio=unpaced.app_p99_ms / unpaced.app_idle_p99_ms, ratio_label="x idle"),
        ]
        for paced_flag, run in ((False, unpaced), (True, paced)):
            result.facts[f"{regime}_{'paced' if paced_flag else 'unpaced'}"] = vars(run)
    result.facts["rows"] = rows
    return result
