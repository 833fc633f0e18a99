"""Run history (engine 1.3): the recorders' pending run cannot be forged.

A function run that deletes nothing keeps its state in the transaction's setting
pgsweep.pending_run until it ends (run_begin with p_commits false). Any session may set that
setting; in 1.2 the SECURITY DEFINER recorders trusted it, so a role allowed only to EXECUTE
the engine's routines wrote runs of its choosing (ids, figures, status) into the history and
took the run_ids the sequence hands out next, failing the owner's sweeps on run_pkey.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from pgsweep import engine
from tests import own_tables
from tests.pg import connect
from tests.roles import temporary_roles
from tests.test_run_history_1_2 import grant_sweeping


@pytest.fixture
def app_db(fresh_db: str) -> str:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
    return fresh_db


def forged(run_id: int) -> str:
    return json.dumps(
        {
            "run_id": run_id,
            "invoked_by": "scheduler",
            "started_at": "2026-01-01T00:00:00+00:00",
            "written": False,
            "rules": [],
        }
    )


def runs(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM pgsweep.run").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("drew_a_run_first", [False, True])
def test_a_forged_pending_run_is_refused_by_every_recorder(
    app_db: str, drew_a_run_first: bool
) -> None:
    with connect(app_db) as conn:
        before = runs(conn)
    with temporary_roles(app_db, "sweeper") as roles:
        grant_sweeping(app_db, roles["sweeper"].name)
        with connect(roles["sweeper"].dsn) as sweeper:
            if drew_a_run_first:  # a real run_id drawn in this session, then another forged
                sweeper.execute("SELECT pgsweep.run_end(pgsweep.run_begin('cli'))")
            for call in (
                "SELECT pgsweep.run_record(900000001, 'sessions', 'expires_at', 1000000000)",
                "SELECT pgsweep.run_end(900000001, 'succeeded')",
                "SELECT pgsweep.run_begin('procedure')",
            ):
                with sweeper.transaction():
                    sweeper.execute(
                        "SELECT set_config('pgsweep.pending_run', %s, true)", (forged(900000001),)
                    )
                    with pytest.raises(psycopg.Error):
                        sweeper.execute(call)
            # Ids the sequence will hand out next cannot be taken either.
            for run_id in range(1, 20):
                with sweeper.transaction():
                    sweeper.execute(
                        "SELECT set_config('pgsweep.pending_run', %s, true)", (forged(run_id),)
                    )
                    with pytest.raises(psycopg.Error):
                        sweeper.execute(
                            "SELECT pgsweep.run_record(%s, 'sessions', 'expires_at', 1)", (run_id,)
                        )
    with connect(app_db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pgsweep.run"
            " WHERE run_id = 900000001 OR rows_deleted >= 1000000000"
        ).fetchone() == (0,)
        assert runs(conn) == before + (1 if drew_a_run_first else 0)
        conn.execute("CALL pgsweep.sweep()")  # the owner's next runs draw their ids unhindered
        conn.execute("CALL pgsweep.sweep()")
        assert conn.execute(
            "SELECT count(*) FROM pgsweep.run"
            " WHERE invoked_by = 'procedure' AND status = 'succeeded'"
        ).fetchone() == (2,)


def test_the_runs_a_session_really_begins_are_recorded_as_before(app_db: str) -> None:
    with connect(app_db, autocommit=False) as conn:
        deleted = conn.execute("SELECT pgsweep.sweep_table('sessions')").fetchone()
        assert deleted is not None
        assert deleted[0] > 0
        assert conn.execute("SELECT pgsweep.sweep_table('sessions')").fetchone() == (0,)
        conn.commit()
        assert conn.execute(
            "SELECT count(*) FROM pgsweep.run WHERE invoked_by = 'function'"
        ).fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM pgsweep.idle_run").fetchone() == (1,)
