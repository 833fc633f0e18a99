"""Partition retention against DELETE (issue 11, item 8): the telemetry platform's events, ten
days of them in one table, seven kept.

Two copies of the same rows, in one database: ``events_daily``, range-partitioned by day on
``seen_at`` (no DEFAULT partition, so ``DETACH ... CONCURRENTLY`` applies), under a pgsweep rule
and cleaned by ``pgsweep cleanup`` (:func:`pgsweep.cleanup.cleanup`: whole partitions past the
cutoff detached and dropped, the straddling day row-deleted in batches); and ``events_plain``,
one table, cleaned the way the platform does today: one ``DELETE ... WHERE seen_at < now() -
interval '7 days'``. Each side is measured once (the work is destructive, and rebuilding ten
million rows costs minutes): its time, the WAL it wrote (``pg_current_wal_lsn()`` before and
after), the table's size right after (indexes included), and what an app inserting into the
current day meanwhile saw: its slowest insert and how often a sample of ``pg_locks`` found it
waiting for a lock.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from bench.report import Figure, ScenarioResult
from bench.server import BenchServer, connect
from pgsweep import cleanup, engine
from pgsweep import partitions as pgsweep_partitions

Conn = psycopg.Connection[tuple[Any, ...]]
DAYS, KEEP_DAYS = 10, 7
# The platform's retention, as its DELETE and pgsweep's rule both say it.
KEEP_FOR = f"{KEEP_DAYS} days"
DATABASE = "bench_partitions"


COLUMNS = (
    "id bigint NOT NULL, device_id int NOT NULL, metric text NOT NULL,"
    " value double precision, seen_at timestamptz NOT NULL"
)


def _fill(conn: Conn, table: str, rows: int, anchor: str) -> None:
    """``rows`` events spread evenly over the DAYS days before ``anchor`` (the newest a second
    before it): both tables get the same values, however long the first one took."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {} SELECT g, mod(g, 5000), 'latency_ms', random() * 100,"
            " {}::timestamptz - interval '1 second'"
            " - (g * {}::double precision) * interval '1 second'"
            " FROM generate_series(0, {} - 1) g"
        ).format(
            sql.Identifier(table),
            sql.Literal(anchor),
            sql.Literal(DAYS * 86400.0 / rows),
            sql.Literal(rows),
        )
    )


PARTITIONED = ("events_daily", "events_daily_sweep")


def build(conn: Conn, rows: int) -> None:
    """The three tables, same rows, indexed on seen_at, vacuumed and analyzed."""
    conn.execute("DROP TABLE IF EXISTS events_plain, " + ", ".join(PARTITIONED))
    conn.execute(sql.SQL(f"CREATE TABLE events_plain ({COLUMNS})"))
    for parent in PARTITIONED:
        conn.execute(
            sql.SQL(f"CREATE TABLE {{}} ({COLUMNS}) PARTITION BY RANGE (seen_at)").format(
                sql.Identifier(parent)
            )
        )
        conn.execute(
            sql.SQL(
                "DO $$ DECLARE d date; BEGIN"
                "  FOR d IN SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 11,"
                "                        (now() AT TIME ZONE 'UTC')::date + 2, '1 day')::date"
                "  LOOP EXECUTE format('CREATE TABLE %I PARTITION OF %I"
                "    FOR VALUES FROM (%L) TO (%L)', {parent} || '_' || to_char(d, 'YYYYMMDD'),"
                "    {parent}, d::timestamp AT TIME ZONE 'UTC',"
                "    (d + 1)::timestamp AT TIME ZONE 'UTC');"
                "  END LOOP; END $$"
            ).format(parent=sql.Literal(parent))
        )
    row = conn.execute("SELECT now()::text").fetchone()
    assert row is not None
    for table in ("events_plain", *PARTITIONED):
        _fill(conn, table, rows, str(row[0]))
        conn.execute(sql.SQL("CREATE INDEX ON {} (seen_at)").format(sql.Identifier(table)))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))


@dataclass
class Writer:
    """The app, inserting into the current day one row per transaction; a monitor samples
    pg_locks every 5 ms for a lock the writer waits for."""

    dsn: str
    table: str
    latencies_ms: list[float] = field(default_factory=list)
    lock_wait_samples: int = 0
    errors: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pid = 0

    def start(self) -> None:
        ready = threading.Event()
        self._threads = [
            threading.Thread(target=self._write, args=(ready,)),
            threading.Thread(target=self._watch, args=(ready,)),
        ]
        for thread in self._threads:
            thread.start()
        ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _write(self, ready: threading.Event) -> None:
        with connect(self.dsn) as conn:
            conn.execute("SET lock_timeout = '5s'")  # the migration lock policy
            self._pid = conn.info.backend_pid
            ready.set()
            insert = sql.SQL("INSERT INTO {} VALUES (-1, 1, 'latency_ms', 1, now())").format(
                sql.Identifier(self.table)
            )
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    conn.execute(insert)
                except psycopg.errors.LockNotAvailable:
                    self.errors += 1
                self.latencies_ms.append((time.perf_counter() - start) * 1000.0)
                time.sleep(0.002)

    def _watch(self, ready: threading.Event) -> None:
        ready.wait(10)
        with connect(self.dsn) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (self._pid,)
                ).fetchone()
                self.lock_wait_samples += int(row[0]) if row else 0
                time.sleep(0.005)


def _size(conn: Conn, table: str) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(t.relid)), pg_total_relation_size(%s))"
        " FROM pg_partition_tree(%s::regclass) t",
        (table, table),
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _lsn(conn: Conn) -> str:
    row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


@dataclass(frozen=True)
class Side:
    ms: float
    wal_bytes: int
    size_before: int
    size_after: int
    deleted: int
    writer_max_ms: float
    writer_inserts: int
    lock_wait_samples: int
    writer_errors: int
    partitions_removed: int = 0


def _measure(dsn: str, table: str, work: Any) -> Side:
    with connect(dsn) as conn:
        conn.execute("CHECKPOINT")
        size_before = _size(conn, table)
        writer = Writer(dsn, table)
        writer.start()
        before = _lsn(conn)
        start = time.perf_counter()
        deleted, removed = work()
        ms = (time.perf_counter() - start) * 1000.0
        wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (before,))
        wal_row = wal.fetchone()
        writer.stop()
        return Side(
            ms,
            int(wal_row[0]) if wal_row else 0,
            size_before,
            _size(conn, table),
            deleted,
            max(writer.latencies_ms, default=0.0),
            len(writer.latencies_ms),
            writer.lock_wait_samples,
            writer.errors,
            removed,
        )


def _full_page_writes(server: BenchServer, on: bool) -> None:
    """The benchmark's own cluster runs without full-page writes; WAL is what this scenario
    measures, and a production server writes them (a page's first change after a checkpoint
    logs the whole page), so it turns them on for its runs. A server given by DSN is left as
    it is (its setting is in the report's facts)."""
    if not server.description.startswith("throwaway"):
        return
    with connect(server.admin_dsn) as conn:
        conn.execute(
            sql.SQL("ALTER SYSTEM SET full_page_writes = {}").format(
                sql.Literal("on" if on else "off")
            )
        )
        conn.execute("SELECT pg_reload_conf()")


def partition_retention(server: BenchServer, rows: int) -> ScenarioResult:
    server.create_database(DATABASE)
    dsn = server.dsn(DATABASE)
    _full_page_writes(server, True)
    try:
        engine.install(dsn)
        with connect(dsn) as conn:
            build(conn, rows)
            for parent in PARTITIONED:
                conn.execute("SELECT pgsweep.add_rule(%s, 'seen_at', %s)", (parent, KEEP_FOR))
            row = conn.execute(
                "SELECT count(*) FROM events_plain WHERE seen_at < now() - %s::interval",
                (KEEP_FOR,),
            ).fetchone()
            expected = int(row[0]) if row else 0

        step: dict[str, float] = {}

        def pgsweep_side() -> tuple[int, int]:
            # pgsweep cleanup's two steps, the first one also measured on its own: the whole
            # partitions, then the rows of the day that straddles the cutoff.
            with connect(dsn) as conn:
                before, start = _lsn(conn), time.perf_counter()
                whole = pgsweep_partitions.remove_expired(conn, "events_daily", "seen_at")
                step["ms"] = (time.perf_counter() - start) * 1000.0
                wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (before,))
                wal_row = wal.fetchone()
                step["wal_bytes"] = float(wal_row[0]) if wal_row else 0.0
                step["rows"] = float(whole.rows)
            result = cleanup.cleanup(dsn, table="events_daily")
            (rule,) = result.tables[0].rules
            return whole.rows + rule.rows, len(whole.removed) + len(rule.partitions)

        def plain_side() -> tuple[int, int]:
            with connect(dsn) as conn:
                done = conn.execute(
                    "DELETE FROM events_plain WHERE seen_at < now() - %s::interval", (KEEP_FOR,)
                )
                return done.rowcount, 0

        def procedure_side() -> tuple[int, int]:
            # What the pg_cron job runs: plain DETACH/DROP (100 ms lock waits), then the rows.
            with connect(dsn) as conn:
                seen: list[str] = []
                conn.add_notice_handler(lambda d: seen.append(str(d.message_primary)))
                row = conn.execute(
                    "CALL pgsweep.sweep('events_daily_sweep'::regclass, 5000, '0', NULL)"
                ).fetchone()
            whole = [m for m in seen if "partitions removed whole" in m]
            count = int(whole[0].split(" in ")[1].split()[0]) if whole else 0
            return (int(row[0]) if row else 0), count

        pg = _measure(dsn, "events_daily", pgsweep_side)
        proc = _measure(dsn, "events_daily_sweep", procedure_side)
        plain = _measure(dsn, "events_plain", plain_side)
        full_page_writes = server.settings(["full_page_writes"])["full_page_writes"]
    finally:
        server.drop_database(DATABASE)
        _full_page_writes(server, False)
    name = "partitions"
    result = ScenarioResult(name)
    base = "DELETE"
    result.figures += [
        Figure(
            name,
            f"time, {rows:,} rows",
            pg.ms,
            plain.ms,
            "ms",
            ratio=plain.ms / pg.ms if pg.ms else None,
            ratio_label="x faster",
            baseline_name=base,
        ),
        Figure(
            name,
            f"  of which {pg.partitions_removed} whole partitions ({int(step['rows']):,} rows)",
            step["ms"],
            None,
            "ms",
        ),
        Figure(
            name,
            "WAL written",
            pg.wal_bytes / 1e6,
            plain.wal_bytes / 1e6,
            "MB",
            ratio=plain.wal_bytes / pg.wal_bytes if pg.wal_bytes else None,
            ratio_label="x less",
            baseline_name=base,
        ),
        Figure(name, "  of which whole partitions", step["wal_bytes"] / 1e6, None, "MB"),
        Figure(
            name,
            "table size after",
            pg.size_after / 1e6,
            plain.size_after / 1e6,
            "MB",
            baseline_name=base,
        ),
        Figure(
            name,
            "writer: slowest insert",
            pg.writer_max_ms,
            plain.writer_max_ms,
            "ms",
            baseline_name=base,
        ),
        Figure(
            name,
            "writer: lock-wait samples",
            pg.lock_wait_samples,
            plain.lock_wait_samples,
            "",
            baseline_name=base,
        ),
    ]
    # The procedure (the pg_cron job's path): plain DETACH/DROP, each lock waited for at most
    # 100 ms, the writer may queue behind it that long.
    for measure, ours, theirs, unit in (
        ("time", proc.ms, plain.ms, "ms"),
        ("WAL written", proc.wal_bytes / 1e6, plain.wal_bytes / 1e6, "MB"),
        ("writer: slowest insert", proc.writer_max_ms, plain.writer_max_ms, "ms"),
        ("writer: lock-wait samples", proc.lock_wait_samples, plain.lock_wait_samples, ""),
    ):
        result.figures.append(
            Figure(name, f"CALL sweep(): {measure}", ours, theirs, unit, baseline_name=base)
        )
    result.facts = {
        "rows": rows,
        "full_page_writes": full_page_writes,
        "expected_deleted": expected,
        "pgsweep": dataclasses.asdict(pg),
        "pgsweep_whole_partitions": step,
        "procedure": dataclasses.asdict(proc),
        "plain": dataclasses.asdict(plain),
    }
    return result
