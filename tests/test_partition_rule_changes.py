"""A rule changed or removed while ``DETACH PARTITION ... CONCURRENTLY`` waits (issue 17): the
partition, no longer garbage, goes back whole instead of being dropped, and one an interrupted
detach left half-detached is repaired by the next run (docs/partitions.md).

Each test has a daily partition ten days old under a rule that keeps five days, and an app
transaction that has read the table, so the detach waits for it: the rule changes in a third
session meanwhile, then the app's transaction ends and the detach completes.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from pgsweep import cleanup, engine, partitions, verify
from tests.pg import connect

TABLE = '"Telemetry"."Events"'
OLD = '"Telemetry"."Events_old"'
NOW = '"Telemetry"."Events_now"'
ROWS = {OLD: 3, NOW: 2}


@pytest.fixture(scope="module")
def installed(module_db: str) -> str:
    engine.install(module_db)
    with connect(module_db) as conn:
        conn.execute('CREATE SCHEMA "Telemetry"; CREATE SCHEMA "Archive"')
    return module_db


@pytest.fixture
def db(installed: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The table, its rule (keep 5 days), and a detach that waits as long as the test needs
    (the app's transaction ends when the test says so, not at a lock timeout)."""
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "60s")
    # The app's transaction is opened just before each detach: never "too old" here, except
    # where a test says so.
    monkeypatch.setattr(partitions, "OLD_TRANSACTION", "1h")
    with connect(installed) as conn:
        conn.execute(
            f'CREATE TABLE {TABLE} (id bigserial, "seenAt" timestamptz NOT NULL)'
            ' PARTITION BY RANGE ("seenAt")'
        )
        conn.execute(f'CREATE INDEX ON {TABLE} ("seenAt")')
        conn.execute(
            f"CREATE TABLE {OLD} PARTITION OF {TABLE} FOR VALUES"
            " FROM (date_trunc('day', now()) - interval '10 days')"
            " TO (date_trunc('day', now()) - interval '9 days')"
        )
        conn.execute(
            f"CREATE TABLE {NOW} PARTITION OF {TABLE} FOR VALUES"
            " FROM (date_trunc('day', now()) - interval '9 days')"
            " TO (date_trunc('day', now()) + interval '2 days')"
        )
        conn.execute(
            f"INSERT INTO {TABLE} (\"seenAt\") SELECT date_trunc('day', now())"
            " - interval '10 days' + g * interval '1 hour' FROM generate_series(1, 3) g"
        )
        conn.execute(
            f"INSERT INTO {TABLE} (\"seenAt\") SELECT now() - g * interval '1 hour'"
            " FROM generate_series(1, 2) g"
        )
        conn.execute(f"SELECT pgsweep.add_rule('{TABLE}', 'seenAt', '5 days')")
    try:
        yield installed
    finally:
        with connect(installed) as conn:
            conn.execute(f'DROP TABLE IF EXISTS {TABLE}, {OLD}, "Archive"."Events_old"')


def attached(conn: psycopg.Connection[Any]) -> dict[str, bool]:
    """The table's partitions, each with whether it is half-detached."""
    rows = conn.execute(
        "SELECT inhrelid::regclass::text, inhdetachpending FROM pg_inherits"
        " WHERE inhparent = %s::regclass ORDER BY 1",
        (TABLE,),
    ).fetchall()
    return {str(name): bool(pending) for name, pending in rows}


def rows_seen(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """The rows the app sees through the table, per partition."""
    rows = conn.execute(f"SELECT tableoid::regclass::text, count(*) FROM {TABLE} GROUP BY 1")
    return {str(name): int(n) for name, n in rows.fetchall()}


def checks_of(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT conname::text FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'",
        (table,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def wait_until_waiting(monitor: psycopg.Connection[Any], pid: int, statement: str) -> None:
    """Until the backend ``pid`` waits for a lock in a statement starting with ``statement``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = monitor.execute(
            "SELECT wait_event_type = 'Lock' AND query ILIKE %s FROM pg_stat_activity"
            " WHERE pid = %s",
            (statement + "%", pid),
        ).fetchone()
        if row is not None and row[0]:
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited in {statement!r}")


@contextmanager
def app_reading(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An app transaction that has read the table: a concurrent detach waits for its end."""
    with connect(dsn, autocommit=False) as app:
        app.execute(f"SELECT count(*) FROM {TABLE}")
        try:
            yield app
        finally:
            app.rollback()


def remove_while(dsn: str, change: Callable[[psycopg.Connection[Any]], object]) -> Any:
    """remove_expired's concurrent detach, with ``change`` made in a third session while it
    waits for the app's transaction; what it did."""
    done: list[Any] = []
    with connect(dsn) as sweeper, connect(dsn) as other, app_reading(dsn) as app:
        thread = threading.Thread(
            target=lambda: done.append(partitions.remove_expired(sweeper, TABLE, "seenAt"))
        )
        thread.start()
        try:
            wait_until_waiting(other, sweeper.info.backend_pid, "ALTER TABLE")
            change(other)
        finally:
            app.rollback()
            thread.join(timeout=60)
    assert done, "remove_expired did not finish"
    return done[0]


def test_a_keep_for_lengthened_while_the_detach_waits_puts_the_partition_back_with_its_rows(
    db: str,
) -> None:
    with connect(db) as conn:
        before = checks_of(conn, OLD)
    removal = remove_while(
        db, lambda c: c.execute(f"SELECT pgsweep.add_rule('{TABLE}', 'seenAt', '30 days')")
    )
    assert removal.removed == []
    assert removal.left == [f"{OLD}: {partitions.PUT_BACK}"]
    with connect(db) as conn:
        assert attached(conn) == {OLD: False, NOW: False}
        assert rows_seen(conn) == ROWS
        # As it was: the CHECK constraint the detach added went with the attach.
        assert checks_of(conn, OLD) == before
        # Once the rule marks it again, the next removal takes it.
        conn.execute(f"SELECT pgsweep.add_rule('{TABLE}', 'seenAt', '5 days')")
        again = partitions.remove_expired(conn, TABLE, "seenAt")
        assert [(p.partition, p.rows) for p in again.removed] == [(OLD, 3)]


def test_a_rule_removed_while_the_detach_waits_puts_the_partition_back(db: str) -> None:
    removal = remove_while(
        db, lambda c: c.execute(f"SELECT pgsweep.remove_rule('{TABLE}', 'seenAt')")
    )
    assert removal.removed == []
    assert removal.left == [f"{OLD}: {partitions.PUT_BACK}"]
    with connect(db) as conn:
        assert attached(conn) == {OLD: False, NOW: False}
        assert rows_seen(conn) == ROWS


def test_an_archive_set_while_the_detach_waits_keeps_the_partition_there(db: str) -> None:
    removal = remove_while(
        db,
        lambda c: c.execute(
            f"SELECT pgsweep.set_partition_archive('{TABLE}', 'seenAt', 'Archive')"
        ),
    )
    assert [(p.partition, p.rows) for p in removal.removed] == [(OLD, 3)]
    with connect(db) as conn:
        assert attached(conn) == {NOW: False}
        kept = conn.execute('SELECT count(*) FROM "Archive"."Events_old"').fetchone()
        assert kept == (3,)


def test_a_rule_unchanged_while_the_detach_waits_lets_the_partition_go(db: str) -> None:
    removal = remove_while(db, lambda c: c.execute("SELECT 1"))
    assert [(p.partition, p.rows, p.how) for p in removal.removed] == [
        (OLD, 3, "detached concurrently")
    ]
    with connect(db) as conn:
        assert attached(conn) == {NOW: False}
        assert rows_seen(conn) == {NOW: 2}


def test_a_change_of_the_rule_waits_for_the_drop_that_checked_it(db: str) -> None:
    """The drop's transaction holds the rule's row (locked_rule) from its check to its commit:
    a change of the rule made meanwhile waits for it (here: gives up after 50 ms), so the rule
    never changes between the check and the drop. With a DEFAULT partition the engine's plain
    detach is used, in that one transaction."""
    with connect(db) as conn:
        conn.execute(f'CREATE TABLE "Telemetry"."Events_default" PARTITION OF {TABLE} DEFAULT')
    with connect(db) as sweeper, connect(db) as other, connect(db, autocommit=False) as owner:
        # A writer of the partition: the drop, its rule locked, waits for it.
        owner.execute(f"LOCK TABLE {OLD} IN ROW EXCLUSIVE MODE")
        done: list[Any] = []
        thread = threading.Thread(
            target=lambda: done.append(partitions.remove_expired(sweeper, TABLE, "seenAt"))
        )
        thread.start()
        try:
            wait_until_waiting(other, sweeper.info.backend_pid, "SELECT pgsweep.remove_partition")
            other.execute("SET lock_timeout = '50ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(f"SELECT pgsweep.add_rule('{TABLE}', 'seenAt', '30 days')")
        finally:
            owner.rollback()
            thread.join(timeout=60)
    assert [(p.partition, p.rows, p.how) for p in done[0].removed] == [(OLD, 3, "detached")]
    with connect(db) as conn:
        conn.execute('DROP TABLE "Telemetry"."Events_default"')


def interrupt_a_detach(dsn: str, *, recorded: bool = True) -> None:
    """A DETACH ... CONCURRENTLY cancelled while it waited for the app: the partition is left
    half-detached (hidden from the app). ``recorded``: an earlier run's, recorded as a run
    records its own; else another session's (an app migration's)."""
    with connect(dsn) as detacher, connect(dsn) as other, app_reading(dsn):
        if recorded:
            partitions._record(detacher, TABLE, partitions._shape(detacher, OLD))
        failed: list[BaseException] = []

        def detach() -> None:
            try:
                detacher.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {OLD} CONCURRENTLY")
            except psycopg.Error as exc:
                failed.append(exc)

        thread = threading.Thread(target=detach)
        thread.start()
        wait_until_waiting(other, detacher.info.backend_pid, "ALTER TABLE")
        other.execute("SELECT pg_cancel_backend(%s)", (detacher.info.backend_pid,))
        thread.join(timeout=60)
    assert [type(e) for e in failed] == [psycopg.errors.QueryCanceled]
    with connect(dsn) as conn:
        assert attached(conn) == {OLD: True, NOW: False}
        assert rows_seen(conn) == {NOW: 2}  # the app no longer sees its rows


def records(conn: psycopg.Connection[Any]) -> list[str]:
    """The concurrent detaches recorded and not finished."""
    rows = conn.execute("SELECT partition FROM pgsweep.partition_detach ORDER BY 1").fetchall()
    return [str(r[0]) for r in rows]


def test_the_next_run_puts_back_a_half_detached_partition_the_lengthened_rule_keeps(
    db: str,
) -> None:
    interrupt_a_detach(db)
    with connect(db) as conn:
        conn.execute(f"SELECT pgsweep.add_rule('{TABLE}', 'seenAt', '30 days')")
    result = cleanup.cleanup(db, table=TABLE)
    (rule,) = result.tables[0].rules
    assert rule.partitions == []
    assert rule.partitions_left == [f"{OLD}: {partitions.PUT_BACK}"]
    assert result.total == 0
    with connect(db) as conn:
        assert attached(conn) == {OLD: False, NOW: False}
        assert rows_seen(conn) == ROWS
        assert checks_of(conn, OLD) == []
        assert records(conn) == []


def test_the_next_run_finishes_removing_a_half_detached_partition_the_rule_still_marks(
    db: str,
) -> None:
    interrupt_a_detach(db)
    result = cleanup.cleanup(db, table=TABLE)
    (rule,) = result.tables[0].rules
    assert [(p.partition, p.rows) for p in rule.partitions] == [(OLD, 3)]
    assert rule.partitions_left == []
    assert result.total == 3
    with connect(db) as conn:
        assert attached(conn) == {NOW: False}
        assert conn.execute("SELECT to_regclass(%s)", (OLD,)).fetchone() == (None,)
        assert records(conn) == []


def test_a_detach_of_this_run_cancelled_after_the_rule_changed_is_put_back_at_once(
    db: str,
) -> None:
    def change_and_cancel(other: psycopg.Connection[Any]) -> None:
        other.execute(f"SELECT pgsweep.add_rule('{TABLE}', 'seenAt', '30 days')")
        other.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
            " WHERE query ILIKE 'ALTER TABLE%%CONCURRENTLY' AND pid <> pg_backend_pid()"
        )

    removal = remove_while(db, change_and_cancel)
    assert removal.removed == []
    assert removal.left == [f"{OLD}: {partitions.PUT_BACK}"]
    with connect(db) as conn:
        assert attached(conn) == {OLD: False, NOW: False}
        assert rows_seen(conn) == ROWS


def test_a_sweeping_session_ended_right_after_its_detach_is_repaired_by_the_next_run_with_all_rows(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweeping backend terminated the moment DETACH ... CONCURRENTLY returned, before the
    partition was dropped or attached again: a table of its own, its rows gone from the app's
    table. The record says whose it is: verify says so, and the next run, the rule lengthened
    meanwhile, attaches it again with every row and no constraint of the detach's."""
    original = partitions._dispose
    ended: list[int] = []

    def terminated(conn: psycopg.Connection[Any], *args: Any, **kwargs: Any) -> None:
        if not ended:
            ended.append(conn.info.backend_pid)
            with connect(db) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        original(conn, *args, **kwargs)

    monkeypatch.setattr(partitions, "_dispose", terminated)
    with connect(db) as conn:
        before = checks_of(conn, OLD)
    with connect(db) as sweeper, pytest.raises(psycopg.OperationalError):
        partitions.remove_expired(sweeper, TABLE, "seenAt")
    assert ended
    with connect(db) as conn:
        assert attached(conn) == {NOW: False}
        assert rows_seen(conn) == {NOW: 2}
        assert records(conn) == ['"Telemetry"."Events_old"']
        (check,) = [c for c in verify.partition_checks(conn) if TABLE in c.name]
        assert check.ok is False
        assert f"detached by a cleanup, neither dropped nor attached again: {OLD}" in (
            check.evidence
        )
        conn.execute(f"SELECT pgsweep.add_rule('{TABLE}', 'seenAt', '30 days')")
    result = cleanup.cleanup(db, table=TABLE)
    (rule,) = result.tables[0].rules
    assert rule.partitions == []
    assert rule.partitions_left == [f"{OLD}: {partitions.PUT_BACK}"]
    with connect(db) as conn:
        assert attached(conn) == {OLD: False, NOW: False}
        assert rows_seen(conn) == ROWS
        assert checks_of(conn, OLD) == before
        assert records(conn) == []


def test_a_sweeping_session_ended_after_its_detach_lets_the_next_run_drop_what_the_rule_marks(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = partitions._dispose
    ended: list[int] = []

    def terminated(conn: psycopg.Connection[Any], *args: Any, **kwargs: Any) -> None:
        if not ended:
            ended.append(conn.info.backend_pid)
            with connect(db) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        original(conn, *args, **kwargs)

    monkeypatch.setattr(partitions, "_dispose", terminated)
    with connect(db) as sweeper, pytest.raises(psycopg.OperationalError):
        partitions.remove_expired(sweeper, TABLE, "seenAt")
    result = cleanup.cleanup(db, table=TABLE)
    (rule,) = result.tables[0].rules
    assert [(p.partition, p.rows) for p in rule.partitions] == [(OLD, 3)]
    assert rule.partitions_left == []
    with connect(db) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (OLD,)).fetchone() == (None,)
        assert records(conn) == []


def test_an_apps_own_pending_detach_is_left_alone_for_its_finalize(db: str) -> None:
    """A half-done DETACH CONCURRENTLY pgsweep did not record (an app migration's): neither
    finished nor put back, whether the rule marks the partition or not; verify names it as
    another session's, and the app's FINALIZE then completes it."""
    interrupt_a_detach(db, recorded=False)
    for keep in ("5 days", "30 days"):
        with connect(db) as conn:
            conn.execute(f"SELECT pgsweep.add_rule('{TABLE}', 'seenAt', %s)", (keep,))
        result = cleanup.cleanup(db, table=TABLE)
        (rule,) = result.tables[0].rules
        assert rule.partitions == []
        if keep == "5 days":
            assert rule.partitions_left == [f"{OLD}: {partitions.NOT_OURS}"]
            assert not partitions.row_deleted(rule.partitions_left[0])
        with connect(db) as conn:
            assert attached(conn) == {OLD: True, NOW: False}
            assert records(conn) == []
    with connect(db) as conn:
        (check,) = [c for c in verify.partition_checks(conn) if TABLE in c.name]
        assert check.ok is False
        assert f"half-detached by another session's DETACH CONCURRENTLY: {OLD}" in check.evidence
        conn.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {OLD} FINALIZE")
        assert attached(conn) == {NOW: False}
        assert conn.execute(f"SELECT count(*) FROM {OLD}").fetchone() == (3,)


def test_an_app_check_identical_to_the_bound_survives_the_put_back_of_a_half_detached_partition(
    db: str,
) -> None:
    """PostgreSQL adds no CHECK at a concurrent detach when the partition has one equal to its
    bound: the app's, which stays when the partition is put back."""
    with connect(db) as conn:
        (bound,) = conn.execute(
            "SELECT pg_get_partition_constraintdef(%s::regclass)", (OLD,)
        ).fetchone() or ("",)
        conn.execute(f'ALTER TABLE {OLD} ADD CONSTRAINT "Events_old_range" CHECK ({bound})')
    interrupt_a_detach(db)
    with connect(db) as conn:
        assert checks_of(conn, OLD) == ["Events_old_range"]  # the detach added none
        conn.execute(f"SELECT pgsweep.add_rule('{TABLE}', 'seenAt', '30 days')")
    result = cleanup.cleanup(db, table=TABLE)
    (rule,) = result.tables[0].rules
    assert rule.partitions_left == [f"{OLD}: {partitions.PUT_BACK}"]
    with connect(db) as conn:
        assert attached(conn) == {OLD: False, NOW: False}
        assert rows_seen(conn) == ROWS
        assert checks_of(conn, OLD) == ["Events_old_range"]


def test_an_old_app_transaction_keeps_the_partition_attached_and_its_garbage_row_deleted(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app transaction open longer than the bound (here: any): a concurrent detach would
    wait for it and be left half-detached, so none is started. The partition stays attached,
    never hidden; its garbage goes row by row, and the message says why."""
    monkeypatch.setattr(partitions, "OLD_TRANSACTION", "0s")
    with app_reading(db):
        result = cleanup.cleanup(db, table=TABLE)
        (rule,) = result.tables[0].rules
        assert rule.partitions == []
        (left,) = rule.partitions_left
        assert left.startswith(f"{OLD}: not detached concurrently now: a transaction open for")
        assert partitions.row_deleted(left)
        assert result.total == 3
        with connect(db) as conn:
            assert attached(conn) == {OLD: False, NOW: False}
            assert rows_seen(conn) == {NOW: 2}
            assert records(conn) == []
            # The app can still write into the partition's range.
            conn.execute(
                f'INSERT INTO {TABLE} ("seenAt")'
                " VALUES (date_trunc('day', now()) - interval '10 days' + interval '1 hour')"
            )


def test_with_an_engine_before_1_4_the_partitions_still_go_the_plain_way(fresh_db: str) -> None:
    """Engine 1.3 has no record of detaches: the layer detaches nothing concurrently there (a
    detach it could not repair), and the engine's plain detach removes the partition."""
    done = subprocess.run(
        ["psql", "-X", "-q", "-d", fresh_db, "-f", str(engine.release_file("1.3", "install.sql"))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with connect(fresh_db) as conn:
        conn.execute(
            "CREATE TABLE ev (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);"
            " CREATE INDEX ON ev (at);"
            " CREATE TABLE ev_old PARTITION OF ev FOR VALUES FROM ('2020-01-01') TO ('2020-02-01');"
            " CREATE TABLE ev_new PARTITION OF ev FOR VALUES FROM ('2020-02-01') TO ('2200-01-01');"
            " INSERT INTO ev VALUES (1, '2020-01-15'), (2, '2020-01-16'), (3, now())"
        )
        conn.execute("SELECT pgsweep.add_rule('ev', 'at', '30 days')")
        removal = partitions.remove_expired(conn, "ev", "at")
        removed = [(p.partition, p.rows, p.how) for p in removal.removed]
        assert removed == [("ev_old", 2, "detached")]
        assert removal.left == []
        assert conn.execute("SELECT to_regclass('ev_old')").fetchone() == (None,)
