"""Run history (engine 1.4): a function call that deletes nothing stays lean.

Such a call (the app's frequent cleanup_*()) writes its one pgsweep.idle_run row and nothing
else, and housekeeping only one time in 4,096 (1.3 tidied the history at one run_id in 64 even
then). The history is tidied in a database swept only by function calls: by one call in 64 of
those that delete, which write anyway, and by one idle call in 4,096. A rule recorded twice in
one pending run is one entry of its idle record, so that run_close writes it without grouping
and the rule's run counts once.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pgsweep import engine
from tests import own_tables
from tests.own_tables import ATTRIBUTES, SESSIONS, SESSIONS_COLUMN
from tests.pg import connect

SESSIONS_KEY = "public.sessions"


@pytest.fixture
def app_db(fresh_db: str) -> str:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
    return fresh_db


def one(conn: psycopg.Connection[Any], query: str, *args: object) -> tuple[Any, ...]:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return tuple(row)


def old_run(conn: psycopg.Connection[Any]) -> int:
    """A finished run older than the history keeps (30 days): housekeeping deletes it."""
    (run_id,) = one(
        conn,
        "INSERT INTO pgsweep.run (started_at, ended_at, invoked_by, status)"
        " VALUES (now() - interval '40 days', now() - interval '40 days', 'procedure',"
        "         'succeeded') RETURNING run_id",
    )
    return int(run_id)


def next_run_id_is_a_multiple_of_64(conn: psycopg.Connection[Any]) -> None:
    (last,) = one(conn, "SELECT last_value FROM pgsweep.run_run_id_seq")
    conn.execute("SELECT setval('pgsweep.run_run_id_seq', %s)", ((last // 64 + 2) * 64 - 1,))


def exists(conn: psycopg.Connection[Any], run_id: int) -> bool:
    return bool(one(conn, "SELECT count(*) FROM pgsweep.run WHERE run_id = %s", run_id)[0])


def test_a_call_that_deletes_nothing_never_tidies_the_history(app_db: str) -> None:
    with connect(app_db) as conn:
        assert one(conn, f"SELECT pgsweep.sweep_table('{SESSIONS}')")[0] > 0
        kept = old_run(conn)
        next_run_id_is_a_multiple_of_64(conn)
        assert one(conn, f"SELECT pgsweep.sweep_table('{SESSIONS}')") == (0,)
        (run_id,) = one(conn, "SELECT max(run_id) FROM pgsweep.idle_run")
        assert run_id % 64 == 0  # the run that 1.3 would have tidied from
        assert exists(conn, kept)
        assert one(conn, "SELECT count(*) FROM pgsweep.idle_run") == (1,)


def test_a_database_swept_only_by_function_calls_is_still_tidied_by_those_that_delete(
    app_db: str,
) -> None:
    with connect(app_db) as conn:
        conn.execute(f"SELECT pgsweep.sweep_table('{SESSIONS}')")
        for _ in range(2):
            conn.execute(f"SELECT pgsweep.sweep_table('{SESSIONS}')")  # idle
        gone = old_run(conn)
        conn.execute(
            f"UPDATE {SESSIONS} SET \"expiresAt\" = (now() AT TIME ZONE 'UTC') - interval '1 hour'"
            f" WHERE id = (SELECT min(id) FROM {SESSIONS})"
        )
        next_run_id_is_a_multiple_of_64(conn)
        assert one(conn, f"SELECT pgsweep.sweep_table('{SESSIONS}')") == (1,)
        assert not exists(conn, gone)
        # The idle runs were folded into the counters, each rule's newest kept.
        assert one(conn, "SELECT count(*) FROM pgsweep.idle_run") == (1,)


def test_one_idle_call_in_4096_tidies_a_history_only_function_calls_write(app_db: str) -> None:
    """An app whose calls mostly find nothing: the history is tidied by the rare idle call too,
    so idle runs do not pile up for weeks between deleting calls."""
    with connect(app_db) as conn:
        assert one(conn, f"SELECT pgsweep.sweep_table('{SESSIONS}')")[0] > 0
        gone = old_run(conn)
        (last,) = one(conn, "SELECT last_value FROM pgsweep.run_run_id_seq")
        conn.execute(
            "SELECT setval('pgsweep.run_run_id_seq', %s)", ((last // 4096 + 1) * 4096 - 1,)
        )
        assert one(conn, f"SELECT pgsweep.sweep_table('{SESSIONS}')") == (0,)
        (run_id,) = one(conn, "SELECT max(run_id) FROM pgsweep.idle_run")
        assert run_id % 4096 == 0
        assert not exists(conn, gone)


def test_a_rule_recorded_twice_in_an_idle_run_is_one_entry_and_counts_one_run(
    app_db: str,
) -> None:
    with connect(app_db) as conn:
        conn.execute(f"SELECT pgsweep.sweep_table('{SESSIONS}')")
        conn.execute(f"SELECT pgsweep.sweep_table('{ATTRIBUTES}')")
        (runs_before,) = one(
            conn, "SELECT runs_total FROM pgsweep.rule_counters WHERE table_name = %s",
            SESSIONS_KEY,
        )
        with conn.transaction():
            (run_id,) = one(conn, "SELECT pgsweep.run_begin('function', false)")
            for table, column in ((SESSIONS, SESSIONS_COLUMN), (ATTRIBUTES, "ttl_timestamp"),
                                  (SESSIONS, SESSIONS_COLUMN)):
                conn.execute(
                    "SELECT pgsweep.run_record(%s, %s, %s, 0)", (run_id, table, column)
                )
            conn.execute("SELECT pgsweep.run_end(%s)", (run_id,))
        assert one(
            conn,
            "SELECT table_names, column_names, batches FROM pgsweep.idle_run"
            " WHERE run_id = %s",
            run_id,
        ) == ([SESSIONS_KEY, ATTRIBUTES], [SESSIONS_COLUMN, "ttl_timestamp"], [2, 1])
        assert one(
            conn, "SELECT runs_total FROM pgsweep.rule_counters WHERE table_name = %s",
            SESSIONS_KEY,
        ) == (runs_before + 1,)
        assert one(conn, "SELECT count(*) FROM pgsweep.run WHERE run_id = %s", run_id) == (0,)


def test_a_rule_recorded_idle_then_with_deletes_is_written_with_both_records(
    app_db: str,
) -> None:
    with connect(app_db) as conn:
        conn.execute(f"SELECT pgsweep.sweep_table('{SESSIONS}')")
        with conn.transaction():
            (run_id,) = one(conn, "SELECT pgsweep.run_begin('function', false)")
            for deleted in (0, 0, 3):
                conn.execute(
                    "SELECT pgsweep.run_record(%s, %s, %s, %s)",
                    (run_id, SESSIONS, SESSIONS_COLUMN, deleted),
                )
            conn.execute("SELECT pgsweep.run_end(%s)", (run_id,))
        assert one(
            conn,
            "SELECT rr.rows_deleted, rr.batches, r.batches, r.status FROM pgsweep.run_rule rr"
            " JOIN pgsweep.run r USING (run_id) WHERE rr.run_id = %s",
            run_id,
        ) == (3, 3, 3, "succeeded")
        assert one(conn, "SELECT count(*) FROM pgsweep.idle_run WHERE run_id = %s", run_id) == (
            0,
        )
