"""Edges found by a review of engine 1.1, each proven on a real server: a char(n) column walked
in batches, an archive that would cut values short, a cascade into a row the app holds (the
insert trigger must not wait for it), a sweep cancelled in the middle of a batch (nothing held
after), and the run history written only by the session that began a run."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from pgsweep import engine
from tests.pg import connect


@pytest.fixture
def db(fresh_db: str) -> str:
    engine.install(fresh_db)
    return fresh_db


def test_a_char_column_walked_in_batches_sweeps_every_garbage_row(db: str) -> None:
    # The bounds handed from batch to batch are cast to bpchar: as char(1) ("character") every
    # bound would be cut to its first letter and the sweep would walk in place.
    with connect(db) as conn:
        conn.execute("CREATE TABLE tok (t char(3) PRIMARY KEY, used boolean NOT NULL)")
        conn.execute("CREATE INDEX ON tok (used)")
        conn.execute(
            "INSERT INTO tok SELECT chr(97 + a) || chr(97 + b) || chr(97 + c), (a + b + c) % 2 = 0"
            " FROM generate_series(0, 5) a, generate_series(0, 5) b, generate_series(0, 5) c"
        )
        conn.execute("SELECT pgsweep.add_condition_rule('tok', 't', 'used')")
        conn.execute("SET pgsweep.pacing = off")
        conn.execute("SET pgsweep.max_run_time = '30s'")  # a loop would stop here, not hang
        (deleted,) = conn.execute("CALL pgsweep.sweep('tok', 7)").fetchone() or (None,)
        assert deleted == 108  # of 216, those whose letters sum to an even number
        assert conn.execute("SELECT count(*) FROM tok WHERE used").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM tok").fetchone() == (108,)


def test_an_archive_whose_column_would_cut_values_short_is_refused(db: str) -> None:
    with connect(db) as conn:
        conn.execute(
            "CREATE TABLE pay (id bigint PRIMARY KEY, amount numeric(12, 2), at timestamptz)"
        )
        conn.execute("CREATE INDEX ON pay (at)")
        conn.execute(
            "CREATE TABLE pay_old (id bigint, amount numeric(12, 0), at timestamptz,"
            " archived_at timestamptz NOT NULL, archived_by text NOT NULL)"
        )
        conn.execute("SELECT pgsweep.add_rule('pay', 'at', '1 day')")
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="amount"):
            conn.execute("SELECT pgsweep.set_archive('pay', 'at', 'pay_old')")


def test_the_insert_trigger_never_waits_for_a_row_the_app_holds_through_a_cascade(db: str) -> None:
    with connect(db) as conn:
        conn.execute("CREATE TABLE tokens (id bigserial PRIMARY KEY, expires_at timestamptz)")
        conn.execute("CREATE INDEX ON tokens (expires_at)")
        conn.execute(
            "CREATE TABLE token_uses (id bigserial PRIMARY KEY,"
            " token_id bigint REFERENCES tokens ON DELETE CASCADE)"
        )
        conn.execute("CREATE INDEX ON token_uses (token_id)")
        conn.execute("INSERT INTO tokens (expires_at) VALUES (now() - interval '1 day')")
        conn.execute("INSERT INTO token_uses (token_id) SELECT id FROM tokens")
        conn.execute("SELECT pgsweep.add_rule('tokens', 'expires_at')")
        conn.execute(
            "CREATE TRIGGER sweep AFTER INSERT ON tokens FOR EACH STATEMENT"
            " EXECUTE FUNCTION pgsweep.sweep_on_insert('expires_at')"
        )
    released = threading.Event()
    with connect(db) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT * FROM token_uses FOR UPDATE")

        def release_later() -> None:
            time.sleep(4)
            holder.execute("COMMIT")
            released.set()

        thread = threading.Thread(target=release_later)
        thread.start()
        try:
            with connect(db) as app:
                warnings: list[str] = []
                app.add_notice_handler(lambda d: warnings.append(str(d.message_primary)))
                # Longer than the trigger may wait, shorter than the app holds the row: an
                # insert that waited for the cascade would be cancelled here.
                app.execute("SET statement_timeout = '2s'")
                app.execute("INSERT INTO tokens (expires_at) VALUES (now() + interval '1 day')")
                assert not released.is_set(), warnings
                skipped = "opportunistic cleanup of public.tokens skipped"
                assert any(skipped in w for w in warnings), warnings
        finally:
            thread.join()
    with connect(db) as conn:  # the expired token waits for the scheduled sweep
        assert conn.execute("SELECT count(*) FROM tokens").fetchone() == (2,)


def test_a_sweep_cancelled_mid_batch_leaves_no_lock_and_records_the_failure(db: str) -> None:
    with connect(db) as conn:
        conn.execute("CREATE TABLE slow (id bigserial PRIMARY KEY, expires_at timestamptz)")
        conn.execute("CREATE INDEX ON slow (expires_at)")
        conn.execute(
            "INSERT INTO slow (expires_at)"
            " SELECT now() - interval '1 day' FROM generate_series(1, 5)"
        )
        conn.execute("SELECT pgsweep.add_rule('slow', 'expires_at')")
        conn.execute(
            "CREATE FUNCTION crawl() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_sleep(1); RETURN OLD; END $$"
        )
        conn.execute(
            "CREATE TRIGGER crawl BEFORE DELETE ON slow FOR EACH ROW EXECUTE FUNCTION crawl()"
        )
        conn.execute("SET statement_timeout = '500ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("CALL pgsweep.sweep()")
        conn.execute("RESET statement_timeout")
        held = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        ).fetchone()
        assert held == (0,)
        assert conn.execute("SELECT status FROM pgsweep.run").fetchall() == [("failed",)]
        assert conn.execute("SELECT count(*) FROM slow").fetchone() == (5,)  # the batch undone


def test_a_session_may_not_write_into_a_run_another_session_began(db: str) -> None:
    with connect(db) as conn:
        conn.execute("CREATE TABLE t (id bigserial PRIMARY KEY, at timestamptz)")
        conn.execute("CREATE INDEX ON t (at)")
        (run_id,) = conn.execute("SELECT pgsweep.run_begin('cli')").fetchone() or (None,)
        with connect(db) as other:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not begun by"):
                other.execute("SELECT pgsweep.run_record(%s, 't', 'at', 1000)", (run_id,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not begun by"):
                other.execute("SELECT pgsweep.run_end(%s, 'succeeded')", (run_id,))
        conn.execute("SELECT pgsweep.run_end(%s, 'succeeded')", (run_id,))
        assert conn.execute("SELECT status, rows_deleted FROM pgsweep.run").fetchall() == [
            ("succeeded", 0)
        ]


def test_a_run_records_the_rows_an_archiving_rule_moved(db: str) -> None:
    with connect(db) as conn:
        conn.execute("CREATE TABLE notes (id bigserial PRIMARY KEY, at timestamptz)")
        conn.execute("CREATE INDEX ON notes (at)")
        conn.execute(
            "INSERT INTO notes (at)"
            " SELECT now() - g * interval '1 day' FROM generate_series(0, 9) g"
        )
        conn.execute("SELECT pgsweep.add_rule('notes', 'at', '36 hours')")
        conn.execute("SELECT pgsweep.set_archive('notes', 'at')")
        conn.execute("CALL pgsweep.sweep()")
        assert conn.execute("SELECT rows_deleted, rows_archived FROM pgsweep.run").fetchall() == [
            (8, 8)
        ]
        assert conn.execute("SELECT count(*) FROM notes_archive").fetchone() == (8,)
