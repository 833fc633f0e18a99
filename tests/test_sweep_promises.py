"""What every sweep driver promises, whichever driver runs it: ``CALL pgsweep.sweep()``
(commits per batch), ``pgsweep cleanup`` (cleanup.cleanup), ``pgsweep run``
(runner.sweep_once) and, where it applies, ``pgsweep.sweep_table()``.

* A run follows the rules as they are when each batch starts, not as they were when the run
  began: a longer keep_for, a removed rule, committed by another session mid-run, hold for the
  batches that follow.
* One failing rule does not stop the others; its error is in the history.
* A cancel or an error between batches leaks no lock: another session sweeps the rule next.
* An orphan rule runs after the rules of its parent table, whatever the names.
* A run stopped by its time budget says so; pacing counts rows deleted, not partitions dropped.
* The lag of a rule that is not an age rule is the time its garbage has waited.
* sweep_table() does not keep a parent table locked for the caller's whole transaction.

The "mid-run" moment is chosen by the test (tests/sweep_gates.py): sweeps delete one row per
batch (pgsweep.batch_min = 1, batch size 1) and wait at a gate row until the test has made its
change. Every table name needs no quoting and sorts where the case needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgsweep import cleanup, engine, runner
from pgsweep.errors import PgsweepError
from tests.pg import connect
from tests.sweep_gates import (
    Background,
    advisory_locks_of,
    age_table,
    gates,
    install_gate,
    labels,
    pid_of,
    sweeper,
    wait_until,
)

Connection = psycopg.Connection[Any]
DRIVERS = ("procedure", "cleanup", "runner")


@pytest.fixture
def db(fresh_db: str) -> str:
    engine.install(fresh_db)
    return fresh_db


def with_settings(dsn: str, settings: dict[str, str]) -> str:
    """``dsn`` whose sessions start with these settings (for cleanup.cleanup's own session)."""
    options = " ".join(f"-c {name}={value}" for name, value in settings.items())
    return make_conninfo(dsn, options=options)


def start_sweep(
    dsn: str, driver: str, settings: dict[str, str] | None = None, batch_size: int = 1
) -> tuple[Background[Any], Connection | None]:
    """A sweep by ``driver`` in a thread of its own, one-row batches; its session (None for
    cleanup, which opens its own)."""
    all_settings = {"pgsweep.batch_min": "1", **(settings or {})}
    if driver == "cleanup":
        own = with_settings(dsn, all_settings)
        return Background(lambda: cleanup.cleanup(own, batch_size=batch_size)), None
    conn = sweeper(dsn, all_settings)
    if driver == "procedure":
        return Background(
            lambda: conn.execute("CALL pgsweep.sweep(NULL, %s)", (batch_size,)).fetchone()
        ), conn
    return Background(lambda: runner.sweep_once(conn, 1, batch_size)), conn


def sweep(dsn: str, driver: str, settings: dict[str, str] | None = None) -> Any:
    """A whole sweep by ``driver``, waited for; its result (or its error, raised)."""
    work, conn = start_sweep(dsn, driver, settings, batch_size=5000)
    try:
        return work.result()
    finally:
        if conn is not None:
            conn.close()


def partitioned_events(conn: Connection, table: str) -> None:
    """``table`` range-partitioned on ``at``: one partition entirely past the cutoff (rows 50
    and 40 days old), one straddling it (10 days old, and live); an age rule on ``at``."""
    conn.execute(
        f"CREATE TABLE {table} (label text NOT NULL, at timestamptz NOT NULL)"
        " PARTITION BY RANGE (at)"
    )
    conn.execute(
        f"CREATE TABLE {table}_old PARTITION OF {table}"
        " FOR VALUES FROM (now() - interval '60 days') TO (now() - interval '30 days')"
    )
    conn.execute(
        f"CREATE TABLE {table}_now PARTITION OF {table}"
        " FOR VALUES FROM (now() - interval '30 days') TO (now() + interval '30 days')"
    )
    conn.execute(f"CREATE INDEX ON {table} (at)")
    conn.execute(
        f"INSERT INTO {table} (label, at) SELECT l, now() + d * interval '1 day'"
        " FROM (VALUES ('old 50', -50), ('old 40', -40), ('now 10', -10), ('live', 1)) v(l, d)"
    )
    conn.execute("SELECT pgsweep.add_rule(%s, 'at')", (table,))


def partitions_of(conn: Connection, table: str) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT relid::text FROM pg_partition_tree(%s::regclass) WHERE isleaf ORDER BY 1",
            (table,),
        )
    ]


# --- 1. the rules as they are when each batch starts ------------------------------------


TOKENS_AGES = {
    "gate:1": -30.0,
    "old 25": -25.0,
    "mid 15": -15.0,
    "mid 10": -10.0,
    "recent 5": -5.0,
    "recent 1": -1.0,
    "live": 1.0,
}


@pytest.mark.parametrize("driver", DRIVERS)
def test_longer_keep_for_committed_mid_run_holds_for_the_next_batches(db: str, driver: str) -> None:
    """keep_for made 20 days while the sweep waits in its first batch of a_tokens: the rows
    younger than 20 days are no longer garbage, and the following batches leave them."""
    with connect(db) as conn:
        age_table(conn, "a_tokens", TOKENS_AGES, gate=True)
        with gates(db, [1]) as gate:
            work, session = start_sweep(db, driver)
            gate.wait_at(1)
            conn.execute("SET lock_timeout = '5s'")
            conn.execute("SELECT pgsweep.add_rule('a_tokens', 'at', '20 days')")
            gate.release(1)
            work.result()
        assert labels(conn, "a_tokens") == ["live", "mid 10", "mid 15", "recent 1", "recent 5"], (
            "rows inside the new 20-day retention were deleted by the batches after the change"
        )
        if session is not None:
            session.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_rule_removed_mid_run_deletes_nothing_more(db: str, driver: str) -> None:
    """remove_rule on a_tokens while the sweep waits in its first batch: the batch that was
    under way commits (its row was garbage then), no later batch deletes anything."""
    with connect(db) as conn:
        age_table(conn, "a_tokens", TOKENS_AGES, gate=True)
        with gates(db, [1]) as gate:
            work, session = start_sweep(db, driver)
            gate.wait_at(1)
            conn.execute("SET lock_timeout = '5s'")
            conn.execute("SELECT pgsweep.remove_rule('a_tokens')")
            gate.release(1)
            error = work.error()
        assert error is None or isinstance(error, PgsweepError), error
        kept = sorted(label for label in TOKENS_AGES if label != "gate:1")
        assert labels(conn, "a_tokens") == kept, "rows deleted after their rule was removed"
        if session is not None:
            session.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_rule_removed_mid_run_drops_no_partition(db: str, driver: str) -> None:
    """remove_rule on the partitioned b_events while the sweep is still on a_tokens: when the
    sweep reaches b_events, it drops none of its partitions and deletes none of its rows."""
    with connect(db) as conn:
        age_table(conn, "a_tokens", {"gate:1": -30.0, "old 25": -25.0}, gate=True)
        partitioned_events(conn, "b_events")
        with gates(db, [1]) as gate:
            work, session = start_sweep(db, driver)
            gate.wait_at(1)
            conn.execute("SET lock_timeout = '5s'")
            conn.execute("SELECT pgsweep.remove_rule('b_events')")
            gate.release(1)
            error = work.error()
        assert error is None, f"the sweep failed on a rule removed before it got there: {error}"
        assert partitions_of(conn, "b_events") == ["b_events_now", "b_events_old"], (
            "a partition of a table whose rule was removed mid-run was dropped"
        )
        assert labels(conn, "b_events") == ["live", "now 10", "old 40", "old 50"]
        assert labels(conn, "a_tokens") == []
        if session is not None:
            session.close()
