"""Deciding exactly when the "mid-run" moment of a sweep is, with real sessions.

A gate is a trigger on a swept table: deleting a row labelled ``gate:N`` makes the deleting
transaction wait for the advisory lock (``GATE_CLASS``, N), which the test holds. AFTER ROW
triggers fire at the end of their statement, so when the sweep waits at gate N the batch that
deleted that row has done its whole DELETE and not yet committed: the test then changes what it
likes, commits, and releases the gate; every later batch starts after the change. No sleep
orders anything: the test polls pg_locks for the sweep's wait.

The audit trigger records every deleted row with clock_timestamp() (AFTER DELETE, named to fire
before the gate), so a test can judge each deletion by the rules in force when it was made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import psycopg

from tests.pg import connect

GATE_CLASS = 72_727
# Longest the test waits for a state it expects a session to reach (it is reached in
# milliseconds; the bound only keeps a broken engine from hanging the suite).
WAIT_S = 30.0

Connection = psycopg.Connection[Any]
T = TypeVar("T")

GATE_SQL = """
CREATE OR REPLACE FUNCTION public.sweep_gate() RETURNS trigger LANGUAGE plpgsql
-- The test decides when the batch goes on: past the sweep's own short lock wait (its deletes
-- give way after 20 ms), which would otherwise end the wait at the gate.
SET lock_timeout = 0
AS $$
BEGIN
    IF OLD.label LIKE 'gate:%' THEN
        PERFORM pg_advisory_xact_lock_shared(72727, split_part(OLD.label, ':', 2)::integer);
    END IF;
    RETURN OLD;
END $$;
CREATE TABLE IF NOT EXISTS public.deleted_row (
    table_name text NOT NULL, label text NOT NULL, row_data jsonb NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE OR REPLACE FUNCTION public.audit_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.deleted_row (table_name, label, row_data)
    VALUES (TG_TABLE_NAME, OLD.label, to_jsonb(OLD));
    RETURN OLD;
END $$;
"""


def install_gate(conn: Connection, table: str) -> None:
    """The audit and gate triggers on ``table`` (a name needing no quotes)."""
    conn.execute(GATE_SQL)
    conn.execute(
        f"CREATE TRIGGER a_audit AFTER DELETE ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION public.audit_delete()"
    )
    conn.execute(
        f"CREATE TRIGGER z_gate AFTER DELETE ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION public.sweep_gate()"
    )


class Gates:
    """The test's session holding the gates (all closed from the start)."""

    def __init__(self, dsn: str, numbers: range | list[int]) -> None:
        self.conn = connect(dsn)
        self.open: set[int] = set()
        for n in numbers:
            self.conn.execute("SELECT pg_advisory_lock(%s, %s)", (GATE_CLASS, n))

    def waiting_at(self, pid: int | None = None) -> int | None:
        """The gate a session (any, without pid) waits at now, if any."""
        row = self.conn.execute(
            "SELECT objid::integer FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = %s AND (%s::integer IS NULL OR pid = %s) LIMIT 1",
            (GATE_CLASS, pid, pid),
        ).fetchone()
        return None if row is None else int(row[0])

    def wait_for_any(self, done: Callable[[], bool]) -> int | None:
        """The next gate the sweep waits at, or None once ``done()`` (the sweep ended)."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            gate = self.waiting_at()
            if gate is not None:
                return gate
            if done():
                return None
            time.sleep(0.01)
        raise AssertionError("the sweep neither reached a gate nor ended")

    def wait_at(self, gate: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while self.waiting_at() != gate:
            if time.monotonic() > deadline:
                raise AssertionError(f"the sweep never reached gate {gate}")
            time.sleep(0.01)

    def release(self, gate: int) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", (GATE_CLASS, gate))
        self.open.add(gate)

    def release_all(self) -> None:
        self.conn.execute("SELECT pg_advisory_unlock_all()")

    def close(self) -> None:
        self.conn.close()


@contextmanager
def gates(dsn: str, numbers: range | list[int]) -> Iterator[Gates]:
    held = Gates(dsn, numbers)
    try:
        yield held
    finally:
        held.release_all()
        held.close()


class Background(Generic[T]):
    """``work`` in a thread; ``result()`` joins it and returns its value or raises its error."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except BaseException as exc:  # handed to the test's thread by result()
            self._error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> T:
        self._thread.join(WAIT_S)
        if self._thread.is_alive():
            raise AssertionError("the background session did not finish")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def error(self) -> BaseException | None:
        self._thread.join(WAIT_S)
        if self._thread.is_alive():
            raise AssertionError("the background session did not finish")
        return self._error


def sweeper(dsn: str, settings: dict[str, str] | None = None) -> Connection:
    """A session for a sweep: batches of one row (pgsweep.batch_min = 1) unless told else."""
    conn = connect(dsn)
    for name, value in {"pgsweep.batch_min": "1", **(settings or {})}.items():
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    return conn


def pid_of(conn: Connection) -> int:
    return int(conn.info.backend_pid)


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def labels(conn: Connection, table: str) -> list[str]:
    return [str(r[0]) for r in conn.execute(f"SELECT label FROM {table} ORDER BY label")]


def advisory_locks_of(conn: Connection, pid: int) -> list[tuple[Any, ...]]:
    """Advisory locks held by session ``pid`` (asked from another session)."""
    return conn.execute(
        "SELECT classid, objid, objsubid FROM pg_locks"
        " WHERE locktype = 'advisory' AND granted AND pid = %s",
        (pid,),
    ).fetchall()


def age_table(
    conn: Connection,
    table: str,
    ages_days: dict[str, float],
    *,
    keep_for: str = "0",
    gate: bool = False,
) -> None:
    """``table`` (label, at timestamptz) with one row per label ``at`` that many days from
    now() (negative: the past), an index on ``at`` and an age rule on it."""
    conn.execute(
        f"CREATE TABLE {table} (id bigserial PRIMARY KEY, label text NOT NULL,"
        " at timestamptz NOT NULL)"
    )
    conn.execute(f"CREATE INDEX ON {table} (at)")
    for label, days in ages_days.items():
        conn.execute(
            f"INSERT INTO {table} (label, at) VALUES (%s, now() + %s * interval '1 day')",
            (label, days),
        )
    conn.execute("SELECT pgsweep.add_rule(%s, 'at', %s::interval)", (table, keep_for))
    if gate:
        install_gate(conn, table)
