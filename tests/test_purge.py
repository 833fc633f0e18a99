"""The single-pass purge of 0008: sweep batches as ranges of the rule's column, rows sharing one
value, and a row another transaction holds (the purge gives way instead of waiting)."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from pgsweep.runner import SWEEP_BATCH_SIZE
from tests.pg import connect
from tests.tokens import add_token, add_user, remaining_ids, without_triggers

Conn = psycopg.Connection[tuple[Any, ...]]


def scalar(conn: Conn, query: str, *args: object) -> Any:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0]


def add_refresh_tokens(conn: Conn, user: str, label: str, expires: str, count: int) -> None:
    conn.execute(
        "INSERT INTO refresh_tokens (user_id, token_hash, expires_at)"
        " SELECT %s, %s || g, " + expires + " FROM generate_series(1, %s) g",
        (user, f"{user}:{label}:", count),
    )


def forget(conn: Conn, user: str) -> None:
    """Remove a test's user and its tokens (the seeding session has foreign keys switched off)."""
    for table in ("password_reset_tokens", "refresh_tokens"):
        conn.execute(f"DELETE FROM {table} WHERE user_id = %s", (user,))
    conn.execute("DELETE FROM users WHERE id = %s", (user,))


def expired_refresh_tokens(conn: Conn) -> int:
    return int(scalar(conn, "SELECT count(*) FROM refresh_tokens WHERE expires_at < now()"))


def batches(conn: Conn, batch_size: int) -> list[int]:
    """Drive pgsweep.purge_range over refresh_tokens as CALL pgsweep.sweep() does; the counts."""
    counts: list[int] = []
    start_from = None
    while True:
        deleted, start_from = conn.execute(
            "SELECT deleted, next_from"
            " FROM pgsweep.purge_range((SELECT r FROM pgsweep.expiry_rule r"
            "  WHERE r.table_name = 'refresh_tokens'::regclass AND r.column_name = 'expires_at'),"
            " %s, %s)",
            (start_from, batch_size),
        ).fetchone() or (0, None)
        counts.append(int(deleted))
        if start_from is None:
            return counts
        assert len(counts) < 100, "the batches never ended"


def test_a_sweep_deletes_the_garbage_in_ranges_of_at_most_the_batch_size(head_db: str) -> None:
    with connect(head_db) as conn:
        without_triggers(conn)
        ann = add_user(conn, "ranges")
        add_refresh_tokens(conn, ann, "old", "now() - g * interval '1 second'", 950)
        add_refresh_tokens(conn, ann, "live", "now() + g * interval '1 hour'", 20)

        counts = batches(conn, 100)

        assert sum(counts) == 950
        assert all(count <= 100 for count in counts)
        assert len(counts) >= 10
        assert expired_refresh_tokens(conn) == 0
        assert scalar(conn, "SELECT count(*) FROM refresh_tokens WHERE user_id = %s", ann) == 20
        forget(conn, ann)


def test_rows_sharing_one_value_beyond_a_batch_are_taken_a_batch_at_a_time(head_db: str) -> None:
    # 250 tokens issued in one statement share their expires_at: no range of distinct values
    # holds only a batch of them, so they go by ctid, 100 at a time, then the sweep moves on.
    with connect(head_db) as conn:
        without_triggers(conn)
        bob = add_user(conn, "ties")
        add_refresh_tokens(conn, bob, "tied", "now() - interval '1 hour'", 250)
        add_refresh_tokens(conn, bob, "after", "now() - g * interval '1 second'", 30)
        earlier = "now() - interval '2 hours' - g * interval '1 second'"
        add_refresh_tokens(conn, bob, "before", earlier, 5)
        add_refresh_tokens(conn, bob, "live", "now() + interval '1 day'", 7)

        counts = batches(conn, 100)

        assert sum(counts) == 285
        assert all(count <= 100 for count in counts)
        assert expired_refresh_tokens(conn) == 0
        assert scalar(conn, "SELECT count(*) FROM refresh_tokens WHERE user_id = %s", bob) == 7
        forget(conn, bob)


@pytest.mark.parametrize("batch", [100, 1])
def test_held_rows_among_rows_sharing_one_value_are_left_and_the_rest_taken(
    head_db: str, batch: int
) -> None:
    # Batches of 1 end with only the two held rows at the shared value: the sweep moves past it.
    with connect(head_db) as setup:
        without_triggers(setup)
        fay = add_user(setup, f"held-ties-{batch}")
        add_refresh_tokens(setup, fay, "tied", "now() - interval '3 hours'", 250)
        add_refresh_tokens(setup, fay, "after", "now() - g * interval '1 second'", 30)
        held = [
            scalar(setup, "SELECT id FROM refresh_tokens WHERE token_hash = %s", f"{fay}:tied:{g}")
            for g in (120, 121)
        ]
    with connect(head_db, autocommit=False) as holder, connect(head_db) as cleaner:
        holder.execute("SELECT 1 FROM refresh_tokens WHERE id = ANY(%s) FOR UPDATE", (held,))
        cleaner.execute("SET lock_timeout = '2s'")
        swept = cleaner.execute("CALL pgsweep.sweep('refresh_tokens', %s)", (batch,)).fetchone()
        assert swept == (278,)
        assert expired_refresh_tokens(cleaner) == 2
        holder.rollback()
        assert cleaner.execute("CALL pgsweep.sweep('refresh_tokens', %s)", (batch,)).fetchone() == (
            2,
        )
        forget(cleaner, fay)


def test_an_epoch_seconds_rule_with_repeated_values_is_swept_exactly(head_db: str) -> None:
    with connect(head_db) as conn:
        conn.execute(
            "CREATE TABLE api_sessions (id serial PRIMARY KEY, ttl integer NOT NULL);"
            " CREATE INDEX ON api_sessions (ttl);"
            # 300 expired sessions over 7 distinct TTLs, and 40 live ones.
            " INSERT INTO api_sessions (ttl)"
            "   SELECT extract(epoch FROM now())::integer - 1 - g % 7"
            "     FROM generate_series(1, 300) g;"
            " INSERT INTO api_sessions (ttl)"
            "   SELECT extract(epoch FROM now())::integer + 60 FROM generate_series(1, 40);"
            " SELECT pgsweep.add_rule('api_sessions', 'ttl');"
        )
        try:
            assert conn.execute("CALL pgsweep.sweep('api_sessions', 20)").fetchone() == (300,)
            assert scalar(conn, "SELECT count(*) FROM api_sessions") == 40
        finally:
            conn.execute("DELETE FROM pgsweep.expiry_rule WHERE table_name::text = 'api_sessions'")
            conn.execute("DROP TABLE api_sessions")


def test_a_sweep_gives_way_to_a_held_row_and_takes_it_next_time(head_db: str) -> None:
    with connect(head_db) as setup:
        without_triggers(setup)
        cy = add_user(setup, "held-sweep")
        add_refresh_tokens(setup, cy, "around", "now() - g * interval '1 minute'", 300)
        held = add_token(setup, "refresh_tokens", cy, "-150 minutes 30 seconds")
    with connect(head_db, autocommit=False) as holder, connect(head_db) as cleaner:
        holder.execute("SELECT 1 FROM refresh_tokens WHERE id = %s FOR UPDATE", (held,))
        # A purge that waited for the holder would fail here instead of finishing.
        cleaner.execute("SET lock_timeout = '2s'")
        assert cleaner.execute("CALL pgsweep.sweep('refresh_tokens', 50)").fetchone() == (300,)
        assert remaining_ids(cleaner, "refresh_tokens") >= {held}
        assert expired_refresh_tokens(cleaner) == 1
        assert scalar(cleaner, "SHOW lock_timeout") == "2s"
        holder.rollback()
        assert cleaner.execute("CALL pgsweep.sweep('refresh_tokens', 50)").fetchone() == (1,)
        forget(cleaner, cy)


def test_the_app_waiting_on_a_cleanup_transaction_gets_its_row_when_it_commits(
    head_db: str,
) -> None:
    # The app holds r1 (its invalidate), the cleanup function deletes r2 and gives way on r1;
    # then the app's next statement needs r2 and waits for the cleanup to commit. No deadlock
    # can form: the cleanup no longer waits for anything.
    with connect(head_db) as setup:
        without_triggers(setup)
        dee = add_user(setup, "cycle")
        r2 = add_token(setup, "password_reset_tokens", dee, "-2 hours")
        r1 = add_token(setup, "password_reset_tokens", dee, "-1 hour")
    errors: list[BaseException] = []
    with connect(head_db, autocommit=False) as app, connect(head_db, autocommit=False) as cleanup:
        app.execute("UPDATE password_reset_tokens SET used_at = now() WHERE id = %s", (r1,))
        assert scalar(cleanup, "SELECT cleanup_expired_password_reset_tokens()") == 1

        def app_touches_r2() -> None:
            try:
                app.execute("UPDATE password_reset_tokens SET used_at = now() WHERE id = %s", (r2,))
                app.commit()
            except psycopg.Error as exc:
                errors.append(exc)

        waiter = threading.Thread(target=app_touches_r2)
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive(), "the app's update of a row being deleted should wait"
        cleanup.commit()
        waiter.join(10)
        assert not waiter.is_alive()
        assert errors == []
        assert remaining_ids(cleanup, "password_reset_tokens") >= {r1}
        assert r2 not in remaining_ids(cleanup, "password_reset_tokens")
        forget(cleanup, dee)
        cleanup.commit()


def test_a_cleanup_function_leaves_the_callers_lock_timeout_as_it_was(head_db: str) -> None:
    with connect(head_db) as conn:
        conn.execute("SET lock_timeout = '3s'")
        conn.execute("SELECT * FROM cleanup_all_expired_tokens()")
        assert scalar(conn, "SHOW lock_timeout") == "3s"
        conn.execute("CALL pgsweep.sweep()")
        assert scalar(conn, "SHOW lock_timeout") == "3s"


@pytest.mark.parametrize(
    "settings",
    [
        "SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'Postgres'",
        "SET TimeZone = 'America/St_Johns'; SET DateStyle = 'SQL, DMY'",
        "SET TimeZone = 'Etc/GMT+12'; SET DateStyle = 'German'; SET extra_float_digits = -15",
    ],
)
def test_sweep_batches_mean_the_same_rows_whatever_the_callers_date_settings(
    head_db: str, settings: str
) -> None:
    # Batch boundaries travel between batches as text; they must read back as the same value.
    with connect(head_db) as conn:
        without_triggers(conn)
        eve = add_user(conn, f"dates_{abs(hash(settings))}")
        add_refresh_tokens(conn, eve, "gone", "now() - g * interval '7 minutes'", 40)
        add_refresh_tokens(conn, eve, "kept", "now() + g * interval '5 minutes'", 12)
        conn.execute(settings)
        assert conn.execute("CALL pgsweep.sweep('refresh_tokens', 3)").fetchone() == (40,)
        conn.execute("RESET ALL")
        assert scalar(conn, "SELECT count(*) FROM refresh_tokens WHERE user_id = %s", eve) == 12
        forget(conn, eve)


def test_the_commands_default_batch_is_the_procedures(head_db: str) -> None:
    with connect(head_db) as conn:
        arguments = scalar(
            conn,
            "SELECT pg_get_function_arguments("
            "'pgsweep.sweep(regclass, integer, interval, bigint)'::regprocedure)",
        )
    assert f"p_batch_size integer DEFAULT {SWEEP_BATCH_SIZE}," in arguments
