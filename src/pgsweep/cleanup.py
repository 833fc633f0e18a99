"""``pgsweep cleanup``: delete what every rule marks as garbage, or say exactly what it would.

The cleanup takes every rule of every table (``table`` narrows it to one table), in the order
``pgsweep.garbage_counts()`` counts them, batch by batch with ``pgsweep.purge_range`` (the
function ``CALL pgsweep.sweep()`` runs), each batch its own short transaction. The batches are
driven from here rather than by one ``CALL`` so that every batch can be reported (a progress
display) and the counts come back per rule. ``--dry-run`` asks ``pgsweep.garbage_counts()``:
per rule, the rows it would delete now, each row counted once per table, so the cleanup deletes
what the dry run counts (barring rows written or held meanwhile). A rule that cannot run
(its table or column is gone) is reported and skipped, never an error for the others.

As ``CALL pgsweep.sweep()``: never at the same time as another run of a rule (each rule under
its advisory lock, ``pgsweep.lock_rule``; a rule another run holds for longer than
``pgsweep.lock_wait`` is skipped and reported), paced by the same decision (``pgsweep.pace``:
the batch size follows ``pgsweep.batch_target``, and the work pauses while a budget is exceeded,
each pause reported with its reason), and refused on a standby.

On a table range-partitioned on a rule's column, the partitions entirely past the cutoff leave
first, whole (:mod:`pgsweep.partitions`: ``DETACH ... CONCURRENTLY`` where PostgreSQL allows it),
and their rows count as deleted; the dry run lists them with their rows.

The cleanup is recorded as a run (``invoked_by`` 'cli', docs/observability.md) through the
engine's own API: ``pgsweep.run_begin`` (committed at once), ``pgsweep.run_record`` in the same
statement as each batch (so the counts are exact whatever happens next), ``pgsweep.run_end``
with 'succeeded' or 'failed' and the error. A cleanup killed mid-way shows as 'interrupted'.
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
from pgsweep.errors import UsageError
from pgsweep.partitions import PartitionCount
from pgsweep.runner import SWEEP_BATCH_SIZE, Pause, SkippedRule, require_primary

# A cleanup that would delete more rows than this asks first (pgsweep cleanup: --yes, or y on a
# terminal): a backlog that large is worth a look at what it is before it goes.
CONSENT_ROWS = 100_000


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

    @property
    def total(self) -> int:
        return sum(t.rows for t in self.tables)


@dataclass(frozen=True)
class Progress:
    """One committed batch: the rule, its rows deleted so far, and the whole run's."""

    table: str
    column: str
    rule_deleted: int
    total_deleted: int


def cleanup(
    dsn: str,
    *,
    table: str | None = None,
    batch_size: int = SWEEP_BATCH_SIZE,
    on_batch: Callable[[Progress], None] | None = None,
) -> CleanupResult:
    """Delete the garbage of every rule (of ``table``), one transaction per batch."""
    if batch_size < 1:
        raise UsageError("--batch-size must be a positive integer")
    with db.connect(dsn) as conn:
        require_engine(conn)
        require_primary(conn, dsn)
        rules, skipped = _rules(conn, table)
        run = _Run(conn, _run_begin(conn, table))
        try:
            tables = run.sweep(rules, skipped, batch_size, on_batch)
        except psycopg.Error as exc:
            _run_end(conn, run.run_id, "failed", db.one_line(str(exc)))
            raise
        _run_end(conn, run.run_id, "succeeded", None)
    return CleanupResult(False, _tables(tables), skipped, run.pauses)


def _run_begin(conn: psycopg.Connection[Any], table: str | None) -> int:
    """The run's row in pgsweep.run, committed ('cli'), with the rules that cannot run."""
    row = conn.execute("SELECT pgsweep.run_begin('cli')").fetchone()
    assert row is not None
    run_id = int(row[0])
    conn.execute(
        "SELECT pgsweep.run_record(%s, r.table_name, r.column_name, 0, 0,"
        " p_error => 'skipped: ' || p.problem)"
        " FROM pgsweep.expiry_rule r, LATERAL (SELECT pgsweep.rule_problem(r) AS problem) p"
        " WHERE p.problem IS NOT NULL AND (%s::regclass IS NULL OR r.table_name = %s::regclass)",
        (run_id, table, table),
    )
    return run_id


def _run_end(conn: psycopg.Connection[Any], run_id: int, state: str, error: str | None) -> None:
    if conn.closed or conn.broken:
        return  # the run shows as interrupted once its session is gone
    conn.execute("SELECT pgsweep.run_end(%s, %s, %s)", (run_id, state, error))


class _Run:
    """One cleanup: its start, its rows and WAL so far, and the pauses pgsweep.pace asked for."""

    def __init__(self, conn: psycopg.Connection[Any], run_id: int) -> None:
        self.conn = conn
        self.run_id = run_id
        # As epoch seconds and text: a timestamptz would come back in the session's DateStyle,
        # which need not be one the driver reads.
        row = conn.execute(
            "SELECT extract(epoch FROM clock_timestamp())::float8, pg_current_wal_lsn()::text"
        ).fetchone()
        assert row is not None
        self.started, self.wal_start = float(row[0]), str(row[1])
        self.wal_at = _lsn(self.wal_start)  # where the WAL stood when the next batch began
        self.total = 0
        self.pauses: list[Pause] = []
        self.stopped = False
        # Pauses since the last batch recorded: the next batch's record carries them.
        self.unrecorded_pauses = 0
        self.unrecorded_pause_s = 0.0

    def sweep(
        self,
        rules: list[tuple[str, str]],
        skipped: list[SkippedRule],
        batch_size: int,
        on_batch: Callable[[Progress], None] | None,
    ) -> dict[str, list[RuleCount]]:
        """Every rule under its lock, in order, until done or told to stop."""
        tables: dict[str, list[RuleCount]] = {}
        for rule_table, column in rules:
            holder = self.lock(rule_table, column)
            if holder is not None:
                problem = f"another run is working on it (pid {holder})"
                skipped.append(SkippedRule(rule_table, column, problem))
                self.conn.execute(
                    "SELECT pgsweep.run_record(%s, %s::regclass, %s, 0, 0, p_error => %s)",
                    (self.run_id, rule_table, column, f"skipped: {problem}"),
                )
                continue
            try:
                removal = self.remove_partitions(rule_table, column, on_batch)
                if removal is None:  # the table or column went away meanwhile
                    skipped.append(SkippedRule(rule_table, column, "its table or column is gone"))
                    continue
                deleted = removal.rows + self.rule(
                    rule_table, column, batch_size, on_batch, skipped
                )
            finally:
                self.conn.execute(
                    "SELECT pgsweep.unlock_rule(%s::regclass, %s)", (rule_table, column)
                )
            tables.setdefault(rule_table, []).append(
                RuleCount(column, deleted, removal.removed, removal.left)
            )
            if self.stopped:
                break
        return tables

    def remove_partitions(
        self, table: str, column: str, on_batch: Callable[[Progress], None] | None
    ) -> partitions.Removal | None:
        """The rule's partitions entirely past the cutoff, removed whole and recorded in the
        run (None when the table or column went away since the rules were read)."""
        try:
            removal = partitions.remove_expired(self.conn, table, column)
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
            return None
        if removal.rows:
            self.conn.execute(
                "SELECT pgsweep.run_record(%s, %s::regclass, %s, %s, 0)",
                (self.run_id, table, column, removal.rows),
            )
        self.total += removal.rows
        if removal.removed and on_batch is not None:
            on_batch(Progress(table, column, removal.rows, self.total))
        return removal

    def lock(self, table: str, column: str) -> int | str | None:
        """None once this session holds the rule's lock; else who holds it (its pid)."""
        row = self.conn.execute(
            "SELECT pgsweep.lock_rule(%s::regclass, %s, pgsweep.setting('lock_wait')::interval),"
            " pgsweep.rule_lock_holder(%s::regclass, %s)",
            (table, column, table, column),
        ).fetchone()
        assert row is not None
        return None if row[0] else (row[1] if row[1] is not None else "?")

    def rule(
        self,
        table: str,
        column: str,
        batch_size: int,
        on_batch: Callable[[Progress], None] | None,
        skipped: list[SkippedRule],
    ) -> int:
        """Every batch of one rule, paced; the rows deleted."""
        deleted, size = 0, batch_size
        start: str | None = None
        while True:
            clock = time.monotonic()
            try:
                row = _batch(
                    self.conn,
                    self.run_id,
                    table,
                    column,
                    start,
                    size,
                    (self.unrecorded_pauses, self.unrecorded_pause_s),
                )
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
                # The table or column went away since the rules were read: said, and the
                # other rules go on (the batches done are committed). Any other error (a
                # missing privilege) is the operator's to see, not a rule to skip.
                skipped.append(SkippedRule(table, column, db.one_line(str(exc))))
                return deleted
            if row is None:  # the rule was removed meanwhile
                return deleted
            self.unrecorded_pauses, self.unrecorded_pause_s = 0, 0.0
            deleted += int(row[0])
            self.total += int(row[0])
            batch_wal = _lsn(str(row[3])) - self.wal_at
            if on_batch is not None:
                on_batch(Progress(table, column, deleted, self.total))
            start = row[1]
            if start is None:
                return deleted
            blocked = int(row[2])
            next_size = self._next_size(size, time.monotonic() - clock, blocked)
            # The next batch's WAL, expected from this one's per row (for the replay budget).
            next_wal = batch_wal * next_size // max(int(row[0]), 1)
            size = next_size
            if not self._pace(table, column, blocked, next_wal):
                return deleted

    def _next_size(self, size: int, took_s: float, blocked: int) -> int:
        row = self.conn.execute(
            "SELECT pgsweep.next_batch_size(%s, make_interval(secs => %s), %s)",
            (size, took_s, blocked),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def _pace(self, table: str, column: str, blocked: int, next_wal: int) -> bool:
        """Wait while pgsweep.pace says so; False when the run must stop here."""
        said: str | None = None
        while True:
            row = self.conn.execute(
                "SELECT extract(epoch FROM p.wait)::float8, p.reason, p.stop,"
                " pg_current_wal_lsn()::text"
                " FROM pgsweep.pace(%s::regclass, to_timestamp(%s), %s, %s::pg_lsn, %s, %s) p",
                (table, self.started, self.total, self.wal_start, blocked, next_wal),
            ).fetchone()
            assert row is not None
            wait_s, reason, stop = float(row[0]), row[1], bool(row[2])
            self.wal_at = _lsn(str(row[3]))
            if stop:
                self.pauses.append(Pause(table, column, str(reason), stopped=True))
                self.stopped = True
                return False
            if wait_s <= 0:
                return True
            if reason != said:
                self.pauses.append(Pause(table, column, str(reason)))
                self.unrecorded_pauses += 1
                said = reason
            time.sleep(wait_s)
            self.unrecorded_pause_s += wait_s
            blocked = 0



def _lsn(text: str) -> int:
    """A WAL position ('16/B374D848') as a byte offset."""
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def _batch(
    conn: psycopg.Connection[Any],
    run_id: int,
    table: str,
    column: str,
    start: str | None,
    batch_size: int,
    pauses: tuple[int, float] = (0, 0.0),
) -> tuple[Any, ...] | None:
    """One batch of one rule and its record in the run, with the pauses before it (one
    statement, so one transaction: the connection is in autocommit mode)."""
    # The count of sessions waiting for this batch, and the WAL position, are taken after its
    # DELETE, in its own transaction (one statement: the function scan runs first), before the
    # commit.
    return conn.execute(
        "SELECT b.deleted, b.next_from, pgsweep.sessions_waiting_for_me(),"
        " pg_current_wal_lsn()::text,"
        " pgsweep.run_record(%s, r.table_name, r.column_name, b.deleted, 1, %s,"
        " make_interval(secs => %s), statement_timestamp(),"
        " p_archived => CASE WHEN r.archive_to IS NOT NULL THEN b.deleted ELSE 0 END)"
        " FROM pgsweep.expiry_rule r, pgsweep.purge_range(r, %s, %s) b"
        " WHERE r.table_name = %s::regclass AND r.column_name = %s",
        (run_id, pauses[0], pauses[1], start, batch_size, table, column),
    ).fetchone()


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
