"""Partition retention: whole partitions past a rule's cutoff leave their table before any row
is deleted (docs/partitions.md).

The engine decides which partitions go (``pgsweep.expired_partitions``: range-partitioned on the
rule's column alone, upper bound at or before the cutoff, never the DEFAULT partition) and how
(``pgsweep.remove_partition``: count, plain DETACH or DROP, or a move into the rule's archive
schema). This module adds what a function cannot do: ``DETACH PARTITION ... CONCURRENTLY``, which
PostgreSQL runs only outside any transaction block and function, and which never makes a writer
wait (it takes SHARE UPDATE EXCLUSIVE on the parent, then waits for older transactions). It is
possible unless the table has a DEFAULT partition; otherwise the engine's plain DETACH is used,
each lock waited for at most ``LOCK_TIMEOUT`` and retried a few times here, holding nothing
between tries. A partition left behind is row-deleted by the batches that follow, and the next
run tries again: nothing past the cutoff survives either way.

The rule may change while a concurrent detach waits (another session lengthens keep_for, adds a
condition, removes the rule): nothing holds it off then, so that neither the change nor the app
waits behind the transactions the detach waits for. The decision is taken again afterwards, in
the transaction that would drop the partition, with the rule's row locked there
(``pgsweep.locked_rule``) until that transaction ends: the partition is dropped only if the rule
as committed then still marks all of it as garbage, and no change of the rule commits before the
drop does. Otherwise it is put back (``FINALIZE`` if half-detached, then ``ATTACH PARTITION`` with
the bounds it had), its rows untouched. Each run first repairs a partition an earlier detach left
half-detached (an interrupted run): put back unless the rule still marks it as garbage, in which
case the removal is finished.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

# The longest any lock this module asks for is waited for: an app writing into the table
# waits behind it at most this long (the migration lock policy allows 5 s).
LOCK_TIMEOUT = "100ms"
ATTEMPTS = 3
_PAUSE_S = 0.2
# Bounds are read and written back in these settings, so that they read back exactly.
_BOUND_SETTINGS = "SET LOCAL datestyle = 'ISO, YMD'; SET LOCAL timezone = 'UTC'"
_RANGE = re.compile(r"^FOR VALUES FROM \((.*)\) TO \((.*)\)$", re.DOTALL)


@dataclass(frozen=True)
class PartitionCount:
    """A partition past the cutoff: its rows, and (once run) how it left its table."""

    partition: str
    rows: int
    how: str  # "detached concurrently" (… "(finalized)"), "detached", "would go" (dry run)


@dataclass
class Removal:
    removed: list[PartitionCount] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # "partition: why", for the next run

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.removed)


_CANDIDATES = (
    "SELECT e.partition::text, e.detach_concurrently, r.partition_archive_schema::text"
    " FROM pgsweep.expiry_rule r, pgsweep.expired_partitions(r) e"
    " WHERE r.table_name = %s::regclass AND r.column_name = %s"
)
PUT_BACK = "put back whole: the rule no longer marks all of it as garbage"


def expired(
    conn: psycopg.Connection[Any], table: str, column: str, *, count: bool = True
) -> list[PartitionCount]:
    """The partitions a cleanup would remove now, with their rows (0 unless ``count``; nothing
    is changed). Only a partitioned table asks the engine (a monitoring role needs no more
    grants for others)."""
    kind = conn.execute("SELECT relkind::text FROM pg_class WHERE oid = %s::regclass", (table,))
    if kind.fetchone() != ("p",):
        return []
    found = []
    for partition, _, _ in conn.execute(_CANDIDATES, (table, column)).fetchall():
        rows = 0
        if count:
            counted = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(partition)))
            row = counted.fetchone()
            rows = int(row[0]) if row else 0
        found.append(PartitionCount(str(partition), rows, "would go"))
    return found


def remove_expired(conn: psycopg.Connection[Any], table: str, column: str) -> Removal:
    """Remove every partition of ``table`` past the cutoff of its rule on ``column``, after
    repairing one an earlier run left half-detached.

    ``conn`` must be in autocommit mode; each step is its own transaction."""
    removal = Removal()
    previous = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (LOCK_TIMEOUT,))
    try:
        for partition in _half_detached(conn, table):
            _repair(conn, removal, table, column, partition)
        # PostgreSQL allows one half-detached partition per table: once a concurrent detach is
        # left so, the others of this run take the plain way.
        concurrent_ok = True
        for partition, concurrently, archive in conn.execute(
            _CANDIDATES, (table, column)
        ).fetchall():
            concurrent_ok &= _remove_one(
                conn,
                removal,
                table,
                column,
                str(partition),
                concurrently and concurrent_ok,
                archive,
            )
    finally:
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false)", (previous[0] if previous else "0",)
        )
    return removal


def _remove_one(
    conn: psycopg.Connection[Any],
    removal: Removal,
    table: str,
    column: str,
    partition: str,
    concurrently: bool,
    archive: str | None,
) -> bool:
    """Remove one partition; False when it was left half-detached by a concurrent detach."""
    how = "detached"
    if concurrently and not _still_expired(conn, table, column, partition):
        # The rule changed since the candidates were read (a longer keep_for, a condition, an
        # archive): the partition stays; the engine's own path re-checks under its lock.
        removal.left.append(f"{partition}: no longer wholly past the rule's cutoff")
        return True
    shape = _shape(conn, partition)
    if concurrently and not _archive_blocked(conn, partition, archive):
        try:
            conn.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(
                    sql.SQL(table), sql.SQL(partition)
                )
            )
        except psycopg.Error:
            if conn.broken:
                raise
            # Not detached (the plain way below tries, and says why if it cannot either), or,
            # timed out waiting for a transaction that holds a lock on the table (or cancelled
            # there), left half-detached: remove_partition completes it (FINALIZE), which only
            # waits for older snapshots, still without a lock on the table itself.
            if _pending(conn, partition):
                how = "detached concurrently (finalized)"
        else:
            _dispose(conn, removal, table, column, partition, shape)
            return True
    last = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with conn.transaction():
                # The rule as committed now, its row locked until the partition is gone.
                row = conn.execute(
                    "SELECT pgsweep.remove_partition(pgsweep.locked_rule(%s::regclass, %s),"
                    " %s::regclass)",
                    (table, column, partition),
                ).fetchone()
        except psycopg.errors.LockNotAvailable as exc:
            last = str(exc).splitlines()[0]
            if attempt < ATTEMPTS:
                time.sleep(_PAUSE_S * attempt)
            continue
        except psycopg.errors.InvalidParameterValue:
            # The rule changed (or went) since the candidates were read: the partition stays,
            # and one a detach left half-detached goes back whole.
            if _pending(conn, partition):
                return _put_back(conn, removal, table, partition, shape)
            removal.left.append(f"{partition}: no longer wholly past the rule's cutoff")
            return True
        except (
            psycopg.errors.InsufficientPrivilege,
            psycopg.errors.DependentObjectsStillExist,
            psycopg.errors.ForeignKeyViolation,
            psycopg.errors.DuplicateTable,
            psycopg.errors.InvalidSchemaName,
        ) as exc:
            removal.left.append(f"{partition}: {str(exc).splitlines()[0]}")
            return how == "detached"
        removal.removed.append(PartitionCount(partition, int(row[0]) if row else 0, how))
        return True
    removal.left.append(f"{partition}: {last} (tried {ATTEMPTS} times)")
    return how == "detached"


def _still_expired(conn: psycopg.Connection[Any], table: str, column: str, partition: str) -> bool:
    """Whether the rule, as it is now, still marks the whole partition as garbage."""
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pgsweep.expiry_rule r, pgsweep.expired_partitions(r) e"
        " WHERE r.table_name = %s::regclass AND r.column_name = %s"
        " AND e.partition = %s::regclass)",
        (table, column, partition),
    ).fetchone()
    return bool(row and row[0])


def _half_detached(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits"
        " WHERE inhparent = %s::regclass AND inhdetachpending ORDER BY 1",
        (table,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _pending(conn: psycopg.Connection[Any], partition: str) -> bool:
    row = conn.execute(
        "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = %s::regclass", (partition,)
    ).fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class _Shape:
    """What a partition needs to be attached again as it was: its bound as ATTACH PARTITION
    takes it (``FOR VALUES FROM (…) TO (…)``, rendered in UTC and ISO dates and written back in
    the same settings), and its CHECK constraints (a detach adds one: it goes again)."""

    bound: str
    checks: frozenset[str]


def _shape(conn: psycopg.Connection[Any], partition: str) -> _Shape:
    """The partition's shape, read in a transaction of its own or the caller's."""
    with conn.transaction():
        conn.execute(_BOUND_SETTINGS)
        row = conn.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid),"
            "       array(SELECT k.conname::text FROM pg_constraint k"
            "              WHERE k.conrelid = c.oid AND k.contype = 'c'"
            # A half-detached partition has the detach's already: the partition constraint.
            "                AND NOT (i.inhdetachpending AND pg_get_expr(k.conbin, k.conrelid)"
            "                         = pg_get_partition_constraintdef(c.oid)))"
            " FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid"
            " WHERE c.oid = %s::regclass",
            (partition,),
        ).fetchone()
    if row is None:
        return _Shape("", frozenset())
    return _Shape(str(row[0] or ""), frozenset(str(n) for n in row[1]))


@dataclass(frozen=True)
class _Verdict:
    """What the rule, as committed now, says of a detached partition: whether all of it is
    garbage, and where it goes then (the rule's partition_archive_schema; None: dropped)."""

    expired: bool
    archive: str | None = None


def _marks_expired(conn: psycopg.Connection[Any], table: str, column: str, bound: str) -> _Verdict:
    """Whether the rule, read and locked in this transaction (``pgsweep.locked_rule``, until it
    ends), marks every value of ``bound`` as garbage: the test of ``expired_partitions``, for a
    partition no longer attached (an age rule alone; the upper bound at or before the cutoff;
    for epoch numbers, nothing below the year 2000 floor)."""
    no = _Verdict(False)
    found = _RANGE.match(bound)
    if found is None:
        return no
    lower, upper = found.group(1), found.group(2)
    if upper in ("MAXVALUE", "MINVALUE"):
        return no
    row = conn.execute(
        "SELECT pgsweep.cutoff_literal(r), pgsweep.column_type(r.table_name, r.column_name)::text,"
        "       pgsweep.epoch_scale(r), r.partition_archive_schema::text"
        " FROM pgsweep.locked_rule(%s::regclass, %s) r"
        " WHERE r.table_name IS NOT NULL AND r.kind = 'age' AND r.condition IS NULL"
        "   AND r.archive_to IS NULL",
        (table, column),
    ).fetchone()
    if row is None:  # removed, or no longer a rule of the column's age alone
        return no
    cutoff, type_, scale, archive = str(row[0]), str(row[1]), row[2], row[3]
    if scale is not None:
        if lower in ("MINVALUE", "MAXVALUE"):
            return no
        floor = conn.execute(
            "SELECT btrim(%s, '''')::numeric >= 946684800::numeric * %s", (lower, scale)
        ).fetchone()
        if not (floor and floor[0]):
            return no
    # The bound is a constant as the server deparsed it, the cutoff a literal built by the
    # engine's cutoff_literal, the type a regtype's output.
    check = conn.execute(
        sql.SQL("SELECT ({})::{} <= {}").format(sql.SQL(upper), sql.SQL(type_), sql.SQL(cutoff))
    ).fetchone()
    return _Verdict(bool(check and check[0]), archive)


def _archive_blocked(conn: psycopg.Connection[Any], partition: str, archive: str | None) -> bool:
    """Whether moving the partition into the archive schema would fail (the schema is gone, or
    has a table of its name): then it is not detached here, and remove_partition says why."""
    if archive is None:
        return False
    row = conn.execute(
        "SELECT to_regnamespace(quote_ident(%s)) IS NULL"
        " OR to_regclass(format('%%I.%%I', %s::text, c.relname)) IS NOT NULL"
        " FROM pg_class c WHERE c.oid = %s::regclass",
        (archive, archive, partition),
    ).fetchone()
    return bool(row and row[0])


def _attach(conn: psycopg.Connection[Any], table: str, partition: str, shape: _Shape) -> None:
    """Attach a detached partition again as it was (in a transaction): with the bound it had,
    without the CHECK constraint its detach added (it spared the attach a scan)."""
    conn.execute(_BOUND_SETTINGS)
    # The bound is pg_get_expr's output for this partition (see _shape).
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
            sql.SQL(table), sql.SQL(partition), sql.SQL(shape.bound)
        )
    )
    added = conn.execute(
        "SELECT conname::text FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'",
        (partition,),
    ).fetchall()
    for (name,) in added:
        if name not in shape.checks:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.SQL(partition), sql.Identifier(name)
                )
            )


def _dispose(
    conn: psycopg.Connection[Any],
    removal: Removal,
    table: str,
    column: str,
    partition: str,
    shape: _Shape,
) -> None:
    """Count and drop (or archive) a table DETACH CONCURRENTLY just took out of its parent, if
    the rule as committed now, locked until the drop commits, still marks all of it as garbage
    (into the archive schema the rule names now); else attach it again. Nobody writes to it any
    more; its own lock is still waited for briefly, and retried. One that cannot go (a lock not
    granted, the drop or the move refused) is attached again too."""
    name = sql.SQL(partition)
    last = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with conn.transaction():
                verdict = _marks_expired(conn, table, column, shape.bound)
                if not verdict.expired:
                    _attach(conn, table, partition, shape)
                    removal.left.append(f"{partition}: {PUT_BACK}")
                    return
                conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(name))
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name)).fetchone()
                if verdict.archive is None:
                    conn.execute(sql.SQL("DROP TABLE {}").format(name))
                else:
                    conn.execute(
                        sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                            name, sql.Identifier(verdict.archive)
                        )
                    )
        except psycopg.errors.LockNotAvailable as exc:
            last = _first(exc)
            time.sleep(_PAUSE_S * attempt)
            continue
        except psycopg.Error as exc:
            if conn.broken:
                raise
            last = _first(exc)
            break
        count = int(row[0]) if row else 0
        removal.removed.append(PartitionCount(partition, count, "detached concurrently"))
        return
    # Not dropped: back where it was rather than a table of its own that the app cannot see.
    try:
        with conn.transaction():
            _attach(conn, table, partition, shape)
    except psycopg.Error:
        if conn.broken:
            raise
        removal.left.append(
            f"{partition}: detached, neither dropped nor attached again: {last}"
            f" (ALTER TABLE {table} ATTACH PARTITION {partition} {shape.bound})"
        )
        return
    removal.left.append(f"{partition}: attached again, not dropped: {last}")


def _put_back(
    conn: psycopg.Connection[Any], removal: Removal, table: str, partition: str, shape: _Shape
) -> bool:
    """Complete a half-done detach and attach the partition again, in one transaction; False
    when it is still half-detached (FINALIZE waits for snapshots older than the detach)."""
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {} FINALIZE").format(
                    sql.SQL(table), sql.SQL(partition)
                )
            )
            _attach(conn, table, partition, shape)
    except psycopg.Error as exc:  # FINALIZE's wait timed out, or the attach was refused
        if conn.broken:
            raise
        removal.left.append(f"{partition}: half-detached, not put back yet: {_first(exc)}")
        return False
    removal.left.append(f"{partition}: {PUT_BACK}")
    return True


def _repair(
    conn: psycopg.Connection[Any], removal: Removal, table: str, column: str, partition: str
) -> None:
    """A partition an earlier detach left half-detached: put back whole unless the rule still
    marks it as garbage (then the removal that follows finishes it: it is the first candidate)."""
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT EXISTS (SELECT FROM pgsweep.expired_partitions("
                "                   pgsweep.locked_rule(%s::regclass, %s)) e"
                "                WHERE e.partition = %s::regclass)",
                (table, column, partition),
            ).fetchone()
            if row is None or row[0]:
                return
            shape = _shape(conn, partition)
            conn.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {} FINALIZE").format(
                    sql.SQL(table), sql.SQL(partition)
                )
            )
            _attach(conn, table, partition, shape)
    except psycopg.Error as exc:  # FINALIZE's wait timed out, or the attach was refused
        if conn.broken:
            raise
        removal.left.append(f"{partition}: half-detached, not put back yet: {_first(exc)}")
        return
    removal.left.append(f"{partition}: {PUT_BACK} (half-detached by an interrupted detach)")


def _first(exc: BaseException) -> str:
    return str(exc).splitlines()[0]
