"""``pgsweep run --every DURATION``: the scheduler for deployments without pg_cron.

Each run is one run of the cleanup's driver (:func:`pgsweep.cleanup.sweep`): every rule in the
engine's order (``pgsweep.run_order``), each repeating the engine's sweep step
(``pgsweep.sweep_step``) as ``CALL pgsweep.sweep()`` and the pg_cron job do, one short
transaction per step, and a count per table to log. Partitions entirely past a cutoff are
removed first, ``DETACH ... CONCURRENTLY`` where PostgreSQL allows it (:mod:`pgsweep.partitions`).
A rule that cannot run, that another run holds, that gave way or that failed is in the run's
counts (skipped, failed) and its log line, and the loop goes on: one bad rule never stops the
others, nor the loop. Between runs it waits on a :class:`threading.Event`, so a SIGTERM/SIGINT
handler that sets it stops the loop at once while waiting, or right after the rule being swept.

Each run is recorded in the engine's history as the command's (``invoked_by`` 'cli'),
docs/observability.md; a run stopped by ``pgsweep.max_run_time`` ends 'stopped', with the rules
left for the next run.

A misconfiguration (unreachable server, wrong password, database without the engine) fails the
first connection and is reported at once. After that, losing the database (a restart, a
failover) is an outage to ride out: the error is reported and the loop reconnects with a growing
pause (1 s, 2 s, 4 s … up to ``max_backoff_s``). A server that turns out to be a standby (a
multi-host DSN that landed on one, a primary demoted by a failover) is such an outage too: the
engine refuses to sweep there, and the next connection (``target_session_attrs=read-write``)
finds the new primary. Only a first connection to a standby is an error at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgsweep import cleanup, db
from pgsweep.cleanup import (  # re-exported: the names pgsweep run's callers know
    SWEEP_BATCH_SIZE,
    FailedRule,
    Pause,
    SkippedRule,
    StandbyServer,
    require_primary,
)
from pgsweep.deploy import require_engine
from pgsweep.errors import PgsweepError, UsageError
from pgsweep.events import Event, EventSink

__all__ = [
    "SWEEP_BATCH_SIZE",
    "FailedRule",
    "Outage",
    "Pause",
    "RunCounts",
    "SkippedRule",
    "StandbyServer",
    "parse_duration",
    "require_primary",
    "run",
    "sweep_once",
]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``90s``, ``5m``, ``1h30m``, ``1d``, ``250ms`` (or plain seconds) as seconds, > 0."""
    value = text.strip().lower()
    seconds: float
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    elif value and re.fullmatch(f"(?:{_DURATION.pattern})+", value):
        seconds = sum(float(n) * _UNIT_S[u] for n, u in _DURATION.findall(value))
    else:
        raise UsageError(f"invalid duration {text!r} (examples: 30s, 5m, 1h30m, 1d)")
    if seconds <= 0:
        raise UsageError(f"the duration must be positive, not {text!r}")
    # The longest wait threading.Event.wait accepts (about 292 years on Linux); beyond it
    # the wait would raise OverflowError.
    if not math.isfinite(seconds) or seconds > threading.TIMEOUT_MAX:
        longest = int(threading.TIMEOUT_MAX // 86400)
        raise UsageError(f"the duration {text!r} is too long (at most {longest}d)")
    return seconds


@dataclass(frozen=True)
class RunCounts:
    number: int
    started_at: dt.datetime
    seconds: float
    deleted: dict[str, int]  # per table, including the rows of partitions removed whole
    skipped: list[SkippedRule] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    partitions: dict[str, int] = field(default_factory=dict)  # per table: removed whole
    failed: list[FailedRule] = field(default_factory=list)
    left: list[SkippedRule] = field(default_factory=list)  # a stopped run's rules left over

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


@dataclass(frozen=True)
class Outage:
    message: str
    retry_in_s: float


# (run number, table, its position from 1, how many tables): called before each table's sweep.
TableCallback = Callable[[int, str, int, int], None]


def sweep_once(
    conn: psycopg.Connection[Any],
    number: int,
    batch_size: int,
    on_table: TableCallback | None = None,
    on_event: EventSink | None = None,
) -> RunCounts:
    """One run: the cleanup's driver (:func:`pgsweep.cleanup.sweep`, the engine's sweep step
    rule by rule), recorded as the command's run; its counts per table. Its events go to
    ``on_event``, run_start and run_end with the run's ``number`` in this loop."""
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    tables_seen: list[str] = []

    def on_rule(table: str, _column: str, _position: int, _count: int) -> None:
        if table not in tables_seen:
            tables_seen.append(table)
            if on_table is not None:
                on_table(number, table, len(tables_seen), _table_count(conn))

    def numbered(event: Event) -> None:
        assert on_event is not None
        if event.event in ("run_start", "run_end"):
            event = dataclasses.replace(event, extra={"number": number, **event.extra})
        on_event(event)

    result = cleanup.sweep(
        conn,
        batch_size=batch_size,
        on_rule=on_rule,
        on_event=numbered if on_event is not None else None,
    )
    # Every table with a rule, 0 for one whose rules were all skipped, failed or left.
    swept = {t.table: t.rows for t in result.tables}
    deleted = {t: swept.get(t, 0) for t in _tables(conn) + list(swept)}
    removed = {t.table: n for t in result.tables if (n := sum(len(r.partitions) for r in t.rules))}
    return RunCounts(
        number,
        started,
        time.monotonic() - clock,
        deleted,
        result.skipped,
        result.pauses,
        removed,
        result.failed,
        result.left,
    )


def _table_count(conn: psycopg.Connection[Any]) -> int:
    return len(_tables(conn))


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The tables with rules, in the order a run works them."""
    rows = conn.execute(
        "SELECT o.table_name::text FROM pgsweep.run_order() o"
        " WHERE EXISTS (SELECT FROM pg_class c WHERE c.oid = o.table_name)"  # not a dropped one
    ).fetchall()
    return list(dict.fromkeys(str(r[0]) for r in rows))


def run(
    dsn: str,
    every_s: float,
    *,
    stop: threading.Event,
    on_run: Callable[[RunCounts], None],
    on_outage: Callable[[Outage], None],
    batch_size: int = SWEEP_BATCH_SIZE,
    max_runs: int | None = None,
    max_backoff_s: float = 60.0,
    on_start: Callable[[], None] | None = None,
    on_table: TableCallback | None = None,
    on_event: EventSink | None = None,
) -> int:
    """Sweep every ``every_s`` seconds until ``stop`` is set (or ``max_runs``); returns runs.
    ``on_start`` is called once the first connection works and the engine is there, so that
    nothing says "started" before a misconfiguration is reported."""
    if batch_size < 1:
        raise UsageError("--batch-size must be a positive integer")
    if max_runs is not None and max_runs < 1:
        raise UsageError("--max-runs must be a positive integer")
    first = db.connect(dsn)  # a misconfiguration fails here, at once
    try:
        require_engine(first)
        require_primary(first, dsn)
    except BaseException:
        first.close()
        raise
    if on_start is not None:
        on_start()
    conn: psycopg.Connection[Any] | None = first
    runs, backoff = 0, 1.0
    try:
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = db.connect(dsn)
                counts = sweep_once(conn, runs + 1, batch_size, on_table, on_event)
            except (
                psycopg.OperationalError,
                psycopg.errors.ReadOnlySqlTransaction,
                PgsweepError,
            ) as exc:
                # ReadOnlySqlTransaction: this server is (now) a standby; the next connection
                # looks for the primary again.
                if conn is not None:
                    conn.close()
                conn = None
                on_outage(Outage(db.one_line(str(exc)), backoff))
                if on_event is not None:
                    on_event(
                        Event("outage", error=db.one_line(str(exc)), extra={"retry_in_s": backoff})
                    )
                stop.wait(backoff)
                backoff = min(backoff * 2, max_backoff_s)
                continue
            runs += 1
            backoff = 1.0
            on_run(counts)
            if max_runs is not None and runs >= max_runs:
                break
            stop.wait(every_s)
    finally:
        if conn is not None:
            conn.close()
    return runs
