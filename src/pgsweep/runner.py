"""``pgsweep run --every DURATION``: the scheduler for deployments without pg_cron.

Each run calls ``CALL pgsweep.sweep(table)`` once per table under an expiry rule that can run:
one short transaction per batch (as the pg_cron job does), and a count per table to log.
Partitions entirely past a cutoff are removed first, ``DETACH ... CONCURRENTLY`` where
PostgreSQL allows it (:mod:`pgsweep.partitions`), and counted per table. A rule
whose table or column is gone is left out, and every run reports it (as ``pgsweep cleanup``,
``status`` and ``verify`` do), so a log of runs shows that a table is no longer cleaned. Between
runs it waits on a :class:`threading.Event`, so a SIGTERM/SIGINT handler that sets it stops the
loop at once while waiting, or right after the table being swept.

Each ``CALL`` records its run in the engine's history as the command's (``invoked_by`` 'cli':
the session setting ``pgsweep.invoked_by``), docs/observability.md.

A misconfiguration (unreachable server, wrong password, database without the engine) fails the
first connection and is reported at once. After that, losing the database (a restart, a
failover) is an outage to ride out: the error is reported and the loop reconnects with a growing
pause (1 s, 2 s, 4 s … up to ``max_backoff_s``). A server that turns out to be a standby (a
multi-host DSN that landed on one, a primary demoted by a failover) is such an outage too: the
procedure refuses to sweep there, and the next connection (``target_session_attrs=read-write``)
finds the new primary. Only a first connection to a standby is an error at once.

The procedure paces itself (``pgsweep.pace``) and never works on a rule another run holds
(``pgsweep.lock_rule``); what it says about that in NOTICEs and WARNINGs (a pause and its reason,
a rule skipped because another run works on it, a run stopped by its time budget) comes back in
:class:`RunCounts`, so every run's log line says it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgsweep import db, partitions
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
class Pause:
    """The sweep of a rule paused (``pgsweep.pace``), or stopped (``stopped``), and why."""

    table: str
    column: str
    reason: str
    stopped: bool = False


@dataclass(frozen=True)
class RunCounts:
    number: int
    started_at: dt.datetime
    seconds: float
    deleted: dict[str, int]  # per table, including the rows of partitions removed whole
    skipped: list[SkippedRule] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    partitions: dict[str, int] = field(default_factory=dict)  # per table: removed whole

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
    runnable = [(str(t), str(c)) for t, c, problem in rules if problem is None]
    tables = list(dict.fromkeys(t for t, _ in runnable))
    columns = {t: [c for r, c in runnable if r == t] for t in tables}
    skipped = [SkippedRule(str(t), str(c), str(p)) for t, c, p in rules if p is not None]
    deleted: dict[str, int] = {}
    removed: dict[str, int] = {}
    pauses: list[Pause] = []
    messages: list[str] = []

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        messages.append(diag.message_primary or "")

    # pgsweep.max_run_time is a budget per run: each table's CALL gets what is left of it.
    budget_row = conn.execute(
        "SELECT current_setting('pgsweep.max_run_time', true),"
        " extract(epoch FROM pgsweep.setting('max_run_time')::interval)::float8"
    ).fetchone()
    assert budget_row is not None
    configured, budget_s = budget_row[0], float(budget_row[1])
    # Each CALL records its run (pgsweep.run) as this command's, not as a bare procedure call.
    conn.execute("SELECT set_config('pgsweep.invoked_by', 'cli', false)")
    conn.add_notice_handler(on_notice)
    try:
        for position, table in enumerate(tables, start=1):
            if budget_s > 0:
                left = budget_s - (time.monotonic() - clock)
                if left <= 0:
                    reason = (
                        f"the run's time budget (pgsweep.max_run_time = {budget_s:g} s) is used up"
                    )
                    pauses += [Pause(table, c, reason, stopped=True) for c in columns[table]]
                    continue
                conn.execute(
                    "SELECT set_config('pgsweep.max_run_time', %s, false)", (f"{left:.3f}s",)
                )
            if on_table is not None:
                on_table(number, table, position, len(tables))
            messages.clear()
            try:
                # Partitions past the cutoff first, DETACH ... CONCURRENTLY where possible
                # (which the procedure cannot do); the procedure then removes any left, and
                # the rows.
                whole = [partitions.remove_expired(conn, table, c) for c in columns[table]]
                _record_partitions(conn, table, columns[table], whole)
                row = conn.execute(
                    "CALL pgsweep.sweep(%s::regclass, %s, '0'::interval, NULL)",
                    (table, batch_size),
                ).fetchone()
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
                # The table or column went away since the rules were read: say so and go on
                # with the others (each batch committed on its own). Any other error (a missing
                # privilege) is the operator's to see, not a rule to skip. The rule's lock, held
                # by this session, goes with the failed call.
                conn.execute("SELECT pg_advisory_unlock_all()")
                skipped.append(SkippedRule(table, "*", db.one_line(str(exc))))
                continue
            swept = int(row[0]) if row and row[0] is not None else 0
            deleted[table] = swept + sum(w.rows for w in whole)
            if any(w.removed for w in whole):
                removed[table] = sum(len(w.removed) for w in whole)
            said = read_messages(table, columns[table], messages)
            skipped += said.skipped
            pauses += said.pauses
    finally:
        conn.remove_notice_handler(on_notice)
        if budget_s > 0 and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                conn.execute(
                    "SELECT set_config('pgsweep.max_run_time', %s, false)", (configured or "",)
                )
    return RunCounts(
        number, started, time.monotonic() - clock, deleted, skipped, pauses, removed
    )


def _record_partitions(
    conn: psycopg.Connection[Any], table: str, columns: list[str], whole: list[partitions.Removal]
) -> None:
    """The rows of the partitions removed whole outside the procedure, as a run of their own
    in the history ('cli'), so that every row a run removed is counted there."""
    if not any(w.rows for w in whole):
        return
    row = conn.execute("SELECT pgsweep.run_begin('cli')").fetchone()
    assert row is not None
    for column, removal in zip(columns, whole, strict=True):
        if removal.rows:
            conn.execute(
                "SELECT pgsweep.run_record(%s, %s::regclass, %s, %s, 0)",
                (row[0], table, column, removal.rows),
            )
    conn.execute("SELECT pgsweep.run_end(%s, 'succeeded')", (row[0],))


@dataclass(frozen=True)
class Said:
    skipped: list[SkippedRule]
    pauses: list[Pause]


def read_messages(table: str, columns: list[str], messages: list[str]) -> Said:
    """What ``CALL pgsweep.sweep(table)`` said about the table's rules: a rule skipped because
    another run works on it, a pause and its reason, a stop at the run's time budget."""
    said = Said([], [])
    for message in messages:
        for column in columns:
            rule = f"pgsweep: rule {table}.{column} skipped: "
            pausing = f"pgsweep: pausing {table} ({column}): "
            stopping = f"pgsweep: stopping {table} ({column}): "
            if message.startswith(rule):
                said.skipped.append(SkippedRule(table, column, message.removeprefix(rule)))
            elif message.startswith(pausing):
                said.pauses.append(Pause(table, column, message.removeprefix(pausing)))
            elif message.startswith(stopping):
                reason = message.removeprefix(stopping).split("; the rest", 1)[0]
                said.pauses.append(Pause(table, column, reason, stopped=True))
    return said


def require_primary(conn: psycopg.Connection[Any], dsn: str) -> None:
    """A usage error for a standby: a sweep deletes, and a standby is read-only."""
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    if row is not None and row[0]:
        raise StandbyServer(
            f"{db.describe(dsn)} is a standby (in recovery): run the sweep against the primary"
            " (with several hosts in the DSN: target_session_attrs=read-write)"
        )


class StandbyServer(PgsweepError):
    """The server is a standby: nothing can be deleted there."""


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
                counts = sweep_once(conn, runs + 1, batch_size, on_table)
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
