"""Dependents (engine 1.2): what a rule's delete does to the rows referencing its garbage.

Django (and django-oauth-toolkit) make every foreign key NO ACTION DEFERRABLE INITIALLY DEFERRED
in the database and do CASCADE or SET_NULL in the ORM. One referenced garbage row then fails a
batch, at COMMIT. Tables shaped like that: ``app_session`` (the rule's table, expired by
``expire_date``), ``app_event`` (``session_id`` NOT NULL, the ORM's CASCADE), ``app_visit``
(``session_id`` nullable, the ORM's SET_NULL), ``app_event_note`` (references an event: one level
further). Exact counts after every driver: the range batches of ``CALL pgsweep.sweep()``, their
tie-value pass, the SKIP LOCKED pass, ``sweep_table``, the insert trigger, and ``pgsweep cleanup``
with its ``--dry-run --estimate``.
"""

from __future__ import annotations

import subprocess
from typing import Any

import psycopg
import pytest

from pgsweep import cleanup, engine
from tests.engine_downgrade import downgrade_to
from tests.pg import connect, tolerate_lag

DJANGO = "DEFERRABLE INITIALLY DEFERRED"
SCHEMA = f"""
CREATE TABLE app_session (id bigint PRIMARY KEY, expire_date timestamptz NOT NULL);
CREATE INDEX ON app_session (expire_date);
CREATE TABLE app_event (id bigint PRIMARY KEY,
    session_id bigint NOT NULL CONSTRAINT app_event_session_fk REFERENCES app_session {DJANGO});
CREATE INDEX ON app_event (session_id);
CREATE TABLE app_visit (id bigint PRIMARY KEY,
    session_id bigint CONSTRAINT app_visit_session_fk REFERENCES app_session {DJANGO});
CREATE INDEX ON app_visit (session_id);
CREATE TABLE app_event_note (id bigint PRIMARY KEY,
    event_id bigint NOT NULL CONSTRAINT app_event_note_event_fk REFERENCES app_event {DJANGO});
CREATE INDEX ON app_event_note (event_id);
-- sessions 1-3 expired (3 referenced by nothing), 4-5 live
INSERT INTO app_session VALUES (1, now() - interval '2 days'), (2, now() - interval '1 day'),
    (3, now() - interval '1 hour'), (4, now() + interval '1 day'), (5, now() + interval '2 days');
INSERT INTO app_event VALUES (10, 1), (11, 1), (20, 2), (40, 4), (50, 5);
INSERT INTO app_visit VALUES (100, 1), (200, 2), (400, 4), (900, NULL);
INSERT INTO app_event_note VALUES (1000, 10), (4000, 40);
SELECT pgsweep.add_rule('app_session', 'expire_date');
"""
DOWNGRADE = str(engine.release_file("1.2", "downgrade.sql"))
EVENT, VISIT, NOTE = "app_event_session_fk", "app_visit_session_fk", "app_event_note_event_fk"


@pytest.fixture
def django_db(fresh_db: str) -> str:
    engine.install(fresh_db)
    tolerate_lag(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(SCHEMA)
    return fresh_db


def ids(conn: psycopg.Connection[Any], table: str) -> list[Any]:
    return [r[0] for r in conn.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()]


def visits(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT id, session_id FROM app_visit ORDER BY id").fetchall()


def depend(conn: psycopg.Connection[Any], constraint: str, action: str | None) -> None:
    conn.execute(
        "SELECT pgsweep.set_dependent('app_session', 'expire_date', %s, %s)", (constraint, action)
    )


def handle_all(conn: psycopg.Connection[Any]) -> None:
    depend(conn, EVENT, "delete")
    depend(conn, VISIT, "set null")
    depend(conn, NOTE, "delete")  # one level further: the notes of the events deleted


def assert_handled(conn: psycopg.Connection[Any]) -> None:
    assert ids(conn, "app_session") == [4, 5]
    assert ids(conn, "app_event") == [40, 50]
    assert ids(conn, "app_event_note") == [4000]
    assert visits(conn) == [(100, None), (200, None), (400, 4), (900, None)]


def test_in_the_callers_transaction_garbage_a_deferred_key_references_stays(
    django_db: str,
) -> None:
    # 1.2 made the deferred keys IMMEDIATE in the caller's transaction: the DELETE failed on
    # sessions 1 and 2, and the rule's other garbage (session 3) stayed with them.
    with connect(django_db, autocommit=False) as conn:
        assert conn.execute("SELECT pgsweep.sweep_table('app_session')").fetchone() == (1,)
        conn.commit()
        assert ids(conn, "app_session") == [1, 2, 4, 5]


def test_sweep_table_leaves_the_apps_own_deferred_checks_deferred(django_db: str) -> None:
    # The app's transaction inserts a child before its parent, legal under a deferred key. 1.2's
    # sweep_table had made the key IMMEDIATE for the rest of the transaction: the insert failed.
    with connect(django_db, autocommit=False) as conn:
        conn.execute("SELECT pgsweep.sweep_table('app_session')")
        conn.execute("INSERT INTO app_event VALUES (60, 6)")
        conn.execute("INSERT INTO app_session VALUES (6, now() + interval '1 day')")
        conn.commit()
        assert ids(conn, "app_event") == [10, 11, 20, 40, 50, 60]


def test_a_child_the_callers_transaction_added_keeps_its_expired_parent(django_db: str) -> None:
    notices: list[str] = []
    with connect(django_db, autocommit=False) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("INSERT INTO app_visit VALUES (300, 3)")  # checked at COMMIT
        assert conn.execute("SELECT pgsweep.sweep_table('app_session')").fetchone() == (0,)
        conn.commit()
        assert ids(conn, "app_session") == [1, 2, 3, 4, 5]
    assert not [n for n in notices if "failed" in n]


def test_deferred_keys_onto_a_dependents_rows_leave_the_rule_to_the_batched_sweep(
    django_db: str,
) -> None:
    with connect(django_db) as conn:
        depend(conn, EVENT, "delete")  # event 10's note references it through a deferred key
    warnings: list[str] = []
    with connect(django_db, autocommit=False) as conn:
        conn.add_notice_handler(lambda d: warnings.append(d.message_primary or ""))
        assert conn.execute("SELECT pgsweep.sweep_table('app_session')").fetchone() == (0,)
        conn.commit()
        assert ids(conn, "app_session") == [1, 2, 3, 4, 5]
    assert any("skipped" in w and "deferred foreign key" in w for w in warnings), warnings
    with connect(django_db) as conn:
        # In its own transactions the batched sweep checks the key in the step: the step fails
        # and is recorded, as in 1.2, and nothing of the batch is deleted.
        conn.execute("CALL pgsweep.sweep()")
        assert ids(conn, "app_event_note") == [1000, 4000]
        assert ids(conn, "app_session") == [1, 2, 3, 4, 5]
        status = conn.execute("SELECT status FROM pgsweep.run ORDER BY run_id DESC LIMIT 1")
        assert status.fetchone() == ("failed",)


def test_the_scheduled_sweep_deletes_and_sets_null_the_dependents_in_the_same_statement(
    django_db: str,
) -> None:
    with connect(django_db) as conn:
        handle_all(conn)
        conn.execute("CALL pgsweep.sweep('app_session')")
        assert_handled(conn)


def test_the_tie_value_pass_acts_on_dependents_too(django_db: str) -> None:
    with connect(django_db) as conn:
        # every expired session shares one value: more than a batch of 2 at it
        conn.execute("UPDATE app_session SET expire_date = now() - interval '3 days' WHERE id <= 3")
        handle_all(conn)
        conn.execute("CALL pgsweep.sweep('app_session', 2)")
        assert_handled(conn)


def test_sweep_table_acts_on_dependents_in_the_callers_transaction(django_db: str) -> None:
    with connect(django_db) as conn:
        handle_all(conn)
        assert conn.execute("SELECT pgsweep.sweep_table('app_session')").fetchone() == (3,)
        assert_handled(conn)


def test_the_skip_locked_pass_acts_on_dependents_and_leaves_the_held_row(django_db: str) -> None:
    with connect(django_db) as conn:
        handle_all(conn)
    with connect(django_db, autocommit=False) as app, connect(django_db) as sweep:
        app.execute("SELECT * FROM app_session WHERE id = 1 FOR UPDATE")
        deleted = sweep.execute(
            "SELECT pgsweep.delete_rows(r.table_name, pgsweep.rule_condition(r), r)"
            " FROM pgsweep.expiry_rule r"
        ).fetchone()
        assert deleted == (2,)
        app.rollback()
        assert ids(sweep, "app_session") == [1, 4, 5]
        assert ids(sweep, "app_event") == [10, 11, 40, 50]
        assert ids(sweep, "app_event_note") == [1000, 4000]
        assert visits(sweep) == [(100, 1), (200, None), (400, 4), (900, None)]


def test_the_insert_trigger_acts_on_dependents_and_leaves_an_unhandled_deferred_key_alone(
    django_db: str,
) -> None:
    with connect(django_db) as conn:
        conn.execute("CREATE TABLE login (id bigint)")
        conn.execute(
            "CREATE TRIGGER sweep AFTER INSERT ON app_session FOR EACH STATEMENT"
            " EXECUTE FUNCTION pgsweep.sweep_on_insert('expire_date', '10', '0')"
        )
        # the events' key is unhandled: a delete would fail the app's own COMMIT, so none
        conn.execute("INSERT INTO app_session VALUES (6, now() + interval '1 day')")
        assert ids(conn, "app_session") == [1, 2, 3, 4, 5, 6]
        handle_all(conn)
        conn.execute("INSERT INTO app_session VALUES (7, now() + interval '1 day')")
        assert ids(conn, "app_session") == [4, 5, 6, 7]
        assert ids(conn, "app_event") == [40, 50]
        assert visits(conn) == [(100, None), (200, None), (400, 4), (900, None)]


def test_keep_keeps_referenced_garbage_and_counts_agree(django_db: str) -> None:
    with connect(django_db) as conn:
        depend(conn, EVENT, "keep")
        depend(conn, VISIT, "keep")
        counted = conn.execute("SELECT garbage FROM pgsweep.garbage_counts('app_session')")
        assert counted.fetchone() == (1,)  # session 3 only: 1 and 2 are referenced
        conn.execute("CALL pgsweep.sweep('app_session')")
        assert ids(conn, "app_session") == [1, 2, 4, 5]
        assert ids(conn, "app_event") == [10, 11, 20, 40, 50]


def test_the_estimate_foresees_the_failure_then_a_clean_run_once_dependents_are_set(
    django_db: str,
) -> None:
    failing = cleanup.estimate(django_db)
    (rule,) = failing.rules
    assert rule.error is not None  # 1.1: no error, the sample was rolled back unchecked
    assert "foreign key" in rule.error
    with connect(django_db) as conn:
        assert ids(conn, "app_session") == [1, 2, 3, 4, 5]
        handle_all(conn)
    clean = cleanup.estimate(django_db)
    (rule,) = clean.rules
    assert rule.error is None
    assert rule.sample_rows == 3
    assert cleanup.cleanup(django_db).total == 3
    with connect(django_db) as conn:
        assert_handled(conn)


def test_set_dependent_refuses_what_it_cannot_do(django_db: str) -> None:
    with connect(django_db) as conn:
        with pytest.raises(psycopg.errors.UndefinedObject):
            depend(conn, "no_such_fk", "delete")
        with pytest.raises(psycopg.errors.UndefinedObject):
            depend(conn, NOTE, "delete")  # references app_event, not (yet) a dependent
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="NOT NULL"):
            depend(conn, EVENT, "set null")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown"):
            depend(conn, EVENT, "cascade")
        with pytest.raises(psycopg.errors.NoDataFound):
            conn.execute("SELECT pgsweep.set_dependent('app_event', 'id', %s, 'delete')", (NOTE,))
        depend(conn, EVENT, "delete")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="keep"):
            depend(conn, NOTE, "keep")
        depend(conn, EVENT, "keep")  # changes the action
        rows = conn.execute(
            "SELECT table_name, referencing_table, constraint_name, action, deferred, problem"
            " FROM pgsweep.dependents"
        ).fetchall()
        assert rows == [("app_session", "app_event", EVENT, "keep", True, None)]
        depend(conn, EVENT, None)
        assert conn.execute("SELECT count(*) FROM pgsweep.rule_dependent").fetchone() == (0,)


def test_a_dependent_goes_with_its_rule(django_db: str) -> None:
    with connect(django_db) as conn:
        handle_all(conn)
        assert conn.execute("SELECT count(*) FROM pgsweep.rule_dependent").fetchone() == (3,)
        conn.execute("SELECT pgsweep.remove_rule('app_session')")
        assert conn.execute("SELECT count(*) FROM pgsweep.rule_dependent").fetchone() == (0,)


def test_the_downgrade_to_1_1_refuses_while_a_dependent_is_registered(django_db: str) -> None:
    downgrade_to(django_db, "1.2")
    with connect(django_db) as conn:
        depend(conn, EVENT, "delete")
    refused = subprocess.run(
        ["psql", "-X", "-q", "-d", django_db, "-f", DOWNGRADE],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert "has a dependent" in refused.stderr
    with connect(django_db) as conn:
        assert conn.execute("SELECT pgsweep.version()").fetchone() == ("1.2",)
        depend(conn, EVENT, None)
    done = subprocess.run(
        ["psql", "-X", "-q", "-d", django_db, "-f", DOWNGRADE],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    with connect(django_db) as conn:
        assert conn.execute("SELECT pgsweep.version()").fetchone() == ("1.1",)
        assert conn.execute("SELECT to_regclass('pgsweep.rule_dependent')").fetchone() == (None,)
