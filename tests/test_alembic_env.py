"""env.py with a caller that holds a transaction: a deploy script that took an advisory lock on
the connection it hands to Alembic. Nothing of the caller's is committed behind its back, and
the concurrent index builds still keep the app's writes flowing where the table has rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Connection, text

from pgsweep import db, migrate
from tests.pg import PgServer, connect, scratch_database
from tests.sqlrun import assert_same_catalog, catalog_of, recorded_version
from tests.tokens import TOKEN_TABLES, add_token, add_user

LOCK_KEY = 42_4242
INDEXES_0006 = (
    "idx_password_reset_tokens_expires_at",
    "idx_password_reset_tokens_used_at",
    "idx_password_reset_tokens_user_id",
    "idx_email_verification_tokens_expires_at",
    "idx_email_verification_tokens_used_at",
    "idx_email_verification_tokens_user_id",
    "idx_refresh_tokens_expires_at",
)


@pytest.fixture
def deploy_connection(fresh_db: str) -> Iterator[Connection]:
    """The deploy script's connection: it took a session advisory lock, which (SQLAlchemy
    autobegins) left a transaction open, and hands the connection to Alembic."""
    engine = db.engine(fresh_db)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            assert connection.in_transaction()
            yield connection
    finally:
        engine.dispose()


def valid_indexes(dsn: str) -> set[str]:
    """The 0006 indexes another session sees, valid."""
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index"
            " WHERE indisvalid AND indexrelid::regclass::text = ANY(%s)",
            (list(INDEXES_0006),),
        ).fetchall()
    return {str(r[0]) for r in rows}


def lock_is_held_elsewhere(dsn: str) -> bool:
    with connect(dsn) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        assert row is not None
        if row[0]:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        return not row[0]


def test_a_caller_holding_a_transaction_migrates_inside_it_and_keeps_it_open(
    fresh_db: str, deploy_connection: Connection
) -> None:
    empty = catalog_of(fresh_db)
    command.upgrade(migrate.alembic_config(deploy_connection), "head")
    assert deploy_connection.in_transaction()  # still the caller's, still open
    assert lock_is_held_elsewhere(fresh_db)
    assert recorded_version(fresh_db) is None  # nothing committed behind the caller's back
    # The caller decides: a rollback leaves the database as it was, indexes included (on the
    # empty tables of this run they were built inside the caller's transaction).
    deploy_connection.rollback()
    assert_same_catalog(empty, catalog_of(fresh_db), "a rolled-back caller left objects")

    command.upgrade(migrate.alembic_config(deploy_connection), "head")
    deploy_connection.commit()
    assert recorded_version(fresh_db) == migrate.head()
    assert valid_indexes(fresh_db) == set(INDEXES_0006)


def test_on_tables_with_rows_the_indexes_are_built_concurrently_beside_the_callers_transaction(
    fresh_db: str, pg_server: PgServer
) -> None:
    migrate.upgrade(fresh_db, "0005")
    with connect(fresh_db) as conn:
        user = add_user(conn, "ann")
        for table in TOKEN_TABLES:
            add_token(conn, table, user, "1 hour")
    at_0005 = catalog_of(fresh_db)
    engine = db.engine(fresh_db)
    try:
        with engine.connect() as caller:
            caller.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            command.upgrade(migrate.alembic_config(caller), "head")
            # Built CONCURRENTLY on a second connection: committed and valid already, while
            # the revision itself waits for the caller's commit.
            assert valid_indexes(fresh_db) == set(INDEXES_0006)
            assert recorded_version(fresh_db) == "0005"
            caller.commit()
            assert recorded_version(fresh_db) == migrate.head()
            with scratch_database(pg_server, "env_twin") as twin:
                migrate.upgrade(twin, "head")
                assert_same_catalog(catalog_of(twin), catalog_of(fresh_db), "differs")

            # Down again inside a transaction (this time a transaction-scoped advisory lock):
            # 0006's rollback drops the triggers first, so the caller's transaction holds
            # those tables and the index drops happen inside it too.
            caller.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY + 1})
            command.downgrade(migrate.alembic_config(caller), "0005")
            assert valid_indexes(fresh_db) == set(INDEXES_0006)  # not committed yet
            caller.rollback()
            assert recorded_version(fresh_db) == migrate.head()
            caller.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY + 1})
            command.downgrade(migrate.alembic_config(caller), "0005")
            caller.commit()
    finally:
        engine.dispose()
    assert_same_catalog(at_0005, catalog_of(fresh_db), "down to 0005 in a transaction differs")
    with connect(fresh_db) as conn:
        for table in TOKEN_TABLES:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
