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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgsweep import db
from pgsweep.deploy import require_engine
from pgsweep.errors import UsageError
from pgsweep.runner import SWEEP_BATCH_SIZE, Pause, SkippedRule, require_primary

# A cleanup that would delete more rows than this asks first (pgsweep cleanup: --yes, or y on a
# terminal): a backlog that large is worth a look at what it is before it goes.
CONSENT_ROWS = 100_000


@dataclass(frozen=True)
class RuleCount:
    column: str
    rows: int


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
        run = _Run(conn)
        tables: dict[str, list[RuleCount]] = {}
        for rule_table, column in rules:
            holder = run.lock(rule_table, column)
            if holder is not None:
                problem = f"another run is working on it (pid {holder})"
                skipped.append(SkippedRule(rule_table, column, problem))
                continue
            try:
                deleted = run.rule(rule_table, column, batch_size, on_batch, skipped)
            finally:
                conn.execute("SELECT pgsweep.unlock_rule(%s::regclass, %s)", (rule_table, column))
            tables.setdefault(rule_table, []).append(RuleCount(column, deleted))
            if run.stopped:
                break
    return CleanupResult(False, _tables(tables), skipped, run.pauses)


class _Run:
    """One cleanup: its start, its rows and WAL so far, and the pauses pgsweep.pace asked for."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        # As epoch seconds and text: a timestamptz would come back in the session's DateStyle.
        row = conn.execute(
            "SELECT extract(epoch FROM clock_timestamp())::float8, pg_current_wal_lsn()::text"
        ).fetchone()
        assert row is not None
        self.started, self.wal_start = float(row[0]), str(row[1])
        self.wal_at = _lsn(self.wal_start)  # where the WAL stood when the next batch began
        self.total = 0
        self.pauses: list[Pause] = []
        self.stopped = False

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
                row = _batch(self.conn, table, column, start, size)
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
                # The table or column went away since the rules were read: said, and the
                # other rules go on (the batches done are committed). Any other error (a
                # missing privilege) is the operator's to see, not a rule to skip.
                skipped.append(SkippedRule(table, column, db.one_line(str(exc))))
                return deleted
            if row is None:  # the rule was removed meanwhile
                return deleted
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
                said = reason
            time.sleep(wait_s)
            blocked = 0


def _lsn(text: str) -> int:
    """A WAL position ('16/B374D848') as a byte offset."""
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def _batch(
    conn: psycopg.Connection[Any], table: str, column: str, start: str | None, batch_size: int
) -> tuple[Any, ...] | None:
    """One batch of one rule (its own transaction: the connection is in autocommit mode)."""
    # The count of sessions waiting for this batch, and the WAL position, are taken after its
    # DELETE, in its own transaction (one statement: the function scan runs first), before the
    # commit.
    return conn.execute(
        "SELECT b.deleted, b.next_from, pgsweep.sessions_waiting_for_me(),"
        " pg_current_wal_lsn()::text"
        " FROM pgsweep.expiry_rule r, pgsweep.purge_range(r, %s, %s) b"
        " WHERE r.table_name = %s::regclass AND r.column_name = %s",
        (start, batch_size, table, column),
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
        tables.setdefault(str(rule_table), []).append(RuleCount(str(column), int(count)))
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
