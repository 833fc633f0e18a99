"""Partition retention (issue 11, item 4) on tables shaped like the telemetry platform's: daily
range partitions with quoted mixed-case names in a non-public schema, keyed by timestamptz,
timestamp (UTC), date or bigint epoch seconds, with or without a DEFAULT partition, plain or
managed by pg_partman 4.7.

Every table has the same layout around the cutoff C (noon UTC, so no row sits near a day's
edge): daily partitions P0 … P5 bounded at C-84h, -60h, -36h, -12h, +12h, +36h, +60h (midnights)
and a DEFAULT partition. P0-P2 end before C: they go whole. P3 straddles C: only its rows before
C are row-deleted (for a date column none: its values are whole days, and C's day is kept).
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from pgsweep import cleanup, engine, partitions, runner, verify
from tests.cli import pgsweep
from tests.engine_downgrade import downgrade_to, run_downgrade
from tests.pg import connect
from tests.roles import grant, temporary_roles

SCHEMA = '"Telemetry"'
BOUNDS_H = (-84, -60, -36, -12, 12, 36, 60)  # P0 = [-84, -60) … P5 = [36, 60)
# (label, hours from C or None for NULL); where each row lands follows from BOUNDS_H.
ROWS = (
    ("p0 a", -80.0),
    ("p0 b", -70.0),
    ("p0 c", -65.0),
    ("p1 a", -50.0),
    ("p1 b", -40.0),
    ("p2 a", -30.0),
    ("p2 b", -25.0),
    ("p2 c", -20.0),
    ("p2 d", -15.0),
    ("p3 six hours ago", -6.0),
    ("p3 expired a minute ago", -1 / 60),
    ("p3 expiring in a minute", 1 / 60),
    ("p3 in six hours", 6.0),
    ("p4 a", 20.0),
    ("p4 b", 30.0),
    ("p5 a", 40.0),
    ("default old", -100.0),
    ("default new", 100.0),
    ("default null", None),
)
WHOLE_ROWS = 9  # in P0-P2
DEFAULT_LABELS = {label for label, _ in ROWS if label.startswith("default")}
TYPES = {
    # type: an SQL expression of the value {h} hours from C ({c}, a literal) in the column
    "timestamptz": "({c}::timestamptz + {h} * interval '1 hour')",
    "timestamp(3)": "(({c}::timestamptz + {h} * interval '1 hour') AT TIME ZONE 'UTC')",
    "date": "(({c}::timestamptz + {h} * interval '1 hour') AT TIME ZONE 'UTC')::date",
    "bigint": "extract(epoch FROM {c}::timestamptz + {h} * interval '1 hour')::bigint",
}


def garbage(type_: str, hours: float | None) -> bool:
    if hours is None:
        return False
    return hours < -12 if type_ == "date" else hours < 0


@dataclass(frozen=True)
class Events:
    table: str  # "Telemetry"."Events_…", as regclass prints it
    type_: str

    def partition(self, n: int | str) -> str:
        return f'{SCHEMA}."{self.table.split(".")[1].strip(chr(34))}_P{n}"'


@pytest.fixture(scope="module")
def db(module_db: str) -> str:
    engine.install(module_db)
    with connect(module_db) as conn:
        conn.execute(f'CREATE SCHEMA {SCHEMA}; CREATE SCHEMA "Archive"')
    return module_db


def cutoff_instant(conn: psycopg.Connection[Any]) -> Any:
    """C: noon UTC the day before yesterday."""
    row = conn.execute(
        "SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        " - interval '36 hours'"
    ).fetchone()
    assert row is not None
    return row[0]


def make_events(
    dsn: str, name: str, type_: str, *, default: bool = True, extra_rows: int = 0
) -> Events:
    """A table laid out as the module docstring says, its rule's cutoff at C."""
    table = f'{SCHEMA}."{name}"'
    with connect(dsn) as conn:
        c = cutoff_instant(conn)
        value = TYPES[type_].replace("{c}", f"'{c.isoformat()}'")
        conn.execute(
            f'CREATE TABLE {table} (id bigserial, label text, "seenAt" {type_})'
            ' PARTITION BY RANGE ("seenAt")'
        )
        conn.execute(f'CREATE INDEX ON {table} ("seenAt")')
        for n, (lower, upper) in enumerate(itertools.pairwise(BOUNDS_H)):
            low, up = value.format(h=lower), value.format(h=upper)
            conn.execute(
                f'CREATE TABLE {SCHEMA}."{name}_P{n}" PARTITION OF {table}'
                f" FOR VALUES FROM ({low}) TO ({up})"
            )
        if default:
            conn.execute(f'CREATE TABLE {SCHEMA}."{name}_PDefault" PARTITION OF {table} DEFAULT')
        for label, hours in ROWS:
            if label.startswith("default") and not default:
                continue
            expr = "NULL" if hours is None else value.format(h=hours)
            conn.execute(
                f'INSERT INTO {table} (label, "seenAt") VALUES (%(label)s, {expr})',
                {"label": label},
            )
        if extra_rows:  # more rows in P1, to count
            conn.execute(
                f'INSERT INTO {table} (label, "seenAt") SELECT %(label)s, {value.format(h=-45)}'
                " FROM generate_series(1, %(n)s)",
                {"label": "p1 bulk", "n": extra_rows},
            )
        conn.execute(
            "SELECT pgsweep.add_rule(%(t)s, 'seenAt', now() - %(c)s::timestamptz)",
            {"t": table, "c": c},
        )
    return Events(table, type_)


def labels(conn: psycopg.Connection[Any], table: str) -> set[str]:
    return {str(r[0]) for r in conn.execute(f"SELECT label FROM {table}").fetchall()}


def partitions_of(conn: psycopg.Connection[Any], table: str) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass"
            " ORDER BY 1",
            (table,),
        ).fetchall()
    ]


def kept_labels(type_: str) -> set[str]:
    return {label for label, hours in ROWS if not garbage(type_, hours)}


def notices(conn: psycopg.Connection[Any]) -> list[str]:
    seen: list[str] = []
    conn.add_notice_handler(lambda d: seen.append(str(d.message_primary)))
    return seen


# --- the engine: CALL pgsweep.sweep(), sweep_table() ----------------------------------------


@pytest.mark.parametrize("type_", list(TYPES))
def test_sweep_drops_each_partition_past_the_cutoff_whole_and_row_deletes_only_the_straddling_one(
    db: str, type_: str
) -> None:
    events = make_events(db, f"Events_{type_.split('(')[0]}", type_)
    with connect(db) as conn:
        said = notices(conn)
        expired = conn.execute(
            "SELECT e.partition::text FROM pgsweep.expiry_rule r, pgsweep.expired_partitions(r) e"
            " WHERE r.table_name = %s::regclass ORDER BY 1",
            (events.table,),
        ).fetchall()
        assert [r[0] for r in expired] == [events.partition(n) for n in range(3)]
        row = conn.execute(
            "CALL pgsweep.sweep(%s::regclass, 5000, '0', NULL)", (events.table,)
        ).fetchone()
        garbage_rows = sum(garbage(type_, h) for _, h in ROWS)
        assert row == (garbage_rows,)
        assert f"pgsweep: of them, {WHOLE_ROWS} rows in 3 partitions removed whole" in said
        # P0-P2 are gone; the straddling P3, the later ones and the DEFAULT partition remain.
        assert partitions_of(conn, events.table) == sorted(
            [events.partition(n) for n in (3, 4, 5)] + [events.partition("Default")]
        )
        assert conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname ~ %s",
            (f"^Events_{type_.split('(')[0]}_P[012]$",),
        ).fetchone() == (0,)
        assert labels(conn, events.table) == kept_labels(type_)
        # Nothing left to do: a second sweep removes nothing.
        assert conn.execute(
            "CALL pgsweep.sweep(%s::regclass, 5000, '0', NULL)", (events.table,)
        ).fetchone() == (0,)


def test_sweep_table_counts_the_rows_of_the_partitions_it_drops(db: str) -> None:
    events = make_events(db, "Events_sweep_table", "timestamptz", extra_rows=1000)
    with connect(db) as conn:
        row = conn.execute("SELECT pgsweep.sweep_table(%s::regclass)", (events.table,)).fetchone()
        assert row == (WHOLE_ROWS + 1000 + 3,)  # P0-P2, and P3's two and the DEFAULT's one
        assert labels(conn, events.table) == kept_labels("timestamptz")
        assert len(partitions_of(conn, events.table)) == 4


def test_a_table_not_range_partitioned_on_the_rule_column_has_no_partition_to_drop(
    db: str,
) -> None:
    with connect(db) as conn:
        conn.execute(
            f"CREATE TABLE {SCHEMA}.by_kind (kind int, at timestamptz) PARTITION BY LIST (kind);"
            f" CREATE TABLE {SCHEMA}.by_kind_1 PARTITION OF {SCHEMA}.by_kind FOR VALUES IN (1);"
            f" CREATE INDEX ON {SCHEMA}.by_kind (at);"
            f" INSERT INTO {SCHEMA}.by_kind VALUES (1, now() - interval '2 days'), (1, now());"
            f" SELECT pgsweep.add_rule('{SCHEMA}.by_kind', 'at', '1 day')"
        )
        assert conn.execute(
            "SELECT count(*) FROM pgsweep.expiry_rule r, pgsweep.expired_partitions(r)"
            f" WHERE r.table_name = '{SCHEMA}.by_kind'::regclass"
        ).fetchone() == (0,)
        assert conn.execute(f"SELECT pgsweep.sweep_table('{SCHEMA}.by_kind')").fetchone() == (1,)
        assert partitions_of(conn, f"{SCHEMA}.by_kind") == [f"{SCHEMA}.by_kind_1"]


def test_a_rule_with_an_archive_schema_keeps_its_expired_partitions_there_as_plain_tables(
    db: str,
) -> None:
    events = make_events(db, "Events_archived", "timestamptz")
    with connect(db) as conn:
        with pytest.raises(psycopg.errors.InvalidSchemaName):
            conn.execute(
                "SELECT pgsweep.set_partition_archive(%s, 'seenAt', 'no_such_schema')",
                (events.table,),
            )
        conn.execute(
            "SELECT pgsweep.set_partition_archive(%s, 'seenAt', 'Archive')", (events.table,)
        )
        assert conn.execute(
            "CALL pgsweep.sweep(%s::regclass, 5000, '0', NULL)", (events.table,)
        ).fetchone() == (WHOLE_ROWS + 3,)
        archived = conn.execute(
            "SELECT c.oid::regclass::text, c.relispartition, c.relkind FROM pg_class c"
            " WHERE c.relnamespace = '\"Archive\"'::regnamespace AND c.relkind = 'r'"
            " AND c.relname LIKE 'Events_archived_P%' ORDER BY 1"
        ).fetchall()
        assert archived == [(f'"Archive"."Events_archived_P{n}"', False, "r") for n in range(3)]
        kept = conn.execute(
            'SELECT count(*) FROM "Archive"."Events_archived_P0"'
            ' UNION ALL SELECT count(*) FROM "Archive"."Events_archived_P1"'
            ' UNION ALL SELECT count(*) FROM "Archive"."Events_archived_P2"'
        ).fetchall()
        assert [r[0] for r in kept] == [3, 2, 4]
        assert labels(conn, events.table) == kept_labels("timestamptz")


# --- the commands: cleanup (and its dry run), run ------------------------------------------


def test_cleanup_dry_run_names_the_partitions_that_would_go_and_cleanup_detaches_them_concurrently(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    events = make_events(db, "Events_cli", "timestamptz", default=False, extra_rows=500)
    dry = pgsweep(capsys, "cleanup", "--dsn", db, "--table", events.table, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    (rule,) = dry.json()["tables"][0]["rules"]
    assert rule["would_delete"] == WHOLE_ROWS + 500 + 2  # no DEFAULT partition here
    assert [(p["partition"], p["rows"]) for p in rule["partitions"]] == [
        (events.partition(0), 3),
        (events.partition(1), 502),
        (events.partition(2), 4),
    ]
    text = pgsweep(capsys, "cleanup", "--dsn", db, "--table", events.table, "--dry-run")
    assert f"partition {events.partition(1)} of {events.table}: would go whole, 502 rows" in (
        text.out
    )

    done = cleanup.cleanup(db, table=events.table)
    (table,) = done.tables
    (counted,) = table.rules
    assert counted.rows == WHOLE_ROWS + 500 + 2
    assert [(p.partition, p.rows, p.how) for p in counted.partitions] == [
        (events.partition(n), rows, "detached concurrently")
        for n, rows in ((0, 3), (1, 502), (2, 4))
    ]
    assert counted.partitions_left == []
    with connect(db) as conn:
        assert labels(conn, events.table) == kept_labels("timestamptz") - DEFAULT_LABELS
        assert partitions_of(conn, events.table) == [events.partition(n) for n in (3, 4, 5)]


def test_cleanup_uses_a_plain_detach_when_the_table_has_a_default_partition(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    events = make_events(db, "Events_cli_default", "bigint")
    done = pgsweep(capsys, "cleanup", "--dsn", db, "--table", events.table, "--yes")
    assert done.code == 0, done.err
    said = f"partition {events.partition(0)} of {events.table}: removed whole (detached), 3 rows"
    assert said in done.out
    with connect(db) as conn:
        assert labels(conn, events.table) == kept_labels("bigint")
        assert events.partition("Default") in partitions_of(conn, events.table)


def test_pgsweep_run_counts_the_partitions_it_removed(db: str) -> None:
    events = make_events(db, "Events_run", "timestamp(3)")
    with connect(db) as conn:
        counts = runner.sweep_once(conn, 1, 5000)
    assert counts.partitions == {events.table: 3}
    assert counts.deleted[events.table] == WHOLE_ROWS + 3


# --- concurrency: a writer into the current partition ---------------------------------------


@dataclass
class Watch:
    """Two real sessions besides the sweeper: ``holder`` keeps a transaction open that inserted
    into the current partition (as a slow app request would); ``writer`` inserts one row per
    transaction meanwhile, with lock_timeout 1 s (below the migration policy's 5 s), and a
    monitor samples pg_locks: whom the writer waited for, and whether the sweeper ever held
    an ACCESS EXCLUSIVE lock on the table while the holder's transaction was open."""

    inserted: int = 0
    failed: list[str] = field(default_factory=list)
    waits_on_sweeper: int = 0
    exclusive_held: int = 0


@contextmanager
def app_writing(
    dsn: str, table: str, sweeper_pid: int, isolation: str = "READ COMMITTED"
) -> Iterator[Watch]:
    watch, stop = Watch(), threading.Event()
    insert = f"""INSERT INTO {table} (label, "seenAt") VALUES ('app', now())"""
    with (
        connect(dsn, autocommit=False) as holder,
        connect(dsn) as writer,
        connect(dsn) as monitor,
    ):
        holder.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
        holder.execute(insert)
        writer.execute("SET lock_timeout = '1s'")
        writer_pid = writer.info.backend_pid

        def write() -> None:
            while not stop.is_set():
                try:
                    writer.execute(insert)
                    watch.inserted += 1
                except psycopg.errors.LockNotAvailable as exc:
                    watch.failed.append(str(exc))

        def observe() -> None:
            while not stop.is_set():
                row = monitor.execute(
                    "SELECT %(s)s = ANY (pg_blocking_pids(%(w)s)),"
                    " EXISTS (SELECT FROM pg_locks WHERE pid = %(s)s AND granted"
                    "  AND mode = 'AccessExclusiveLock' AND relation = %(t)s::regclass)",
                    {"s": sweeper_pid, "w": writer_pid, "t": table},
                ).fetchone()
                assert row is not None
                watch.waits_on_sweeper += int(bool(row[0]))
                watch.exclusive_held += int(bool(row[1]))
                time.sleep(0.005)

        threads = [threading.Thread(target=write), threading.Thread(target=observe)]
        for thread in threads:
            thread.start()
        while watch.inserted == 0 and not watch.failed:
            time.sleep(0.01)
        try:
            yield watch
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            holder.commit()


def test_a_partition_whose_lock_is_not_granted_is_left_and_the_app_never_waits_past_its_timeout(
    db: str,
) -> None:
    events = make_events(db, "Events_busy", "timestamptz")
    with connect(db) as sweeper:
        said = notices(sweeper)
        with app_writing(db, events.table, sweeper.info.backend_pid) as watch:
            row = sweeper.execute(
                "CALL pgsweep.sweep(%s::regclass, 5000, '0', NULL)", (events.table,)
            ).fetchone()
            before = watch.inserted
        assert watch.failed == []
        assert before > 0
        assert watch.exclusive_held == 0
        # Every garbage row went all the same: the batches deleted those of the partitions left.
        assert row == (WHOLE_ROWS + 3,)
        assert any("left for the next sweep" in n for n in said), said
        assert len(partitions_of(sweeper, events.table)) == 7
        # Once the app's transaction is over, the next sweep drops the now empty partitions.
        said.clear()
        assert sweeper.execute(
            "CALL pgsweep.sweep(%s::regclass, 5000, '0', NULL)", (events.table,)
        ).fetchone() == (0,)
        assert "pgsweep: of them, 0 rows in 3 partitions removed whole" in said
        assert len(partitions_of(sweeper, events.table)) == 4
        assert kept_labels("timestamptz") <= labels(sweeper, events.table)


def test_a_concurrent_detach_blocks_no_writer_and_waits_out_an_open_snapshot_across_runs(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The app's transaction starts with the removal: what follows is past the check of
    # transactions open too long.
    monkeypatch.setattr(partitions, "OLD_TRANSACTION", "1h")
    events = make_events(db, "Events_busy_concurrently", "timestamptz", default=False)
    finalized = "detached concurrently (finalized)"
    with connect(db) as sweeper:
        # A READ COMMITTED transaction between statements holds no snapshot: the detach times
        # out waiting for its lock on the table, and FINALIZE, which waits only for older
        # snapshots, completes it at once.
        with app_writing(db, events.table, sweeper.info.backend_pid) as watch:
            removal = partitions.remove_expired(sweeper, events.table, "seenAt")
            assert watch.inserted > 0
        assert (watch.failed, watch.exclusive_held) == ([], 0)
        assert [(p.partition, p.rows, p.how) for p in removal.removed] == [
            (events.partition(n), rows, finalized) for n, rows in ((0, 3), (1, 2), (2, 4))
        ]
        assert removal.left == []
        assert partitions_of(sweeper, events.table) == [events.partition(n) for n in (3, 4, 5)]


def test_a_snapshot_older_than_a_concurrent_detach_leaves_it_half_done_until_the_next_run(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The app's transaction starts with the removal: what follows is past the check of
    # transactions open too long.
    monkeypatch.setattr(partitions, "OLD_TRANSACTION", "1h")
    events = make_events(db, "Events_busy_snapshot", "timestamptz", default=False)
    with connect(db) as sweeper:
        with app_writing(db, events.table, sweeper.info.backend_pid, "REPEATABLE READ") as watch:
            removal = partitions.remove_expired(sweeper, events.table, "seenAt")
            assert watch.inserted > 0
        assert (watch.failed, watch.exclusive_held) == ([], 0)
        assert removal.removed == []
        assert len(removal.left) == 3, removal.left
        pending = sweeper.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits"
            " WHERE inhparent = %s::regclass AND inhdetachpending ORDER BY 1",
            (events.table,),
        ).fetchall()
        # One at most (PostgreSQL's rule); the other two were tried the plain way, and left.
        assert [r[0] for r in pending] == [events.partition(0)]
        (check,) = [c for c in verify.partition_checks(sweeper) if events.table in c.name]
        assert check.ok is False
        assert (
            f"half-detached by a cleanup's DETACH CONCURRENTLY: {events.partition(0)}"
            in check.evidence
        )
        # Said as it is: hidden from the table until a run finishes it, not row-deleted.
        assert not partitions.row_deleted(removal.left[0])
        assert partitions.HALF_DETACHED in removal.left[0]
        again = partitions.remove_expired(sweeper, events.table, "seenAt")
        assert [(p.partition, p.rows) for p in again.removed] == [
            (events.partition(n), rows) for n, rows in ((0, 3), (1, 2), (2, 4))
        ]
        assert again.left == []


# --- pg_partman ------------------------------------------------------------------------------


def test_pg_partman_maintenance_still_creates_future_partitions_after_the_sweep_dropped_old_ones(
    db: str,
) -> None:
    with connect(db) as conn:
        conn.execute("CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman")
        conn.execute(
            "CREATE SCHEMA telemetry;"
            " CREATE TABLE telemetry.aggregates (bucket timestamptz NOT NULL, value int)"
            " PARTITION BY RANGE (bucket);"
            " CREATE INDEX ON telemetry.aggregates (bucket)"
        )
        conn.execute(
            "SELECT partman.create_parent('telemetry.aggregates', 'bucket', 'native', 'daily',"
            " p_premake := 3, p_start_partition := (now() - interval '10 days')::text)"
        )
        children = partman_children(conn)
        assert len(children) == 14  # 10 days back, today, 3 ahead
        conn.execute(
            "INSERT INTO telemetry.aggregates"
            " SELECT now() - g * interval '1 hour', 1 FROM generate_series(0, 239) g"
        )
        conn.execute("SELECT pgsweep.add_rule('telemetry.aggregates', 'bucket', '5 days')")
        old = conn.execute(
            "SELECT count(*) FROM telemetry.aggregates WHERE bucket < now() - interval '5 days'"
        ).fetchone()
        assert old is not None
        row = conn.execute(
            "CALL pgsweep.sweep('telemetry.aggregates'::regclass, 5000, '0', NULL)"
        ).fetchone()
        assert row == old
        assert partman_children(conn) == children[5:]  # the five days before the cutoff's day
        assert conn.execute(
            "SELECT to_regclass('telemetry.aggregates_default') IS NOT NULL"
        ).fetchone() == (True,)
        # partman's own maintenance goes on: more partitions ahead, part_config intact.
        conn.execute("UPDATE partman.part_config SET premake = 6")
        conn.execute("SELECT partman.run_maintenance('telemetry.aggregates')")
        after = partman_children(conn)
        assert after[: len(children) - 5] == children[5:]
        assert len(after) == len(children) - 5 + 3
        assert conn.execute("SELECT count(*) FROM partman.check_default()").fetchone() == (0,)


def partman_children(conn: psycopg.Connection[Any]) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT partition_tablename FROM partman.show_partitions('telemetry.aggregates')"
        ).fetchall()
    ]


# --- verify -----------------------------------------------------------------------------------


def test_verify_names_the_partitions_a_cleanup_would_remove_by_their_bounds(db: str) -> None:
    events = make_events(db, "Events_verify", "timestamptz")
    report = verify.verify(db, check_cron=False)
    checks = {c.name: c for c in report.checks}
    check = checks[f"partitions {events.table}.seenAt"]
    for c in report.checks:
        if events.table in c.name:
            print(c.name, c.status, c.evidence)
    assert check.ok is True
    expired = ", ".join(events.partition(n) for n in range(3))
    assert check.evidence == (
        'RANGE ("seenAt"), 7 partitions; past the cutoff, removed whole by the bounds: '
        + expired
    )
    assert checks[f"plan cleanup {events.table}.seenAt"].ok is True


# --- downgrade --------------------------------------------------------------------------------


def test_the_downgrade_to_1_0_refuses_while_a_rule_keeps_partitions_in_an_archive(
    db: str,
) -> None:
    """1.0 would delete row by row what such a rule keeps (the module's database stays 1.1 after,
    then goes back to the newest release)."""
    events = make_events(db, "Events_downgrade", "date")
    with connect(db) as conn:
        conn.execute(
            "SELECT pgsweep.set_partition_archive(%s, 'seenAt', 'Archive')", (events.table,)
        )
    downgrade_to(db, "1.1")
    done = run_downgrade(db, "1.1")
    assert done.returncode != 0
    assert "keeps its expired partitions in an archive schema" in done.stderr
    with connect(db) as conn:
        assert conn.execute("SELECT pgsweep.version()").fetchone() == ("1.1",)
        conn.execute("SELECT pgsweep.set_partition_archive(%s, 'seenAt', NULL)", (events.table,))
    upgrade = engine.release_file(engine.latest(), "upgrade.sql")
    done = subprocess.run(
        ["psql", "-X", "-q", "-d", db, "-f", str(upgrade)], capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr


def test_status_names_the_partitions_due_and_sizes_a_partitioned_table_by_its_partitions(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    events = make_events(db, "Events_status", "timestamptz")
    shown = pgsweep(capsys, "status", "--dsn", db, "--json")
    assert shown.code == 0, shown.err
    (table,) = [t for t in shown.json()["tables"] if t["table"] == events.table]
    assert table["partitions_due"] == [events.partition(n) for n in range(3)]
    assert table["garbage"] == WHOLE_ROWS + 3
    assert table["table_bytes"] > 0
    assert table["index_bytes"] > 0
    text = pgsweep(capsys, "status", "--dsn", db).out
    assert f"{events.table}: partitions past the cutoff, removed whole by the next cleanup:" in (
        text
    )
    with connect(db) as conn:
        conn.execute("CALL pgsweep.sweep(%s::regclass, 5000, '0', NULL)", (events.table,))
    again = pgsweep(capsys, "status", "--dsn", db, "--json").json()
    (table,) = [t for t in again["tables"] if t["table"] == events.table]
    assert (table["partitions_due"], table["garbage"]) == ([], 0)


def test_a_partition_the_archive_cannot_take_stays_attached_and_its_rows_are_row_deleted(
    db: str,
) -> None:
    events = make_events(db, "Events_archive_gone", "timestamptz", default=False)
    with connect(db) as conn:
        conn.execute('CREATE SCHEMA "Gone"')
        conn.execute("SELECT pgsweep.set_partition_archive(%s, 'seenAt', 'Gone')", (events.table,))
        conn.execute('DROP SCHEMA "Gone"')
    done = cleanup.cleanup(db, table=events.table)
    (rule,) = done.tables[0].rules
    assert rule.partitions == []
    assert [left.split(":")[0] for left in rule.partitions_left] == [
        events.partition(n) for n in range(3)
    ]
    assert all('schema "Gone" does not exist' in left for left in rule.partitions_left)
    assert rule.rows == WHOLE_ROWS + 2
    with connect(db) as conn:
        assert partitions_of(conn, events.table) == [events.partition(n) for n in range(6)]
        assert labels(conn, events.table) == kept_labels("timestamptz") - DEFAULT_LABELS


def test_a_role_that_may_not_drop_the_partitions_still_deletes_every_garbage_row(
    db: str,
) -> None:
    """Least privilege: a role with the engine's routines and DELETE on the table, not its
    owner: the partitions stay (a WARNING each), their rows go row by row."""
    events = make_events(db, "Events_not_owner", "timestamptz", default=False)
    with temporary_roles(db, "sweeper") as roles:
        sweeper = roles["sweeper"]
        grant(
            db,
            (
                "GRANT USAGE ON SCHEMA pgsweep TO {r}",
                "GRANT SELECT ON pgsweep.expiry_rule, pgsweep.rule_dependent, pgsweep.rules,"
                " pgsweep.release TO {r}",
                "GRANT EXECUTE ON ALL ROUTINES IN SCHEMA pgsweep TO {r}",
                'GRANT USAGE ON SCHEMA "Telemetry" TO {r}',
                f"GRANT SELECT, DELETE ON {events.table} TO {{r}}",
            ),
            r=sweeper,
        )
        with connect(sweeper.dsn) as conn:
            said: list[str] = []
            conn.add_notice_handler(lambda d: said.append(str(d.message_primary)))
            row = conn.execute(
                "CALL pgsweep.sweep(%s::regclass, 5000, '0', NULL)", (events.table,)
            ).fetchone()
        assert row == (WHOLE_ROWS + 2,), said
        assert len([m for m in said if "cannot be removed: permission denied" in m]) == 3, said
        done = cleanup.cleanup(sweeper.dsn, table=events.table)
        (rule,) = done.tables[0].rules
        assert (rule.rows, rule.partitions, len(rule.partitions_left)) == (0, [], 3)
        with connect(db) as conn:
            assert len(partitions_of(conn, events.table)) == 6
            assert labels(conn, events.table) == kept_labels("timestamptz") - DEFAULT_LABELS


def test_a_rule_with_a_condition_or_an_archive_never_drops_a_partition_whole(db: str) -> None:
    # A condition marks only some rows of an expired partition, and an archiving rule must move
    # each row into its archive: either way every row goes by the batches, none with a partition.
    conditional = make_events(db, "Events_with_condition", "timestamptz")
    archived = make_events(db, "Events_row_archive", "timestamptz")
    with connect(db) as conn:
        conn.execute(
            "SELECT pgsweep.add_rule(%s, 'seenAt', r.keep_for, p_condition => 'label <> ''p0 a''')"
            " FROM pgsweep.expiry_rule r WHERE r.table_name = %s::regclass",
            (conditional.table, conditional.table),
        )
        conn.execute("SELECT pgsweep.set_archive(%s, 'seenAt')", (archived.table,))
        for events in (conditional, archived):
            assert conn.execute(
                "SELECT count(*) FROM pgsweep.expiry_rule r, pgsweep.expired_partitions(r)"
                " WHERE r.table_name = %s::regclass",
                (events.table,),
            ).fetchone() == (0,)
    with connect(db) as conn:
        conn.execute("CALL pgsweep.sweep(%s::regclass, 5000, '0', NULL)", (conditional.table,))
        conn.execute("CALL pgsweep.sweep(%s::regclass, 5000, '0', NULL)", (archived.table,))
        for events in (conditional, archived):
            assert len(partitions_of(conn, events.table)) == len(BOUNDS_H)  # six and DEFAULT
        assert labels(conn, conditional.table) == kept_labels("timestamptz") | {"p0 a"}
        assert labels(conn, archived.table) == kept_labels("timestamptz")
