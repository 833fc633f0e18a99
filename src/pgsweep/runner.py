"""``pgsweep run --every DURATION``: the scheduler for deployments without pg_cron.

Each run calls ``CALL pgsweep.sweep(table)`` once per table under an expiry rule that can run:
one short transaction per batch (as the pg_cron job does), and a count per table to log. A rule
whose table or column is gone is left out, and every run reports it (as ``pgsweep cleanup``,
``status`` and ``verify`` do), so a log of runs shows that a table is no longer cleaned. Between
runs it waits on a :class:`threading.Event`, so a SIGTERM/SIGINT handler that sets it stops the
loop at once while waiting, or right after the table being swept.

Each ``CALL`` records its run in the engine's history as the command's (``invoked_by`` 'cli':
the session setting ``pgsweep.invoked_by``), docs/observability.md.

A misconfiguration (unreachable server, wrong password, database without the engine) fails the
first connection and is reported at once. After that, losing the database (a restart, a
failover) is an outage to ride out: the error is reported and the loop reconnects with a growing
pause (1 s, 2 s, 4 s … up to ``max_backoff_s``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgsweep import db
from pgsweep.deploy import require_engine
from pgsweep.errors import PgsweepError, UsageError

# CALL pgsweep.sweep()'s default batch since 0008; tests/test_purge.py checks the two agree.
SWEEP_BATCH_SIZE = 5000

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
class SkippedRule:
    """A rule no consumer can run now (``pgsweep.rules.problem``): its table or column is gone."""

    table: str
    column: str
    problem: str


@dataclass(frozen=True)
class RunCounts:
    number: int
    started_at: dt.datetime
    seconds: float
    deleted: dict[str, int]
    skipped: list[SkippedRule] = field(default_factory=list)

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
) -> RunCounts:
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    rules = conn.execute(
        "SELECT table_name, column_name::text, problem FROM pgsweep.rules"
        " ORDER BY table_name, column_name"
    ).fetchall()
    tables = list(dict.fromkeys(str(t) for t, _, problem in rules if problem is None))
    skipped = [SkippedRule(str(t), str(c), str(p)) for t, c, p in rules if p is not None]
    deleted: dict[str, int] = {}
    # Each CALL records its run (pgsweep.run) as this command's, not as a bare procedure call.
    conn.execute("SELECT set_config('pgsweep.invoked_by', 'cli', false)")
    for position, table in enumerate(tables, start=1):
        if on_table is not None:
            on_table(number, table, position, len(tables))
        try:
            row = conn.execute(
                "CALL pgsweep.sweep(%s::regclass, %s, '0'::interval, NULL)", (table, batch_size)
            ).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            # The table or column went away since the rules were read: say so and go on with
            # the others (each batch committed on its own). Any other error (a missing privilege)
            # is the operator's to see, not a rule to skip.
            skipped.append(SkippedRule(table, "*", db.one_line(str(exc))))
            continue
        deleted[str(table)] = int(row[0]) if row and row[0] is not None else 0
    return RunCounts(number, started, time.monotonic() - clock, deleted, skipped)


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
                counts = sweep_once(conn, runs + 1, batch_size, on_table)
            except (psycopg.OperationalError, PgsweepError) as exc:
                if conn is not None:
                    conn.close()
                conn = None
                on_outage(Outage(db.one_line(str(exc)), backoff))
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
