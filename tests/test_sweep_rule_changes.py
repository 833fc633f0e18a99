"""A sweep (the procedure) while another session changes the rules at its batch boundaries:
keep_for longer or shorter, the rule removed, a rule added on another column, a column added to
the table. No row may be deleted that was live under the rules in force when it was deleted.

Every row of the swept table is a gate (tests/sweep_gates.py), so the test acts while the sweep
waits in a batch that has done its DELETE and not committed. A deletion is dated by its
transaction's start (now() in the audit trigger): a batch reads the rules after it starts, so
rules committed before that hold for it, and a change whose commit falls in a window
[before, after] lets the deletions whose transaction started inside it follow either side.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pgsweep import engine
from tests.pg import connect
from tests.sweep_gates import Background, gates, install_gate, sweeper, wait_until

ACTIONS = ("longer", "shorter", "remove", "add_other", "alter")
ROWS = 24  # days -24 … -1, one row a day, each a gate; other_at = at + 12 days
STEP_DAYS = 8

Connection = psycopg.Connection[Any]
State = dict[str, int]  # column -> keep_for in days (the rules of the table)


@dataclass(frozen=True)
class Change:
    before: dt.datetime
    after: dt.datetime
    state: State  # the rules from this change on


@pytest.fixture(scope="module")
def db(module_db: str) -> str:
    engine.install(module_db)
    return module_db


def make_table(conn: Connection, table: str) -> None:
    conn.execute(
        f"CREATE TABLE {table} (id bigserial PRIMARY KEY, label text NOT NULL,"
        " at timestamptz NOT NULL, other_at timestamptz NOT NULL)"
    )
    conn.execute(f"CREATE INDEX ON {table} (at)")
    conn.execute(f"CREATE INDEX ON {table} (other_at)")
    conn.execute(
        f"INSERT INTO {table} (label, at, other_at)"
        " SELECT 'gate:' || n, now() - (%s - n + 1) * interval '1 day' + interval '1 hour',"
        " now() - (%s - n + 1) * interval '1 day' + interval '1 hour' + interval '12 days'"
        " FROM generate_series(1, %s) n",
        (ROWS, ROWS, ROWS),
    )
    conn.execute(
        f"INSERT INTO {table} (label, at, other_at)"
        " VALUES ('live', now() + interval '1 day', now() + interval '1 day')"
    )
    install_gate(conn, table)
    # The audit dates each deletion by its transaction's start (see the module's docstring).
    conn.execute(
        "ALTER TABLE deleted_row ADD COLUMN IF NOT EXISTS batch_started_at timestamptz"
        " DEFAULT now()"
    )
    conn.execute("SELECT pgsweep.add_rule(%s, 'at', '4 days')", (table,))


def act(dsn: str, table: str, action: str, state: State, number: int) -> tuple[str, State]:
    """The SQL of ``action`` and the rules after it."""
    new = dict(state)
    if action in ("longer", "shorter"):
        days = state.get("at", 0) + (STEP_DAYS if action == "longer" else -STEP_DAYS)
        new["at"] = max(days, 0)
        return f"SELECT pgsweep.add_rule('{table}', 'at', '{new['at']} days')", new
    if action == "remove":
        new.pop("at", None)
        if not new:
            return f"SELECT pgsweep.remove_rule('{table}')", new
        return f"SELECT pgsweep.remove_rule('{table}', 'at')", new
    if action == "add_other":
        new["other_at"] = 0
        return f"SELECT pgsweep.add_rule('{table}', 'other_at')", new
    return f"ALTER TABLE {table} ADD COLUMN added_{number} integer", new


def commit_change(
    dsn: str, watcher: Connection, statement: str, release: Callable[[], None]
) -> None:
    """``statement`` in a session of its own; once it has committed, or waits for the sweep's
    open batch (ALTER TABLE does), ``release`` lets the sweep go on; returns once committed."""
    with connect(dsn) as changer:
        changer_pid = changer.info.backend_pid
        done = Background(lambda: changer.execute(statement))

        def settled() -> bool:
            if done.done():
                return True
            row = watcher.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (changer_pid,)
            ).fetchone()
            return row == ("Lock",)

        wait_until(settled, "the change commits or waits for the sweep")
        release()
        done.result()


def clock(conn: Connection) -> dt.datetime:
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def garbage(row: dict[str, Any], state: State, at: dt.datetime) -> bool:
    return any(
        dt.datetime.fromisoformat(row[column]) < at - dt.timedelta(days=keep)
        for column, keep in state.items()
    )


def run_with_changes(dsn: str, table: str, actions: list[str]) -> None:
    with connect(dsn) as conn, gates(dsn, range(1, ROWS + 1)) as gate:
        make_table(conn, table)
        start = clock(conn)
        state: State = {"at": 4}
        changes = [Change(start, start, dict(state))]
        session = sweeper(dsn)
        work = Background(lambda: session.execute("CALL pgsweep.sweep(%s::regclass, 1)", (table,)))
        for number, action in enumerate(actions):
            at_gate = gate.wait_for_any(work.done)
            if at_gate is None:
                break
            statement, state = act(dsn, table, action, state, number)
            before = clock(conn)
            commit_change(dsn, conn, statement, functools.partial(gate.release, at_gate))
            after = clock(conn)
            changes.append(Change(before, after, dict(state)))
        gate.release_all()
        error = work.error()
        session.close()
        assert error is None or state == {}, f"the sweep failed: {error!r}"
        deleted = conn.execute(
            "SELECT label, row_data, batch_started_at FROM deleted_row WHERE table_name = %s",
            (table,),
        ).fetchall()
    wrong = []
    for label, row, started in deleted:
        in_force = [
            c.state
            for i, c in enumerate(changes)
            if c.before <= started and (i + 1 == len(changes) or started <= changes[i + 1].after)
        ]
        if not any(garbage(row, s, started) for s in in_force):
            wrong.append((label, started, in_force))
    assert wrong == [], f"rows live under the rules in force were deleted: {wrong}"


def test_rule_changes_at_every_batch_boundary_delete_no_live_row(db: str) -> None:
    run_with_changes(db, "a_items", ["longer", "shorter", "add_other", "alter", "longer", "remove"])


EXAMPLES = iter(range(1_000_000))


@settings(
    max_examples=6,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=(HealthCheck.function_scoped_fixture,),
    database=None,
)
@given(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=6))
def test_any_sequence_of_rule_changes_deletes_no_live_row(db: str, actions: list[str]) -> None:
    run_with_changes(db, f"a_items_{next(EXAMPLES)}", actions)
