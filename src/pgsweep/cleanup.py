"""``pgsweep cleanup``: delete what every rule marks as garbage, or say exactly what it would.

The cleanup takes every rule of every table (``table`` narrows it to one table) in the order of
``pgsweep.run_order`` (an orphan rule after its parent's rules), and repeats
``pgsweep.sweep_step`` for each: the engine routine that ``CALL pgsweep.sweep()`` repeats too.
The step takes every decision about a rule's rows (the rule read again in each step's
transaction, its advisory lock, its batch, its record in the run, its errors); this driver only
calls it, one short transaction per step (the connection is in autocommit mode), reports each
step (a progress display) and paces between steps with the engine's ``pgsweep.pace``. It reads
what happened from the step's columns (its outcome and message), never from message text.

A rule that cannot run, that another run holds, that gives way to the app or that fails is
reported (:class:`SkippedRule`, :class:`FailedRule`) and the cleanup goes on with the next rule.
A run stopped by ``pgsweep.max_run_time`` ends 'stopped', the rules it did not reach recorded as
left for the next run. A standby is refused.

On a table range-partitioned on a rule's column, the partitions entirely past the cutoff leave
first, whole (:mod:`pgsweep.partitions`: ``DETACH ... CONCURRENTLY`` where PostgreSQL allows it,
which no function can do), and their rows count as deleted; the dry run lists them with their
rows.

The cleanup is recorded as a run (``invoked_by`` 'cli', docs/observability.md): ``run_begin``
(committed at once), each step's record, ``run_end`` with 'succeeded', 'stopped' or 'failed' and
why. An error or an interrupt (Ctrl-C) closes the run and releases the rule's lock before it is
raised; a cleanup killed outright shows as 'interrupted'.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgsweep import db, partitions
from pgsweep.deploy import require_engine
from pgsweep.errors import PgsweepError, UsageError
from pgsweep.events import Event, EventSink, rule_name
from pgsweep.partitions import PartitionCount

# CALL pgsweep.sweep()'s default batch since 0008; tests/test_purge.py checks the two agree.
SWEEP_BATCH_SIZE = 5000


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


@dataclass(frozen=True)
class FailedRule:
    """A rule whose step raised an error: its work of that step undone, the others went on."""

    table: str
    column: str
    error: str
    sqlstate: str | None = None


@dataclass(frozen=True)
class RuleCount:
    column: str
    rows: int  # including those of the partitions
    # Partitions past the cutoff removed whole (dry run: that would be), and those left for
    # the next run ("partition: why"; their rows were row-deleted instead).
    partitions: list[PartitionCount] = field(default_factory=list)
    partitions_left: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int  # deleted, or (dry run) would be deleted
    rules: list[RuleCount]


@dataclass(frozen=True)
class CleanupResult:
    dry_run: bool
    tables: list[TableCount]
    skipped: list[SkippedRule] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    failed: list[FailedRule] = field(default_factory=list)
    # Rules a stopped run did not finish or reach (left for the next run).
    left: list[SkippedRule] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(t.rows for t in self.tables)


@dataclass(frozen=True)
class Progress:
    """One committed step: the rule, its rows deleted so far, and the whole run's."""

    table: str
    column: str
    rule_deleted: int
    total_deleted: int


class SweepCancelled(PgsweepError):
    """The server cancelled a step (statement_timeout, pg_cancel_backend): the run is closed,
    every step before it committed and recorded; running again is safe."""


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep, raised once the run is closed: what had committed by then (each
    batch commits on its own, so those rows are gone for good and the rest is still there)."""

    def __init__(self, run_id: int, rows: int, batches: int) -> None:
        super().__init__(f"run {run_id}: {rows} rows in {batches} batches committed")
        self.run_id = run_id
        self.rows = rows
        self.batches = batches


# (table, column, its position from 1, how many rules): called before each rule is begun.
RuleCallback = Callable[[str, str, int, int], None]


def cleanup(
    dsn: str,
    *,
    table: str | None = None,
    batch_size: int = SWEEP_BATCH_SIZE,
    on_batch: Callable[[Progress], None] | None = None,
    on_event: EventSink | None = None,
) -> CleanupResult:
    """Delete the garbage of every rule (of ``table``), one transaction per step; each thing
    done said to ``on_event`` (:mod:`pgsweep.events`)."""
    if batch_size < 1:
        raise UsageError("--batch-size must be a positive integer")
    with db.connect(dsn) as conn:
        require_engine(conn)
        require_primary(conn, dsn)
        if table is not None:
            _require_rules(conn, table)
        return sweep(conn, table=table, batch_size=batch_size, on_batch=on_batch, on_event=on_event)


def sweep(
    conn: psycopg.Connection[Any],
    *,
    table: str | None = None,
    batch_size: int = SWEEP_BATCH_SIZE,
    on_batch: Callable[[Progress], None] | None = None,
    on_rule: RuleCallback | None = None,
    on_event: EventSink | None = None,
) -> CleanupResult:
    """One recorded run over every rule (of ``table``) on an open autocommit connection: what
    ``pgsweep cleanup`` and each run of ``pgsweep run`` do."""
    row = conn.execute("SELECT pgsweep.run_begin('cli')").fetchone()
    assert row is not None
    run = _Run(conn, int(row[0]), on_event)
    try:
        rules = _run_order(conn, table)
        run.say(Event("run_start", extra={"run": run.run_id, "rules": len(rules)}))
        tables = run.sweep(rules, batch_size, on_batch, on_rule)
    except BaseException as exc:  # an interrupt too: nothing may be left to this session
        run.abandon(exc)
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, SweepInterrupted):
            raise SweepInterrupted(run.run_id, run.total, run.batches) from None
        raise
    run.end()
    if run.cancelled is not None:
        raise SweepCancelled(f"the sweep was cancelled: {run.cancelled}")
    return CleanupResult(False, _tables(tables), run.skipped, run.pauses, run.failed, run.left)


def _run_order(conn: psycopg.Connection[Any], table: str | None) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT table_name::text, column_name::text FROM pgsweep.run_order(%s::regclass)",
        (table,),
    ).fetchall()
    return [(str(t), str(c)) for t, c in rows]


@dataclass(frozen=True)
class _Step:
    """What one ``pgsweep.sweep_step`` did (its columns)."""

    outcome: str  # more, done, skipped, gave_way, failed, cancelled
    deleted: int  # row by row
    removed_whole: int  # rows of partitions removed whole
    cursor: str | None
    size: int
    next_wal: int
    blocked: int
    message: str | None
    sqlstate: str | None


class _Run:
    """One recorded run: the steps of each rule, paced, and what they said."""

    def __init__(
        self, conn: psycopg.Connection[Any], run_id: int, on_event: EventSink | None = None
    ) -> None:
        self.conn = conn
        self.run_id = run_id
        self.on_event = on_event
        # As epoch seconds and text: a timestamptz would come back in the session's DateStyle,
        # which need not be one the driver reads.
        row = conn.execute(
            "SELECT extract(epoch FROM clock_timestamp())::float8, pg_current_wal_lsn()::text"
        ).fetchone()
        assert row is not None
        self.started, self.wal_start = float(row[0]), str(row[1])
        self.total = 0  # every row, partitions removed whole included
        self.row_deleted = 0  # rows deleted row by row: what the row-rate budget counts
        self.batches = 0  # steps that committed a deletion
        self.pauses: list[Pause] = []
        self.skipped: list[SkippedRule] = []
        self.failed: list[FailedRule] = []
        self.left: list[SkippedRule] = []
        self.stopped: str | None = None
        self.cancelled: str | None = None
        self.current: tuple[str, str] | None = None  # the rule being worked on
        # Pauses since the last step recorded: the next step's record carries them.
        self.unrecorded_pauses = 0
        self.unrecorded_pause_s = 0.0

    def say(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def sweep(
        self,
        rules: list[tuple[str, str]],
        batch_size: int,
        on_batch: Callable[[Progress], None] | None,
        on_rule: RuleCallback | None,
    ) -> dict[str, list[RuleCount]]:
        tables: dict[str, list[RuleCount]] = {}
        for position, (table, column) in enumerate(rules, start=1):
            if self.stopped is not None or self.cancelled is not None:
                self._leave(table, column)
                continue
            if on_rule is not None:
                on_rule(table, column, position, len(rules))
            self.current = (table, column)
            counted = self.rule(table, column, batch_size, on_batch)
            self.current = None
            if counted is not None:
                tables.setdefault(table, []).append(counted)
        return tables

    def rule(
        self,
        table: str,
        column: str,
        batch_size: int,
        on_batch: Callable[[Progress], None] | None,
    ) -> RuleCount | None:
        """Every step of one rule; its count, or None when it did not run at all."""
        # The first step takes the rule's lock; the partitions go whole here, concurrently.
        step = self.step(table, column, None, batch_size)
        if step.outcome != "more":
            self._ended(table, column, step)
            return None
        removal = self._remove_partitions(table, column, on_batch)
        deleted = removal.rows
        batches = 0
        while step.outcome == "more":
            assert step.cursor is not None
            step = self.step(table, column, step.cursor, step.size)
            deleted += step.deleted + step.removed_whole
            self.total += step.deleted + step.removed_whole
            self.batches += 1 if step.deleted else 0
            self.row_deleted += step.deleted
            if step.outcome in ("more", "done") and (step.deleted or step.outcome == "more"):
                batches += 1
                self.say(
                    Event(
                        "batch",
                        rule_name(table, column),
                        rows=step.deleted + step.removed_whole,
                        batch=batches,
                        extra={"rule_rows": deleted},
                    )
                )
            if on_batch is not None and step.outcome in ("more", "done"):
                on_batch(Progress(table, column, deleted, self.total))
            if step.outcome == "more" and not self._pace(table, column, step):
                reason = f"left for the next run: {self.stopped}"
                self.left.append(SkippedRule(table, column, reason))
                self.say(Event("rule_left", rule_name(table, column), rows=deleted, reason=reason))
                self.conn.execute(
                    "SELECT pgsweep.sweep_step_end(%s, %s::regclass, %s, true, 'stopped', %s)",
                    (self.run_id, table, column, reason),
                )
                return RuleCount(column, deleted, removal.removed, removal.left)
        self._ended(table, column, step)
        if step.outcome == "done":
            extra: dict[str, object] = {"batches": batches, "partitions": len(removal.removed)}
            self.say(Event("rule_done", rule_name(table, column), rows=deleted, extra=extra))
        return RuleCount(column, deleted, removal.removed, removal.left)

    def step(self, table: str, column: str, cursor: str | None, size: int) -> _Step:
        row = self.conn.execute(
            "SELECT s.outcome, s.deleted, s.removed_whole, s.next_cursor, s.next_size,"
            " s.next_wal, s.blocked, s.message, s.error_code"
            " FROM pgsweep.sweep_step(%s, %s::regclass, %s, %s, %s, %s,"
            "                         make_interval(secs => %s), p_whole_partitions => false) s",
            (
                self.run_id,
                table,
                column,
                cursor,
                size,
                self.unrecorded_pauses,
                self.unrecorded_pause_s,
            ),
        ).fetchone()
        assert row is not None
        if cursor is not None:
            self.unrecorded_pauses, self.unrecorded_pause_s = 0, 0.0
        return _Step(
            outcome=str(row[0]),
            deleted=int(row[1]),
            removed_whole=int(row[2]),
            cursor=row[3],
            size=int(row[4]) if row[4] is not None else size,
            next_wal=int(row[5]),
            blocked=int(row[6]),
            message=row[7],
            sqlstate=row[8],
        )

    def _ended(self, table: str, column: str, step: _Step) -> None:
        """What a rule's last step says of it (the step has said, recorded and released it)."""
        rule = rule_name(table, column)
        if step.outcome in ("skipped", "gave_way") and step.message:
            self.skipped.append(SkippedRule(table, column, step.message))
            self.say(Event("rule_skipped", rule, reason=step.message))
        elif step.outcome == "failed":
            self.failed.append(FailedRule(table, column, step.message or "?", step.sqlstate))
            self.say(
                Event(
                    "rule_failed",
                    rule,
                    error=step.message or "?",
                    extra={"sqlstate": step.sqlstate},
                )
            )
        elif step.outcome == "cancelled":
            self.cancelled = step.message or "cancelled"
            self.say(
                Event("rule_failed", rule, error=self.cancelled, extra={"sqlstate": step.sqlstate})
            )

    def _leave(self, table: str, column: str) -> None:
        reason = self.stopped or self.cancelled or "?"
        self.left.append(SkippedRule(table, column, f"left for the next run: {reason}"))
        self.say(
            Event("rule_left", rule_name(table, column), reason=f"left for the next run: {reason}")
        )
        if self.cancelled is None:
            self.conn.execute(
                "SELECT pgsweep.run_record(%s, %s::regclass, %s, 0, 0, p_error => %s)",
                (self.run_id, table, column, f"left for the next run: {reason}"),
            )

    def _remove_partitions(
        self, table: str, column: str, on_batch: Callable[[Progress], None] | None
    ) -> partitions.Removal:
        """The rule's partitions entirely past the cutoff, removed whole and recorded in the
        run. A table or column gone meanwhile: nothing removed (the next step says why)."""
        try:
            removal = partitions.remove_expired(self.conn, table, column)
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
            return partitions.Removal()
        if removal.rows:
            self.conn.execute(
                "SELECT pgsweep.run_record(%s, %s::regclass, %s, %s, 0)",
                (self.run_id, table, column, removal.rows),
            )
        rule = rule_name(table, column)
        for p in removal.removed:
            self.say(
                Event(
                    "partition", rule, rows=p.rows, extra={"partition": p.partition, "how": p.how}
                )
            )
        for why in removal.left:
            partition, _, reason = why.partition(": ")
            # hidden: half-detached or detached, its rows out of the table until a run
            # finishes the detach (else still attached, its rows deleted by the batches).
            extra = {"partition": partition, "hidden": not partitions.row_deleted(why)}
            self.say(Event("partition_left", rule, reason=reason, extra=extra))
        self.total += removal.rows
        if removal.removed and on_batch is not None:
            on_batch(Progress(table, column, removal.rows, self.total))
        return removal

    def _pace(self, table: str, column: str, step: _Step) -> bool:
        """Wait while pgsweep.pace says so; False when the run must stop here."""
        said: str | None = None
        blocked = step.blocked
        while True:
            row = self.conn.execute(
                "SELECT extract(epoch FROM p.wait)::float8, p.reason, p.stop"
                " FROM pgsweep.pace(%s::regclass, to_timestamp(%s), %s, %s::pg_lsn, %s, %s) p",
                (table, self.started, self.row_deleted, self.wal_start, blocked, step.next_wal),
            ).fetchone()
            assert row is not None
            wait_s, reason, stop = float(row[0]), row[1], bool(row[2])
            if stop:
                self.pauses.append(Pause(table, column, str(reason), stopped=True))
                self.stopped = str(reason)
                self.say(Event("stop", rule_name(table, column), reason=str(reason)))
                return False
            if wait_s <= 0:
                return True
            if reason != said:
                self.pauses.append(Pause(table, column, str(reason)))
                self.unrecorded_pauses += 1
                said = reason
                self.say(
                    Event(
                        "pause",
                        rule_name(table, column),
                        reason=str(reason),
                        extra={"seconds": round(wait_s, 3)},
                    )
                )
            time.sleep(wait_s)
            self.unrecorded_pause_s += wait_s
            blocked = 0

    def end(self) -> None:
        if self.cancelled is not None:
            status, error = "failed", f"cancelled: {self.cancelled}"
        elif self.failed:
            named = "; ".join(f"{f.table} ({f.column}): {f.error}" for f in self.failed)
            status, error = "failed", f"{len(self.failed)} rule(s) failed: {named}"
        elif self.stopped is not None:
            status, error = "stopped", self.stopped
        else:
            status, error = "succeeded", None
        self.conn.execute("SELECT pgsweep.run_end(%s, %s, %s)", (self.run_id, status, error))
        self._said_end(status, error)

    def _said_end(self, status: str, error: str | None) -> None:
        row = self.conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        seconds = round(float(row[0]) - self.started, 3) if row else None
        extra: dict[str, object] = {"run": self.run_id, "status": status, "seconds": seconds}
        self.say(Event("run_end", rows=self.total, error=error, extra=extra))

    def abandon(self, exc: BaseException) -> None:
        """Close the run and release the rule being worked on after an error or an interrupt
        raised here (the step's own errors come back as outcomes)."""
        if self.conn.closed or self.conn.broken:
            return  # the session is gone, and its locks with it; the run shows 'interrupted'
        interrupted = isinstance(exc, KeyboardInterrupt)
        what = "interrupted (Ctrl-C)" if interrupted else db.one_line(str(exc))
        try:
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.rollback()
            if self.current is not None:
                table, column = self.current
                self.conn.execute(
                    "SELECT pgsweep.sweep_step_end(%s, %s::regclass, %s, true, 'cancelled', %s)",
                    (self.run_id, table, column, what),
                )
            self.conn.execute(
                "SELECT pgsweep.run_end(%s, %s, %s)",
                (self.run_id, "interrupted" if interrupted else "failed", what),
            )
            self._said_end("interrupted" if interrupted else "failed", what)
        except psycopg.Error:
            pass  # nothing more can be done on this connection; its end releases the rest


def dry_run(dsn: str, *, table: str | None = None) -> CleanupResult:
    with db.connect(dsn) as conn:
        return garbage(conn, table)


def garbage(conn: psycopg.Connection[Any], table: str | None = None) -> CleanupResult:
    """What the cleanup would delete now, per table and rule (nothing is deleted)."""
    require_engine(conn)
    _, skipped = _rules(conn, table)
    rows = conn.execute(
        "SELECT g.table_name::text, g.column_name::text, g.garbage"
        " FROM pgsweep.garbage_counts(%s::regclass) g",
        (table,),
    ).fetchall()
    tables: dict[str, list[RuleCount]] = {}
    for rule_table, column, count in rows:
        expired = partitions.expired(conn, str(rule_table), str(column))
        tables.setdefault(str(rule_table), []).append(RuleCount(str(column), int(count), expired))
    return CleanupResult(True, _tables(tables), skipped)


def _tables(rules: dict[str, list[RuleCount]]) -> list[TableCount]:
    return [TableCount(t, sum(r.rows for r in counts), counts) for t, counts in rules.items()]


def _rules(
    conn: psycopg.Connection[Any], table: str | None
) -> tuple[list[tuple[str, str]], list[SkippedRule]]:
    """The rules that can run, in the order the engine counts them, and those that cannot."""
    if table is not None:
        _require_rules(conn, table)
    rows = conn.execute(
        "SELECT table_name, column_name::text, problem FROM pgsweep.rules"
        " WHERE %s::regclass IS NULL OR table_name = %s::regclass::text"
        " ORDER BY table_name, column_name",
        (table, table),
    ).fetchall()
    runnable = [(str(t), str(c)) for t, c, problem in rows if problem is None]
    skipped = [SkippedRule(str(t), str(c), str(p)) for t, c, p in rows if p is not None]
    return runnable, skipped


def _require_rules(conn: psycopg.Connection[Any], table: str) -> None:
    """A usage error for a --table that does not exist or has no rule."""
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL,"
        " EXISTS (SELECT FROM pgsweep.expiry_rule r WHERE r.table_name = to_regclass(%s))",
        (table, table),
    ).fetchone()
    assert row is not None
    if not row[0]:
        raise UsageError(f"no table {table!r} in this database")
    if not row[1]:
        raise UsageError(f"table {table!r} has no expiry rule (pgsweep.add_rule)")


# --- cleanup --dry-run --estimate ----------------------------------------------------------------

# The sample batch waits at most this long for a lock (the engine's own first pass waits 20 ms,
# then takes what is not held); a held row makes the sample take the SKIP LOCKED pass instead.
ESTIMATE_LOCK_TIMEOUT_MS = 20
ESTIMATE_STATEMENT_TIMEOUT_MS = 60_000  # one sample batch

_FK_ACTIONS = {
    "a": ("no action", "the delete fails while a row of {t} references a garbage row"),
    "r": ("restrict", "the delete fails while a row of {t} references a garbage row"),
    "c": ("cascade", "deletes the rows of {t} that reference a deleted row"),
    "n": ("set null", "sets the referencing columns of {t} to NULL"),
    "d": ("set default", "sets the referencing columns of {t} to their default"),
}


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key of another table (or the same one) that references the rule's table."""

    name: str
    table: str  # the referencing table
    action: str  # ON DELETE: cascade, restrict, no action, set null, set default
    effect: str
    definition: str


@dataclass(frozen=True)
class RuleEstimate:
    """One sample batch of a rule, run under EXPLAIN ANALYZE and rolled back, and what the
    whole run of the rule would cost if every batch were like it."""

    table: str
    column: str
    rows: int  # what the whole run deletes now (pgsweep.garbage_counts)
    batches: int
    sample_rows: int  # rows the sample batch deleted (rolled back)
    sample_seconds: float  # the batch's boundary probe and DELETE (triggers included)
    sample_wal_bytes: int  # WAL of the DELETE itself (not of cascaded deletes)
    sample_wal_records: int
    sample_wal_fpi: int
    sample_buffers_dirtied: int
    sample_buffers_read: int
    projected_seconds: float
    projected_wal_bytes: int
    plan: str  # the DELETE's scan, e.g. "Index Scan using sessions_expiresAt_idx on sessions"
    locks: list[str]  # the relation locks the batch held, e.g. "RowExclusiveLock on sessions"
    foreign_keys: list[ForeignKey]
    trigger_seconds: float  # spent in triggers (foreign keys' included) by the sample
    skip_locked: bool  # a row was held: the sample took the SKIP LOCKED pass, as the engine does
    error: str | None  # the sample failed (e.g. a restricting foreign key): the run would too


@dataclass(frozen=True)
class Estimate:
    batch_size: int
    rules: list[RuleEstimate]
    skipped: list[SkippedRule] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.rules)

    @property
    def seconds(self) -> float:
        return sum(r.projected_seconds for r in self.rules)

    @property
    def wal_bytes(self) -> int:
        return sum(r.projected_wal_bytes for r in self.rules)


def estimate(dsn: str, *, table: str | None = None, batch_size: int = SWEEP_BATCH_SIZE) -> Estimate:
    """Per rule, one sample batch under ``EXPLAIN (ANALYZE, WAL, BUFFERS)`` in a transaction that
    is rolled back, projected over the rule's garbage; nothing is deleted."""
    if batch_size < 1:
        raise UsageError("--batch-size must be a positive integer")
    with db.connect(dsn) as conn:
        counted = garbage(conn, table)
        estimates = []
        for t in counted.tables:
            keys = _foreign_keys(conn, t.table)
            for rule in t.rules:
                estimates.append(_estimate_rule(conn, t.table, rule, batch_size, keys))
    return Estimate(batch_size, estimates, counted.skipped)


def _foreign_keys(conn: psycopg.Connection[Any], table: str) -> list[ForeignKey]:
    rows = conn.execute(
        "SELECT c.conname::text, c.conrelid::regclass::text, c.confdeltype::text,"
        " pg_catalog.pg_get_constraintdef(c.oid)"
        " FROM pg_catalog.pg_constraint c"
        " WHERE c.contype = 'f' AND c.confrelid = %s::regclass ORDER BY 2, 1",
        (table,),
    ).fetchall()
    keys = []
    for name, referencing, kind, definition in rows:
        action, effect = _FK_ACTIONS.get(str(kind), (str(kind), "{t}"))
        keys.append(
            ForeignKey(
                str(name), str(referencing), action, effect.format(t=referencing), str(definition)
            )
        )
    return keys


def _estimate_rule(
    conn: psycopg.Connection[Any],
    table: str,
    rule: RuleCount,
    batch_size: int,
    keys: list[ForeignKey],
) -> RuleEstimate:
    sample: _Sample | None = None
    error: str | None = None
    skip_locked = False
    for skip_locked in (False, True):
        try:
            sample = _sample(conn, table, rule.column, batch_size, skip_locked)
            error = None
            break
        except psycopg.errors.LockNotAvailable as exc:
            error = db.one_line(exc.diag.message_primary or str(exc))
        except psycopg.Error as exc:
            error = db.one_line(exc.diag.message_primary or str(exc))
            break
    batches = -(-rule.rows // batch_size)
    if sample is None:  # it failed: nothing measured, the error says why
        sample = _Sample(0, 0.0, 0, 0, 0, 0, 0, "", [], 0.0)
    scale = rule.rows / sample.rows if sample.rows else 0.0
    return RuleEstimate(
        table=table,
        column=rule.column,
        rows=rule.rows,
        batches=batches,
        sample_rows=sample.rows,
        sample_seconds=sample.seconds,
        sample_wal_bytes=sample.wal_bytes,
        sample_wal_records=sample.wal_records,
        sample_wal_fpi=sample.wal_fpi,
        sample_buffers_dirtied=sample.dirtied,
        sample_buffers_read=sample.read,
        projected_seconds=sample.seconds * scale,
        projected_wal_bytes=round(sample.wal_bytes * scale),
        plan=sample.plan,
        locks=sample.locks,
        foreign_keys=keys,
        trigger_seconds=sample.trigger_seconds,
        skip_locked=skip_locked,
        error=error,
    )


@dataclass(frozen=True)
class _Sample:
    rows: int
    seconds: float
    wal_bytes: int
    wal_records: int
    wal_fpi: int
    dirtied: int
    read: int
    plan: str
    locks: list[str]
    trigger_seconds: float


def _sample(
    conn: psycopg.Connection[Any], table: str, column: str, batch_size: int, skip_locked: bool
) -> _Sample:
    """The first batch of the rule exactly as ``pgsweep.purge_range`` runs it (the boundary
    probe, then the DELETE up to it), under EXPLAIN ANALYZE, in a transaction rolled back."""
    with conn.transaction(force_rollback=True):
        conn.execute(f"SET LOCAL lock_timeout = {ESTIMATE_LOCK_TIMEOUT_MS}")
        conn.execute(f"SET LOCAL statement_timeout = {ESTIMATE_STATEMENT_TIMEOUT_MS}")
        # A deferred foreign key (an ORM's) is checked at COMMIT, which a rolled-back sample
        # never reaches: checked at the end of each statement, the sample fails where the run
        # would. The engine deletes with row security off (pgsweep.execute_delete): so does the
        # sample, so that a policy that would stop the run stops it too.
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        conn.execute("SET LOCAL row_security = off")
        row = conn.execute(
            "SELECT pgsweep.rule_condition(r), pgsweep.batch_boundary_statement("
            "   r.table_name, r.column_name, pgsweep.rule_condition(r), %s)"
            " FROM pgsweep.expiry_rule r"
            " WHERE r.table_name = %s::regclass AND r.column_name = %s",
            (batch_size, table, column),
        ).fetchone()
        if row is None:
            raise UsageError(f"the rule {table}.{column} was removed meanwhile")
        condition, probe = str(row[0]), str(row[1])
        # Both statements are built by the engine from quoted parts (%I, %L, regclass).
        probe_plan = _explain(conn, probe)  # the probe's time; it reads, so it runs again:
        boundary = conn.execute(sql.SQL(probe)).fetchone()
        if boundary is not None and boundary[0] is not None:
            row = conn.execute(
                "SELECT pgsweep.rule_condition(r, NULL, %s) FROM pgsweep.expiry_rule r"
                " WHERE r.table_name = %s::regclass AND r.column_name = %s",
                (boundary[0], table, column),
            ).fetchone()
            assert row is not None
            condition = str(row[0])
        statement = conn.execute(  # with the rule: its archive and dependents, as a batch
            "SELECT pgsweep.purge_statement(r.table_name, %s, %s, r) FROM pgsweep.expiry_rule r"
            " WHERE r.table_name = %s::regclass AND r.column_name = %s",
            (condition, skip_locked, table, column),
        ).fetchone()
        assert statement is not None
        plans = [probe_plan, _explain(conn, str(statement[0]))]
        if _deleted(plans[-1]) == 0 and boundary is not None and boundary[0] is not None:
            # Every row up to the boundary shares its value: purge_range then takes up to a
            # batch of that value by ctid, skipping held rows. So does the sample.
            statement = conn.execute(
                "SELECT pgsweep.archiving_statement(r, pgsweep.skip_locked_statement(r.table_name,"
                "   format('%%s AND %%I = %%L::%%s', pgsweep.rule_condition(r), r.column_name,"
                "          %s::text, pgsweep.column_type(r.table_name, r.column_name)),"
                "   NULL, %s::integer))"
                " FROM pgsweep.expiry_rule r"
                " WHERE r.table_name = %s::regclass AND r.column_name = %s",
                (boundary[0], batch_size, table, column),
            ).fetchone()
            assert statement is not None
            plans.append(_explain(conn, str(statement[0])))
        locks = _locks_held(conn)
    deletes = [p for p in plans[1:] if _deleted(p)] or plans[1:2]
    tops = [p["Plan"] for p in plans[1:]]
    return _Sample(
        rows=sum(_deleted(p) for p in plans[1:]),
        seconds=sum(float(p["Execution Time"]) for p in plans) / 1000,
        wal_bytes=sum(int(t.get("WAL Bytes", 0)) for t in tops),
        wal_records=sum(int(t.get("WAL Records", 0)) for t in tops),
        wal_fpi=sum(int(t.get("WAL FPI", 0)) for t in tops),
        dirtied=sum(int(t.get("Shared Dirtied Blocks", 0)) for t in tops),
        read=sum(int(t.get("Shared Read Blocks", 0)) for t in tops),
        plan=_describe_node(_outer(_delete_node(deletes[0]["Plan"]))),
        locks=locks,
        trigger_seconds=sum(float(t.get("Time", 0)) for p in plans for t in p.get("Triggers", []))
        / 1000,
    )


# PostgreSQL's table lock modes, weakest first.
_LOCK_MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)


def _locks_held(conn: psycopg.Connection[Any]) -> list[str]:
    """The relation locks this transaction holds, the strongest per table, its indexes counted
    with it: ``RowExclusiveLock on sessions (and its 3 indexes)``. The engine's own catalog
    reads (pgsweep's tables, pg_catalog) are left out."""
    rows = conn.execute(
        "SELECT coalesce(i.indrelid, l.relation)::regclass::text, l.mode,"
        " CASE WHEN i.indrelid IS NOT NULL THEN l.relation::oid END"
        " FROM pg_catalog.pg_locks l"
        " JOIN pg_catalog.pg_class c ON c.oid = l.relation"
        " LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = l.relation"
        " WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted"
        "   AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'pgsweep'::regnamespace)"
    ).fetchall()
    strongest: dict[str, int] = {}
    indexes: dict[str, set[int]] = {}
    for table, mode, index in rows:
        if index is not None:
            indexes.setdefault(table, set()).add(int(index))
        else:
            rank = _LOCK_MODES.index(mode) if mode in _LOCK_MODES else 0
            strongest[table] = max(rank, strongest.get(table, 0))
    out = []
    for table in sorted(strongest):
        n = len(indexes.get(table, ()))
        extra = "" if not n else " (and its index)" if n == 1 else f" (and its {n} indexes)"
        out.append(f"{_LOCK_MODES[strongest[table]]} on {table}{extra}")
    return out


def _delete_node(node: dict[str, Any]) -> dict[str, Any]:
    """The DELETE of the rule's table in a plan: the plan itself, or, when the engine made the
    statement whole for the rule (an archive's INSERT, dependents' CTEs), the first DELETE in
    it, which is the rule's own (``gone``)."""
    if node.get("Node Type") == "ModifyTable" and node.get("Operation") == "Delete":
        return node
    for child in node.get("Plans", []):
        found = _delete_node(child)
        if found.get("Operation") == "Delete":
            return found
    return node


def _outer(node: dict[str, Any]) -> dict[str, Any]:
    """The node that feeds a ModifyTable its rows (its outer child)."""
    for child in node.get("Plans", []):
        if child.get("Parent Relationship") == "Outer":
            return dict(child)
    return node


def _deleted(plan: dict[str, Any]) -> int:
    """Rows a DELETE's EXPLAIN ANALYZE fed to the delete (its ModifyTable's outer child)."""
    scan = _outer(_delete_node(plan["Plan"]))
    return int(scan.get("Actual Rows", 0)) * int(scan.get("Actual Loops", 1))


def _explain(conn: psycopg.Connection[Any], statement: str) -> dict[str, Any]:
    query = sql.SQL("EXPLAIN (ANALYZE, WAL, BUFFERS, FORMAT JSON) {}").format(
        sql.SQL(statement)  # engine-built, see _sample
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    document = row[0]
    result: dict[str, Any] = (document if isinstance(document, list) else [document])[0]
    return result


def _describe_node(node: dict[str, Any]) -> str:
    words = str(node.get("Node Type", "?"))
    if node.get("Index Name"):
        words += f" using {node['Index Name']}"
    if node.get("Relation Name"):
        words += f" on {node['Relation Name']}"
    return words
