"""The opportunistic insert triggers: bounded, safe rows only, never failing an insert."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.pg import connect
from tests.tokens import TOKEN_TABLES, TOKEN_TABLES_WITH_USED_AT, add_token, add_user


def seed(conn: psycopg.Connection[Any], table: str, user: str, rows: int, used: bool) -> None:
    used_at = ", used_at" if table != "refresh_tokens" else ""
    used_value = (", now() - interval '1 minute'" if used else ", NULL") if used_at else ""
    expires = "now() + interval '1 hour'" if used else "now() - interval '1 hour'"
    conn.execute("SET session_replication_role = replica")  # seed without firing triggers
    conn.execute(
        f"INSERT INTO {table} (user_id, token_hash, expires_at{used_at})"
        f" SELECT %s, md5(random()::text), {expires}{used_value} FROM generate_series(1, %s)",
        (user, rows),
    )
    conn.execute("SET session_replication_role = origin")


def count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_each_token_table_has_one_enabled_after_insert_cleanup_trigger(head_db: str) -> None:
    with connect(head_db) as conn:
        rows = conn.execute(
            "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal AND t.tgname LIKE '%%cleanup%%'"
            " AND t.tgtype & 4 = 4"  # TRIGGER_TYPE_INSERT
            " AND t.tgtype & 2 = 0"  # AFTER, not BEFORE
        ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(TOKEN_TABLES)
    assert {r[2] for r in rows} == {"O"}


@pytest.mark.parametrize("table", TOKEN_TABLES_WITH_USED_AT)
def test_an_insert_removes_a_small_batch_of_used_tokens_and_no_unused_ones(
    head_db: str, table: str
) -> None:
    with connect(head_db, autocommit=False) as conn:
        user = add_user(conn, f"t_{table}")
        seed(conn, table, user, 25, used=True)
        seed(conn, table, user, 5, used=False)  # expired but unused: the app may still UPDATE them
        add_token(conn, table, user, "1 hour")
        assert count(conn, f"SELECT count(*) FROM {table} WHERE used_at IS NOT NULL") == 15
        assert count(conn, f"SELECT count(*) FROM {table} WHERE expires_at < now()") == 5
        conn.rollback()


def test_a_refresh_token_insert_removes_a_small_batch_of_expired_tokens(head_db: str) -> None:
    with connect(head_db, autocommit=False) as conn:
        user = add_user(conn, "refresher")
        seed(conn, "refresh_tokens", user, 25, used=False)
        add_token(conn, "refresh_tokens", user, "30 days")
        assert count(conn, "SELECT count(*) FROM refresh_tokens WHERE expires_at < now()") == 15
        conn.rollback()


def test_no_cleanup_and_no_error_under_repeatable_read(head_db: str) -> None:
    with connect(head_db, autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        user = add_user(conn, "rr")
        seed(conn, "refresh_tokens", user, 5, used=False)
        add_token(conn, "refresh_tokens", user, "30 days")
        assert count(conn, "SELECT count(*) FROM refresh_tokens WHERE expires_at < now()") == 5
        conn.rollback()


def test_a_failing_cleanup_turns_into_a_warning_and_the_insert_succeeds(head_db: str) -> None:
    warnings: list[str] = []
    with connect(head_db, autocommit=False) as conn:
        conn.add_notice_handler(lambda d: warnings.append(d.message_primary or ""))
        # A keep_for so large that now() - keep_for is out of range: the purge raises.
        conn.execute(
            "UPDATE pgsweep.expiry_rule SET keep_for = '1000000 years'"
            " WHERE table_name = 'refresh_tokens'::regclass"
        )
        user = add_user(conn, "faulty")
        token = add_token(conn, "refresh_tokens", user, "30 days")
        assert count(conn, f"SELECT count(*) FROM refresh_tokens WHERE id = '{token}'") == 1
        conn.rollback()
    assert any("opportunistic cleanup of public.refresh_tokens skipped" in w for w in warnings)


def test_after_a_short_sweep_the_sessions_next_inserts_skip_it_and_a_full_one_does_not(
    head_db: str,
) -> None:
    # A sweep plans a statement even when it finds nothing, so once a batch comes back short
    # (the garbage is gone) the next 50 inserts of the session skip it (docs/matcha.md, "Triggers").
    def used(conn: psycopg.Connection[Any]) -> int:
        return count(conn, "SELECT count(*) FROM password_reset_tokens WHERE used_at IS NOT NULL")

    with connect(head_db, autocommit=False) as conn:
        user = add_user(conn, "countdown")
        seed(conn, "password_reset_tokens", user, 25, used=True)
        add_token(conn, "password_reset_tokens", user, "1 hour")  # full batch: 10 deleted
        add_token(conn, "password_reset_tokens", user, "1 hour")  # full batch again: 10 more
        add_token(conn, "password_reset_tokens", user, "1 hour")  # short: the last 5
        assert used(conn) == 0
        seed(conn, "password_reset_tokens", user, 3, used=True)
        for _ in range(50):
            add_token(conn, "password_reset_tokens", user, "1 hour")  # skipped
        assert used(conn) == 3
        add_token(conn, "password_reset_tokens", user, "1 hour")  # the 51st sweeps again
        assert used(conn) == 0
        conn.rollback()
