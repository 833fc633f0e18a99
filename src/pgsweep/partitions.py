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
drop does. Otherwise it is attached again with the bound and CHECK constraints it had, its rows
untouched.

A concurrent detach is not started while another transaction of the database is older than
``OLD_TRANSACTION`` (its second phase would wait for it and time out, leaving the partition
half-detached: its rows hidden from the table); the batches delete its rows instead. Each
concurrent detach is recorded (``pgsweep.partition_detach``, committed) before it starts and
forgotten in the transaction that drops or attaches the partition, so a run that ends in
between (killed, its connection cut) leaves a record: each run first finishes the recorded
ones (FINALIZE if half-detached, then drop or attach again). A pending detach not recorded
there is another session's (an app migration's), and is left alone.
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
# Another transaction open this long when a concurrent detach would start: its second phase
# would wait for it, time out and leave the partition half-detached; it is not started then.
OLD_TRANSACTION = "1s"
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
HALF_DETACHED = "half-detached"
DETACHED = "detached by a cleanup"
NOT_OURS = (
    f"{HALF_DETACHED} by another session's DETACH CONCURRENTLY (not a cleanup's): left alone;"
    " that session's FINALIZE finishes it"
)


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
    finishing the concurrent detaches an earlier run recorded and did not finish.

    ``conn`` must be in autocommit mode; each step is its own transaction."""
    removal = Removal()
    previous = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (LOCK_TIMEOUT,))
    try:
        repaired = set()
        for recorded in _recorded(conn, table, column):
            repaired.add(recorded.partition)
            _repair(conn, removal, table, column, recorded)
        # PostgreSQL allows one half-detached partition per table: once a concurrent detach is
        # left so, the others of this run take the plain way.
        concurrent_ok = True
        for partition, concurrently, archive in conn.execute(
            _CANDIDATES, (table, column)
        ).fetchall():
            if _pending(conn, str(partition)):
                # Left half-detached by the repair above (said there), or by a detach of
                # another session's, an app migration's: its FINALIZE is not pgsweep's.
                if str(partition) not in repaired:
                    removal.left.append(f"{partition}: {NOT_OURS}")
                concurrent_ok = False
                continue
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


def row_deleted(left: str) -> bool:
    """Whether a partition left for the next run (an entry of ``Removal.left``) is still in
    its table, its rows deleted by the batches that follow; not so one left half-detached."""
    return HALF_DETACHED not in left and DETACHED not in left


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
    if concurrently and not _still_expired(conn, table, column, partition):
        # The rule changed since the candidates were read (a longer keep_for, a condition, an
        # archive): the partition stays; the engine's own path re-checks under its lock.
        removal.left.append(f"{partition}: no longer wholly past the rule's cutoff")
        return True
    shape = _shape(conn, partition)
    if concurrently and not _archive_blocked(conn, partition, archive) and _may_record(conn, table):
        busy = _old_transaction(conn)
        if busy is not None:
            # The detach's second phase would wait for it, time out and leave the partition
            # half-detached (its rows hidden from the table): not now. Nothing is detached;
            # the batches delete its rows, and the next run tries again.
            removal.left.append(f"{partition}: not detached concurrently now: {busy}")
            return True
        # Committed before the detach starts: should this session end before the partition
        # is dropped or attached again, the next run finds it here (_repair).
        _record(conn, table, shape)
        try:
            conn.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(
                    sql.SQL(table), sql.SQL(partition)
                )
            )
        except psycopg.Error as exc:
            if conn.broken:
                raise
            if _pending(conn, partition):
                # Timed out waiting for a transaction that holds a lock on the table (or
                # cancelled there), after the first phase committed: finish it now if the
                # transaction has ended, else the next run does.
                return _finish(conn, removal, table, column, partition, shape, _first(exc))
            # Not detached at all: the plain way below tries, and says why if it cannot.
            _forget(conn, shape)
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
            # The rule changed (or went) since the candidates were read: the partition stays.
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
            return True
        removal.removed.append(PartitionCount(partition, int(row[0]) if row else 0, "detached"))
        return True
    removal.left.append(f"{partition}: {last} (tried {ATTEMPTS} times)")
    return True


def _old_transaction(conn: psycopg.Connection[Any]) -> str | None:
    """Why a concurrent detach would wait now: another transaction of this database open longer
    than ``OLD_TRANSACTION`` (its second phase waits for every transaction holding a lock on
    the table), or a session whose transaction this role cannot see (pg_read_all_stats shows
    it); None when there is none."""
    row = conn.execute(
        "SELECT pid, date_trunc('second', clock_timestamp() - xact_start)::text"
        " FROM pg_stat_activity"
        " WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        "   AND pid <> pg_backend_pid()"
        "   AND (backend_type = 'client backend' AND xact_start"
        "        < clock_timestamp() - %s::interval"
        "        OR query = '<insufficient privilege>')"
        " ORDER BY xact_start NULLS FIRST LIMIT 1",
        (OLD_TRANSACTION,),
    ).fetchone()
    if row is None:
        return None
    if row[1] is None:
        return (
            f"session {row[0]} may have a transaction open that this role cannot see"
            " (grant it pg_read_all_stats)"
        )
    return f"a transaction open for {row[1]} (pid {row[0]}) would make it wait"


def _still_expired(conn: psycopg.Connection[Any], table: str, column: str, partition: str) -> bool:
    """Whether the rule, as it is now, still marks the whole partition as garbage."""
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pgsweep.expiry_rule r, pgsweep.expired_partitions(r) e"
        " WHERE r.table_name = %s::regclass AND r.column_name = %s"
        " AND e.partition = %s::regclass)",
        (table, column, partition),
    ).fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class _Recorded:
    """A concurrent detach recorded by a run (pgsweep.partition_detach) and not finished: the
    partition as it is named now (None: gone), where it is (``pending``: half-detached from its
    table, ``standalone``: detached, ``attached``: the detach never happened or was undone),
    and its shape before the detach."""

    partition: str | None
    state: str
    shape: _Shape


def _may_record(conn: psycopg.Connection[Any], table: str) -> bool:
    """Whether this role may detach the table's partitions (it owns the table) and record its
    concurrent detaches (an engine before 1.4 has no record); if not, the plain way is taken
    (and says why it cannot either)."""
    row = conn.execute(
        "SELECT pg_has_role(c.relowner, 'USAGE') AND CASE"
        "  WHEN to_regclass('pgsweep.partition_detach') IS NULL THEN false"  # before 1.4
        "  ELSE has_table_privilege('pgsweep.partition_detach', 'SELECT, INSERT, DELETE') END"
        " FROM pg_class c WHERE c.oid = %s::regclass",
        (table,),
    ).fetchone()
    return bool(row and row[0])


def _recorded(conn: psycopg.Connection[Any], table: str, column: str) -> list[_Recorded]:
    """The unfinished concurrent detaches of ``table``, when it is partitioned by ``column``:
    only that rule's run detaches its partitions, under the rule's lock (the run of another
    rule of the table, under another lock, leaves them alone). None for a role that may not
    read them: it cannot have made one."""
    readable = conn.execute(
        "SELECT CASE WHEN to_regclass('pgsweep.partition_detach') IS NULL THEN false"
        " ELSE has_table_privilege('pgsweep.partition_detach', 'SELECT, DELETE') END"
    ).fetchone()
    if not (readable and readable[0]):
        return []
    rows = conn.execute(
        "SELECT to_regclass(d.partition)::text, d.partition, d.bound, d.checks,"
        "       CASE WHEN i.inhrelid IS NULL THEN 'standalone'"
        "            WHEN i.inhparent = d.parent AND i.inhdetachpending THEN 'pending'"
        "            ELSE 'attached' END"
        " FROM pgsweep.partition_detach d"
        " LEFT JOIN pg_inherits i ON i.inhrelid = to_regclass(d.partition)"
        " WHERE d.parent = %s::regclass AND EXISTS ("
        "   SELECT FROM pg_partitioned_table p JOIN pg_attribute a"
        "     ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
        "    WHERE p.partrelid = d.parent AND p.partnatts = 1 AND a.attname = %s)"
        " ORDER BY d.started_at",
        (table, column),
    ).fetchall()
    return [
        _Recorded(
            None if now is None else str(now),
            str(state),
            _Shape(str(name), str(bound), frozenset(str(c) for c in checks)),
        )
        for now, name, bound, checks, state in rows
    ]


def _record(conn: psycopg.Connection[Any], table: str, shape: _Shape) -> None:
    conn.execute(
        "INSERT INTO pgsweep.partition_detach (partition, parent, bound, checks)"
        " VALUES (%s, %s::regclass, %s, %s)"
        " ON CONFLICT (partition) DO UPDATE SET parent = excluded.parent,"
        "   bound = excluded.bound, checks = excluded.checks,"
        "   started_at = excluded.started_at, role_name = excluded.role_name",
        (shape.name, table, shape.bound, sorted(shape.checks)),
    )


def _forget(conn: psycopg.Connection[Any], shape: _Shape) -> None:
    """The detach is finished (the partition dropped, moved or attached again): in the
    transaction that finished it, or on its own when the detach never happened."""
    conn.execute("DELETE FROM pgsweep.partition_detach WHERE partition = %s", (shape.name,))


def _pending(conn: psycopg.Connection[Any], partition: str) -> bool:
    row = conn.execute(
        "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = %s::regclass", (partition,)
    ).fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class _Shape:
    """What a partition needs to be attached again as it was: its schema-qualified name when
    it was read, its bound as ATTACH PARTITION takes it (``FOR VALUES FROM (…) TO (…)``,
    rendered in UTC and ISO dates and written back in the same settings), and its CHECK
    constraints before any detach (one a detach adds goes again; PostgreSQL adds none when the
    partition has one equivalent to its bound: that one is the app's, and stays)."""

    name: str
    bound: str
    checks: frozenset[str]


def _shape(conn: psycopg.Connection[Any], partition: str) -> _Shape:
    """The shape of an attached partition, read in a transaction of its own or the caller's."""
    with conn.transaction():
        conn.execute(_BOUND_SETTINGS)
        row = conn.execute(
            "SELECT format('%%I.%%I', n.nspname, c.relname), pg_get_expr(c.relpartbound, c.oid),"
            "       array(SELECT k.conname::text FROM pg_constraint k"
            "              WHERE k.conrelid = c.oid AND k.contype = 'c')"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.oid = %s::regclass",
            (partition,),
        ).fetchone()
    if row is None:
        return _Shape(partition, "", frozenset())
    return _Shape(str(row[0]), str(row[1] or ""), frozenset(str(n) for n in row[2]))


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
    how: str = "detached concurrently",
) -> None:
    """Count and drop (or archive) a table a concurrent detach took out of its parent, if the
    rule as committed now, locked until the drop commits, still marks all of it as garbage
    (into the archive schema the rule names now); else attach it again. Either way the
    detach's record goes in the same transaction. Nobody writes to it any more; its own lock
    is still waited for briefly, and retried. One that cannot go (a lock not granted, the drop
    or the move refused) is attached again too; one neither dropped nor attached stays
    recorded, for the next run."""
    name = sql.SQL(partition)
    last = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with conn.transaction():
                verdict = _marks_expired(conn, table, column, shape.bound)
                if not verdict.expired:
                    _attach(conn, table, partition, shape)
                    _forget(conn, shape)
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
                _forget(conn, shape)
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
        removal.removed.append(PartitionCount(partition, count, how))
        return
    # Not dropped: back where it was rather than a table of its own that the app cannot see.
    try:
        with conn.transaction():
            _attach(conn, table, partition, shape)
            _forget(conn, shape)
    except psycopg.Error:
        if conn.broken:
            raise
        removal.left.append(
            f"{partition}: {DETACHED}, neither dropped nor attached again: {last};"
            " the next run tries again"
            f" (ALTER TABLE {table} ATTACH PARTITION {partition} {shape.bound})"
        )
        return
    removal.left.append(f"{partition}: attached again, not dropped: {last}")


def _finish(
    conn: psycopg.Connection[Any],
    removal: Removal,
    table: str,
    column: str,
    partition: str,
    shape: _Shape,
    why: str,
) -> bool:
    """Complete a half-done detach of pgsweep's own (FINALIZE, which waits for the
    transactions older than the detach), then drop or attach the partition (_dispose); False
    when it is still half-detached after a few tries: said, and recorded for the next run."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("ALTER TABLE {} DETACH PARTITION {} FINALIZE").format(
                        sql.SQL(table), sql.SQL(partition)
                    )
                )
        except psycopg.errors.LockNotAvailable as exc:
            why = _first(exc)
            if attempt < ATTEMPTS:
                time.sleep(_PAUSE_S * attempt)
            continue
        except psycopg.Error as exc:
            if conn.broken:
                raise
            why = _first(exc)
            break
        how = "detached concurrently (finalized)"
        _dispose(conn, removal, table, column, partition, shape, how)
        return True
    removal.left.append(
        f"{partition}: {HALF_DETACHED} (its rows hidden from {table}, inserts into its range"
        f" refused) until a run finishes the detach: {why}"
    )
    return False


def _repair(
    conn: psycopg.Connection[Any],
    removal: Removal,
    table: str,
    column: str,
    recorded: _Recorded,
) -> None:
    """A concurrent detach an earlier run recorded and did not finish (the session ended, or
    a transaction held it up): finish it if half-detached, then, as for one just detached,
    drop it if the rule still marks all of it as garbage, else attach it again with the bound
    and constraints it had. One attached (the detach never happened) or gone is forgotten."""
    partition = recorded.partition
    if partition is None or recorded.state == "attached":
        _forget(conn, recorded.shape)
        return
    if recorded.state == "pending":
        _finish(conn, removal, table, column, partition, recorded.shape, "")
        return
    _dispose(conn, removal, table, column, partition, recorded.shape)


def _first(exc: BaseException) -> str:
    return str(exc).splitlines()[0]
