"""The cleanup contract at its boundaries: what is deleted, what is kept, and exact counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.pg import connect
from tests.tokens import (
    TOKEN_TABLES,
    TOKEN_TABLES_WITH_USED_AT,
    add_token,
    add_user,
    remaining_ids,
    with_triggers,
    without_triggers,
)

CLEANUP_OF = {
    "password_reset_tokens": "cleanup_expired_password_reset_tokens",
    "email_verification_tokens": "cleanup_expired_email_verification_tokens",
    "refresh_tokens": "cleanup_expired_refresh_tokens",
}


@pytest.fixture
def conn(head_db: str) -> Iterator[psycopg.Connection[Any]]:
    """One transaction per test, rolled back: seed and cleanup share one now()."""
    with connect(head_db, autocommit=False) as connection:
        without_triggers(connection)
        yield connection
        connection.rollback()


def scalar(conn: psycopg.Connection[Any], query: str, *args: object) -> Any:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("table", TOKEN_TABLES_WITH_USED_AT)
def test_expired_or_used_tokens_are_deleted_and_live_ones_kept(
    conn: psycopg.Connection[Any], table: str
) -> None:
    ann, bob = add_user(conn, "ann"), add_user(conn, "bob")
    expired_a_second_ago = add_token(conn, table, ann, "-1 second")
    expiring_in_a_second = add_token(conn, table, ann, "1 second")
    used_unexpired = add_token(conn, table, ann, "1 hour", used_ago="1 second")
    used_and_expired = add_token(conn, table, ann, "-1 hour", used_ago="2 hours")
    never_used = add_token(conn, table, ann, "1 day")
    other_users_expired = add_token(conn, table, bob, "-1 second")
    other_users_live = add_token(conn, table, bob, "1 minute")

    deleted = scalar(conn, f"SELECT {CLEANUP_OF[table]}()")

    assert deleted == 4  # a row both expired and used counts once
    assert remaining_ids(conn, table) == {expiring_in_a_second, never_used, other_users_live}
    for gone in (expired_a_second_ago, used_unexpired, used_and_expired, other_users_expired):
        assert gone not in remaining_ids(conn, table)


def test_refresh_tokens_are_deleted_once_expired_only(conn: psycopg.Connection[Any]) -> None:
    ann = add_user(conn, "ann")
    add_token(conn, "refresh_tokens", ann, "-1 second")
    add_token(conn, "refresh_tokens", ann, "-30 days")
    live = add_token(conn, "refresh_tokens", ann, "1 second")
    assert scalar(conn, "SELECT cleanup_expired_refresh_tokens()") == 2
    assert remaining_ids(conn, "refresh_tokens") == {live}


def test_the_master_reports_each_table_and_the_total(conn: psycopg.Connection[Any]) -> None:
    ann = add_user(conn, "ann")
    for table, garbage in zip(TOKEN_TABLES, (3, 2, 5), strict=True):
        for _ in range(garbage):
            add_token(conn, table, ann, "-1 minute")
        add_token(conn, table, ann, "1 minute")
    rows = conn.execute("SELECT * FROM cleanup_all_expired_tokens()").fetchall()
    assert rows == [(3, 2, 5, 10)]
    assert conn.execute("SELECT * FROM cleanup_all_expired_tokens()").fetchall() == [(0, 0, 0, 0)]


def test_counts_stay_exact_across_many_batches_even_with_equal_expiry_times(
    conn: psycopg.Connection[Any],
) -> None:
    ann = add_user(conn, "ann")
    # 2,500 rows sharing one expires_at (more than two batches of 1,000), 1,234 spread out.
    conn.execute(
        "INSERT INTO refresh_tokens (user_id, token_hash, expires_at)"
        " SELECT %s, 'same' || g, now() - interval '1 hour' FROM generate_series(1, 2500) g",
        (ann,),
    )
    conn.execute(
        "INSERT INTO refresh_tokens (user_id, token_hash, expires_at)"
        " SELECT %s, 'spread' || g, now() - g * interval '1 second'"
        " FROM generate_series(1, 1234) g",
        (ann,),
    )
    live = add_token(conn, "refresh_tokens", ann, "1 hour")
    assert scalar(conn, "SELECT cleanup_expired_refresh_tokens()") == 3734
    assert remaining_ids(conn, "refresh_tokens") == {live}


def test_a_table_without_rules_is_an_error_not_a_silent_zero(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.NoDataFound, match="has no expiry rule"):
        conn.execute("SELECT pgsweep.sweep_table('users')")


def test_a_non_positive_batch_size_is_rejected(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="positive integer"):
        conn.execute("SELECT pgsweep.sweep_table('refresh_tokens', 0)")


def test_a_new_table_is_brought_under_the_lifecycle_by_registering_rules(
    conn: psycopg.Connection[Any],
) -> None:
    # Sessions with a TTL in epoch seconds, and telemetry kept for 30 days: no new code.
    conn.execute(
        "CREATE TABLE app_sessions (id serial PRIMARY KEY, ttl bigint NOT NULL);"
        " CREATE INDEX ON app_sessions (ttl);"
        " INSERT INTO app_sessions (ttl) SELECT extract(epoch FROM now())::bigint + d"
        " FROM unnest(ARRAY[-3600, -1, 5, 3600]) d;"
        " CREATE TABLE telemetry (id serial PRIMARY KEY, created_at timestamptz NOT NULL);"
        " CREATE INDEX ON telemetry (created_at);"
        " INSERT INTO telemetry (created_at) SELECT now() - d * interval '1 day'"
        " FROM unnest(ARRAY[0, 29, 31, 90]) d;"
        " SELECT pgsweep.add_rule('app_sessions', 'ttl');"
        " SELECT pgsweep.add_rule('telemetry', 'created_at', '30 days');"
    )
    assert scalar(conn, "SELECT pgsweep.sweep_table('app_sessions')") == 2
    assert scalar(conn, "SELECT pgsweep.sweep_table('telemetry')") == 2
    old = "SELECT count(*) FROM telemetry WHERE created_at < now() - '30 days'::interval"
    assert scalar(conn, old) == 0


@pytest.mark.parametrize(
    ("setup", "rule", "error"),
    [
        ("", "('refresh_tokens', 'nope')", psycopg.errors.UndefinedColumn),
        ("", "('refresh_tokens', 'token_hash')", psycopg.errors.DatatypeMismatch),
        ("", "('refresh_tokens', 'created_at')", psycopg.errors.ObjectNotInPrerequisiteState),
        # 1.4: refused as an argument (any negative field), before the table's CHECK
        ("", "('refresh_tokens', 'expires_at', '-1 day')", psycopg.errors.InvalidParameterValue),
    ],
    ids=["missing-column", "text-column", "no-index", "negative-keep-for"],
)
def test_a_rule_that_could_not_be_index_driven_or_correct_is_refused(
    conn: psycopg.Connection[Any], setup: str, rule: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        conn.execute(f"SELECT pgsweep.add_rule{rule}")


def test_locked_garbage_is_skipped_without_waiting_and_taken_next_time(head_db: str) -> None:
    with connect(head_db) as setup:
        without_triggers(setup)
        ann = add_user(setup, "locker")
        held = add_token(setup, "refresh_tokens", ann, "-1 minute")
        add_token(setup, "refresh_tokens", ann, "-2 minutes")
    with connect(head_db, autocommit=False) as holder, connect(head_db) as cleaner:
        holder.execute("SELECT 1 FROM refresh_tokens WHERE id = %s FOR UPDATE", (held,))
        cleaner.execute("SET lock_timeout = '100ms'")  # any lock wait would raise
        assert scalar(cleaner, "SELECT cleanup_expired_refresh_tokens()") == 1
        holder.rollback()
        assert scalar(cleaner, "SELECT cleanup_expired_refresh_tokens()") == 1
        assert held not in remaining_ids(cleaner, "refresh_tokens")


def test_the_sweep_procedure_commits_every_batch(head_db: str) -> None:
    with connect(head_db) as conn:
        ann = add_user(conn, "sweeper")
        without_triggers(conn)
        conn.execute(
            "INSERT INTO refresh_tokens (user_id, token_hash, expires_at)"
            " SELECT %s, 'sweep' || g, now() - g * interval '1 second'"
            " FROM generate_series(1, 1000) g",
            (ann,),
        )
        with_triggers(conn)
        before = scalar(conn, "SELECT pg_current_xact_id()::text::bigint")
        row = conn.execute("CALL pgsweep.sweep('refresh_tokens', 100)").fetchone()
        after = scalar(conn, "SELECT pg_current_xact_id()::text::bigint")
        assert row == (1000,)
        # Ten batches of 100, each its own transaction: at least ten transaction ids.
        assert after - before >= 10
        assert scalar(conn, "SELECT count(*) FROM refresh_tokens WHERE expires_at < now()") == 0


def test_the_sweep_procedure_refuses_to_run_inside_a_transaction_block(head_db: str) -> None:
    with (
        connect(head_db, autocommit=False) as conn,
        pytest.raises(psycopg.errors.InvalidTransactionTermination),
    ):
        conn.execute("CALL pgsweep.sweep()")
