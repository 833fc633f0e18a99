"""Bad input at the SQL and library level: a clear error (SQLSTATE and message) or a documented
no-op, and nothing lost. Every case compares the database before and after: row counts of every
table, the recorded revision, and the catalog.

The CLI's own messages and exit codes for the same mistakes (bad DSN, unreachable server, wrong
password, unknown revision, invalid cron expression) are tested with the CLI.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from alembic.util.exc import CommandError
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy.exc import OperationalError

from pgsweep import catalog, migrate
from pgsweep.dsn import libpq_url, with_dbname
from tests.pg import connect
from tests.sqlrun import down_file, psql_file, psql_ok, up_file
from tests.tokens import TOKEN_TABLES, add_token, add_user, with_triggers, without_triggers

TABLES = (
    "users",
    "decks",
    "flashcards",
    "deck_flashcards",
    "user_card_progress",
    "user_deck_progress",
    *TOKEN_TABLES,
)


@dataclass(frozen=True)
class State:
    counts: dict[str, int]
    version: str | None
    snapshot: catalog.Snapshot


def state(dsn: str) -> State:
    with connect(dsn) as conn:
        counts = {}
        for table in TABLES:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row is not None
            counts[table] = int(row[0])
        snapshot = catalog.snapshot(conn)
    return State(counts, migrate.current(dsn), snapshot)


def assert_unchanged(before: State, dsn: str) -> None:
    after = state(dsn)
    assert after.counts == before.counts, "rows were lost or added"
    assert after.version == before.version
    assert not catalog.diff(before.snapshot, after.snapshot), catalog.diff(
        before.snapshot, after.snapshot
    )


@pytest.fixture(scope="module")
def app_db(module_db: str) -> str:
    """A head database with a user, a deck with progress, and live, used and expired tokens."""
    migrate.upgrade(module_db, "head")
    with connect(module_db) as conn:
        without_triggers(conn)
        user = add_user(conn, "ann")
        for table in TOKEN_TABLES:
            add_token(conn, table, user, "1 hour")
            add_token(conn, table, user, "-1 hour")
        conn.execute(
            "WITH d AS (INSERT INTO decks (title, language_from, language_to)"
            "           VALUES ('basics', 'en', 'ja') RETURNING id),"
            "     f AS (INSERT INTO flashcards (term, translation, language_from, language_to)"
            "           VALUES ('cat', 'neko', 'en', 'ja') RETURNING id),"
            "     df AS (INSERT INTO deck_flashcards SELECT d.id, f.id FROM d, f)"
            " INSERT INTO user_deck_progress (user_id, deck_id, total_cards)"
            " SELECT %s, d.id, 1 FROM d",
            (user,),
        )
        with_triggers(conn)
    return module_db


@pytest.fixture
def before(app_db: str) -> Iterator[State]:
    """The database before the test; the test must leave it exactly so."""
    saved = state(app_db)
    yield saved
    assert_unchanged(saved, app_db)


def ids(dsn: str) -> tuple[str, str]:
    with connect(dsn) as conn:
        row = conn.execute("SELECT user_id::text, deck_id::text FROM user_deck_progress").fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


# --- deck progress ----------------------------------------------------------------------------

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("call", "sqlstate", "message"),
    [
        ("refresh_deck_progress(NULL, {deck})", "22004", "may not be null"),
        ("refresh_deck_progress({user}, NULL)", "22004", "may not be null"),
        ("refresh_deck_progress(NULL, NULL)", "22004", "may not be null"),
        ("refresh_stale_deck_progress(NULL)", "22004", "may not be null"),
        ("refresh_deck_progress({unknown}, {deck})", "23503", "user_deck_progress_user_id_fkey"),
        ("refresh_deck_progress({user}, {unknown})", "23503", "user_deck_progress_deck_id_fkey"),
        ("refresh_deck_progress({unknown}, {unknown})", "23503", "violates foreign key"),
        ("refresh_deck_progress('not-a-uuid', {deck})", "22P02", "invalid input syntax"),
    ],
)
def test_bad_ids_to_deck_progress_fail_with_a_clear_error_and_change_nothing(
    app_db: str, before: State, call: str, sqlstate: str, message: str
) -> None:
    user, deck = ids(app_db)
    statement = "SELECT " + call.format(
        user=f"'{user}'::uuid", deck=f"'{deck}'::uuid", unknown=f"'{UNKNOWN}'::uuid"
    )
    with connect(app_db) as conn, pytest.raises(psycopg.Error, match=message) as caught:
        conn.execute(statement)
    assert caught.value.sqlstate == sqlstate


def test_an_unknown_user_has_no_stale_progress_a_documented_zero(
    app_db: str, before: State
) -> None:
    with connect(app_db) as conn:
        row = conn.execute("SELECT refresh_stale_deck_progress(%s)", (UNKNOWN,)).fetchone()
    assert row == (0,)


# --- the engine's own arguments ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "sqlstate", "message"),
    [
        ("CALL pgsweep.sweep('no_such_table')", "42P01", 'relation "no_such_table" does not exist'),
        ("CALL pgsweep.sweep('users')", "P0002", "table users has no expiry rule"),
        ("CALL pgsweep.sweep(NULL, 0)", "22023", "batch size must be a positive integer"),
        ("CALL pgsweep.sweep(NULL, -5)", "22023", "batch size must be a positive integer"),
        ("CALL pgsweep.sweep('refresh_tokens', NULL)", "22023", "positive integer, not <NULL>"),
    ],
)
def test_bad_arguments_to_the_sweep_procedure_are_refused_before_anything_is_deleted(
    app_db: str, before: State, statement: str, sqlstate: str, message: str
) -> None:
    with connect(app_db) as conn, pytest.raises(psycopg.Error, match=message) as caught:
        conn.execute(statement)
    assert caught.value.sqlstate == sqlstate


# --- revisions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("run", [migrate.upgrade, migrate.downgrade], ids=["upgrade", "downgrade"])
def test_an_unknown_target_revision_is_a_clear_error_and_changes_nothing(
    app_db: str, before: State, run: Any
) -> None:
    with pytest.raises(CommandError, match="Can't locate revision identified by '9999'"):
        run(app_db, "9999")


@pytest.fixture
def unknown_revision_db(app_db: str) -> Iterator[str]:
    """The head database stamped with a revision this code does not ship (a newer release's)."""
    with connect(app_db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0042'")
    try:
        yield app_db
    finally:
        with connect(app_db) as conn:
            conn.execute("UPDATE alembic_version SET version_num = %s", (migrate.head(),))


@pytest.mark.parametrize(
    ("run", "target"),
    [(migrate.upgrade, "head"), (migrate.downgrade, "0005"), (migrate.downgrade, "base")],
    ids=["upgrade head", "downgrade 0005", "downgrade base"],
)
def test_a_database_at_an_unknown_revision_is_refused_by_alembic_and_left_alone(
    unknown_revision_db: str, run: Any, target: str
) -> None:
    before = state(unknown_revision_db)
    assert migrate.current(unknown_revision_db) == "0042"  # reported as it is
    with pytest.raises(CommandError, match="Can't locate revision identified by '0042'"):
        run(unknown_revision_db, target)
    assert_unchanged(before, unknown_revision_db)


def test_a_database_at_an_unknown_newer_revision_is_refused_by_the_psql_down_script(
    unknown_revision_db: str,
) -> None:
    before = state(unknown_revision_db)
    done = psql_file(unknown_revision_db, down_file("0006"))
    assert done.returncode == 3  # psql: stopped at an error (ON_ERROR_STOP)
    assert "alembic_version records a revision newer than 0006" in done.stderr
    assert_unchanged(before, unknown_revision_db)


def test_running_scripts_twice_loses_no_row(app_db: str, before: State) -> None:
    # The catalog side is in test_migrations.py; here, the data: the head's up script twice is
    # a no-op, 0005 up again fails with "already exists", and 0006's down script twice ends
    # where once did.
    psql_ok(app_db, up_file(migrate.head()))
    psql_ok(app_db, up_file(migrate.head()))
    again = psql_file(app_db, up_file("0005"))
    assert again.returncode == 3
    assert 'relation "refresh_tokens" already exists' in again.stderr
    assert_unchanged(before, app_db)
    for newer in reversed(migrate.revisions()[migrate.revisions().index("0006") + 1 :]):
        psql_ok(app_db, down_file(newer))  # newest first, as the README says
    psql_ok(app_db, down_file("0006"))
    once = state(app_db)
    psql_ok(app_db, down_file("0006"))
    assert_unchanged(once, app_db)
    assert once.counts == before.counts
    migrate.upgrade(app_db, "head")  # back to where the fixture expects it


# --- connection strings -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


SECRET = "s3cret-never-printed"


@pytest.mark.parametrize(
    ("dsn", "error", "message"),
    [
        ("not a dsn", psycopg.ProgrammingError, 'missing "=" after "not"'),
        ("mysql://ann@localhost/matcha", ValueError, "not a PostgreSQL connection URL"),
        (
            "postgresql://ann@localhost:notaport/matcha",
            ValueError,
            "not a valid PostgreSQL connection string: .*'notaport'",
        ),
        ("host=localhost port=x dbname=matcha", ValueError, "not a valid PostgreSQL connection"),
    ],
)
def test_a_malformed_dsn_is_refused_before_any_connection(
    dsn: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        migrate.upgrade(dsn, "head")


def test_an_unreachable_server_is_a_clear_connection_error_without_the_password() -> None:
    dsn = f"postgresql://ann:{SECRET}@127.0.0.1:{free_port()}/matcha?connect_timeout=5"
    with pytest.raises(OperationalError, match="Connection refused") as caught:
        migrate.upgrade(dsn, "head", migrate.LockPolicy(attempts=1))
    assert SECRET not in str(caught.value)


def test_a_missing_database_is_a_clear_error_and_the_server_is_left_alone(
    app_db: str, before: State
) -> None:
    missing = with_dbname(app_db, "pgsweep_no_such_database")
    with pytest.raises(OperationalError, match='database "pgsweep_no_such_database" does not'):
        migrate.upgrade(missing, "head")


def test_a_wrong_password_is_a_clear_error_without_the_password(app_db: str, before: State) -> None:
    wrong = make_conninfo(libpq_url(app_db), password=SECRET)
    try:
        psycopg.connect(wrong, connect_timeout=10).close()
    except psycopg.OperationalError:
        pass
    else:
        user = conninfo_to_dict(libpq_url(app_db)).get("user")
        pytest.skip(f"this server lets {user} in without a password")
    with pytest.raises(OperationalError, match="password authentication failed") as caught:
        migrate.upgrade(wrong, "head")
    assert SECRET not in str(caught.value)
