"""How the engine's DELETEs meet row-level security and the app's row locks (engine 1.2).

* Row-level security: an orphan rule reads the parent table in its ``NOT EXISTS``. Read through
  a tenant policy, every child of a parent the policy hides looked like an orphan and was
  deleted (1.1). Now every delete runs with ``row_security = off``: a role the policy applies to
  (the tables' owner under ``FORCE ROW LEVEL SECURITY``, a non-superuser) gets an error and
  nothing is deleted; the owner without FORCE deletes exactly the real orphan.
* Bounded waits: the SKIP LOCKED pass skips the rows the app holds, but an ``ON DELETE CASCADE``
  into a child row the app holds (or has updated, not committed) waited without limit (1.1),
  and the app's next UPDATE of the parent queued behind the sweep. Now it waits as briefly as the
  first pass and raises ``lock_not_available`` to its caller. Two real connections (app, sweep)
  and a third that reads ``pg_blocking_pids``; no timing assertion.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgsweep import engine
from tests.pg import connect
from tests.roles import temporary_roles

TENANT_SCHEMA = """
CREATE TABLE account (id bigint PRIMARY KEY, tenant text NOT NULL);
CREATE TABLE note (id bigint PRIMARY KEY, account_id bigint, label text NOT NULL);
CREATE INDEX ON note (account_id);
INSERT INTO account VALUES (1, 'a'), (2, 'b');
-- note 3's account is gone: the one real orphan
INSERT INTO note VALUES (1, 1, 'of tenant a'), (2, 2, 'of tenant b'), (3, 3, 'orphan');
ALTER TABLE account ENABLE ROW LEVEL SECURITY;
ALTER TABLE account FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_only ON account USING (tenant = current_setting('app.tenant', true));
"""


def notes(dsn: str) -> list[str]:
    with connect(dsn) as conn:
        return [str(r[0]) for r in conn.execute("SELECT label FROM note ORDER BY id").fetchall()]


@pytest.fixture
def tenant_db(fresh_db: str) -> Any:
    """The engine and the tables owned by a plain (non-superuser) role, the sweeper."""
    with temporary_roles(fresh_db, "sweeper") as roles:
        sweeper = roles["sweeper"]
        with connect(fresh_db) as conn:
            conn.execute(
                sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                    sql.Identifier(str(conn.info.dbname)), sql.Identifier(sweeper.name)
                )
            )
            conn.execute(
                sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(sweeper.name))
            )
        engine.install(sweeper.dsn)
        with connect(sweeper.dsn) as conn:
            conn.execute(TENANT_SCHEMA)
            conn.execute("SELECT pgsweep.add_orphan_rule('note', 'account_id', 'account', 'id')")
        yield fresh_db, sweeper.dsn


def test_a_role_a_policy_applies_to_gets_an_error_not_the_children_of_hidden_parents_deleted(
    tenant_db: tuple[str, str],
) -> None:
    admin, sweeper = tenant_db
    with connect(sweeper) as conn:
        conn.execute("SET app.tenant = 'a'")  # account 2 is hidden from this session
        # The sweep's step fails on it, says so and records it (the run goes on, 1.2).
        conn.execute("CALL pgsweep.sweep('note')")
        (error,) = conn.execute(
            "SELECT rr.error FROM pgsweep.run_rule rr WHERE rr.table_name = 'public.note'"
            " ORDER BY rr.started_at DESC LIMIT 1"
        ).fetchone() or (None,)
        assert error is not None
        assert "row-level security" in error
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("SELECT * FROM pgsweep.garbage_counts('note')")
    assert notes(admin) == ["of tenant a", "of tenant b", "orphan"]


def test_the_owner_without_force_sweeps_exactly_the_real_orphan(tenant_db: tuple[str, str]) -> None:
    admin, sweeper = tenant_db
    with connect(sweeper) as conn:
        conn.execute("ALTER TABLE account NO FORCE ROW LEVEL SECURITY")
        conn.execute("SET app.tenant = 'a'")
        counted = conn.execute("SELECT garbage FROM pgsweep.garbage_counts('note')").fetchone()
        assert counted == (1,)
        conn.execute("CALL pgsweep.sweep('note')")
    assert notes(admin) == ["of tenant a", "of tenant b"]


def test_a_bypassrls_role_sweeps_exactly_the_real_orphan(tenant_db: tuple[str, str]) -> None:
    admin, sweeper = tenant_db
    with connect(admin) as conn:
        role = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'account'"
        ).fetchone()
        assert role is not None
        conn.execute(sql.SQL("ALTER ROLE {} BYPASSRLS").format(sql.Identifier(str(role[0]))))
    with connect(sweeper) as conn:
        conn.execute("CALL pgsweep.sweep('note')")
    assert notes(admin) == ["of tenant a", "of tenant b"]


CASCADE_SCHEMA = """
CREATE TABLE session (id bigint PRIMARY KEY, expires_at timestamptz NOT NULL,
    hits integer DEFAULT 0);
CREATE INDEX ON session (expires_at);
CREATE TABLE session_event (id bigint PRIMARY KEY,
    session_id bigint NOT NULL REFERENCES session ON DELETE CASCADE, seen integer DEFAULT 0);
CREATE INDEX ON session_event (session_id);
INSERT INTO session VALUES (1, now() - interval '1 day'), (2, now() - interval '1 day'),
                           (3, now() + interval '1 day');
INSERT INTO session_event VALUES (10, 1), (20, 2), (30, 3);
SELECT pgsweep.add_rule('session', 'expires_at');
"""

APP_HOLDS = {
    "for update": "SELECT * FROM session_event WHERE id = 10 FOR UPDATE",
    "updated, not committed": "UPDATE session_event SET seen = seen + 1 WHERE id = 10",
}


@pytest.mark.parametrize("hold", sorted(APP_HOLDS))
def test_a_cascade_into_a_row_the_app_holds_gives_way_and_never_blocks_the_app(
    fresh_db: str, hold: str
) -> None:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(CASCADE_SCHEMA)
    with (
        connect(fresh_db, autocommit=False) as app,
        connect(fresh_db, autocommit=False) as sweep,
        connect(fresh_db) as watcher,
    ):
        app.execute(APP_HOLDS[hold])  # the app's transaction stays open
        app_pid, sweep_pid = app.info.backend_pid, sweep.info.backend_pid
        outcome: dict[str, BaseException | int] = {}

        def run() -> None:
            try:
                row = sweep.execute(
                    "SELECT pgsweep.delete_rows(r.table_name, pgsweep.rule_condition(r), r)"
                    " FROM pgsweep.expiry_rule r"
                ).fetchone()
                assert row is not None
                outcome["deleted"] = int(row[0])
            except psycopg.Error as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        worker.join(timeout=30)  # generous: the engine's wait is milliseconds
        if worker.is_alive():  # waiting without limit (1.1): free it, then fail
            watcher.execute("SELECT pg_cancel_backend(%s)", (sweep_pid,))
            worker.join(timeout=30)
            pytest.fail("the sweep waited on the app's row without limit")
        assert isinstance(outcome.get("error"), psycopg.errors.LockNotAvailable), outcome
        sweep.rollback()
        # The sweep holds nothing now: the app's UPDATE of the parent goes straight through.
        blockers = watcher.execute("SELECT pg_blocking_pids(%s)", (app_pid,)).fetchone()
        assert blockers == ([],)
        held = watcher.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND relation = 'session'::regclass",
            (sweep_pid,),
        ).fetchone()
        assert held == (0,)
        app.execute("UPDATE session SET hits = hits + 1 WHERE id = 1")
        app.commit()
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM session").fetchone() == (3,)
        # once the app is done, the sweep takes both expired sessions and their events
        conn.execute("CALL pgsweep.sweep('session')")
        assert conn.execute("SELECT id FROM session").fetchall() == [(3,)]
        assert conn.execute("SELECT id FROM session_event").fetchall() == [(30,)]


def test_a_held_garbage_row_is_still_skipped_and_the_rest_deleted(fresh_db: str) -> None:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(CASCADE_SCHEMA)
    with connect(fresh_db, autocommit=False) as app, connect(fresh_db) as sweep:
        app.execute("SELECT * FROM session WHERE id = 1 FOR UPDATE")
        deleted = sweep.execute(
            "SELECT pgsweep.delete_rows(r.table_name, pgsweep.rule_condition(r), r)"
            " FROM pgsweep.expiry_rule r"
        ).fetchone()
        assert deleted == (1,)
        app.rollback()
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT id FROM session ORDER BY id").fetchall() == [(1,), (3,)]
