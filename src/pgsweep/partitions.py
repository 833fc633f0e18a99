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
"""

from __future__ import annotations

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
    """Remove every partition of ``table`` past the cutoff of its rule on ``column``.

    ``conn`` must be in autocommit mode; each step is its own transaction."""
    removal = Removal()
    previous = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (LOCK_TIMEOUT,))
    try:
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
            # timed out waiting for a transaction that holds a lock on the table, left
            # half-detached: remove_partition completes it (FINALIZE), which only waits for
            # older snapshots, still without a lock on the table itself.
            if _pending(conn, partition):
                how = "detached concurrently (finalized)"
        else:
            _dispose(conn, removal, partition, archive)
            return True
    last = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with conn.transaction():
                row = conn.execute(
                    "SELECT pgsweep.remove_partition(r, %s::regclass) FROM pgsweep.expiry_rule r"
                    " WHERE r.table_name = %s::regclass AND r.column_name = %s",
                    (partition, table, column),
                ).fetchone()
        except psycopg.errors.LockNotAvailable as exc:
            last = str(exc).splitlines()[0]
            if attempt < ATTEMPTS:
                time.sleep(_PAUSE_S * attempt)
            continue
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


def _pending(conn: psycopg.Connection[Any], partition: str) -> bool:
    row = conn.execute(
        "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = %s::regclass", (partition,)
    ).fetchone()
    return bool(row and row[0])


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


def _dispose(
    conn: psycopg.Connection[Any], removal: Removal, partition: str, archive: str | None
) -> None:
    """Count and drop (or archive) a table DETACH CONCURRENTLY just took out of its parent.
    Nobody writes to it any more; its own lock is still waited for briefly, and retried."""
    name = sql.SQL(partition)
    last = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with conn.transaction():
                conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(name))
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name)).fetchone()
                if archive is None:
                    conn.execute(sql.SQL("DROP TABLE {}").format(name))
                else:
                    conn.execute(
                        sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                            name, sql.Identifier(archive)
                        )
                    )
        except psycopg.errors.LockNotAvailable as exc:
            last = str(exc).splitlines()[0]
            time.sleep(_PAUSE_S * attempt)
            continue
        count = int(row[0]) if row else 0
        removal.removed.append(PartitionCount(partition, count, "detached concurrently"))
        return
    removal.left.append(f"{partition}: detached, but not dropped: {last}")
