"""``pgsweep verify`` goes red for each real fault and green again once it is repaired, and it
changes nothing. (pg_cron faults: tests/test_scheduling.py, where a cron database exists.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pgsweep import migrate, verify
from pgsweep.verify import VerifyReport
from tests.cli import pgsweep
from tests.pg import connect, tolerate_lag
from tests.sqlrun import assert_same_catalog, catalog_of


@pytest.fixture(scope="module")
def db(module_db: str) -> str:
    migrate.upgrade(module_db, "head")
    with connect(module_db) as conn:
        conn.execute(
            "INSERT INTO users (username, email, password_hash)"
            " SELECT 'u' || g, 'u' || g || '@x', 'h' FROM generate_series(1, 50) g"
        )
        conn.execute(
            "INSERT INTO refresh_tokens (user_id, token_hash, expires_at)"
            " SELECT id, md5(username), now() - interval '1 day' FROM users"
        )
    tolerate_lag(module_db)
    return module_db


@pytest.fixture
def green(db: str) -> Iterator[str]:
    """The module database, proven green before the test and again after its repair."""
    assert_green(db)
    yield db
    assert_green(db)


def report(dsn: str) -> VerifyReport:
    return verify.verify(dsn, check_cron=False)


def assert_green(dsn: str) -> None:
    result = report(dsn)
    assert result.ok, [f"{c.name}: {c.evidence}" for c in result.failures]


def failed(dsn: str) -> dict[str, str]:
    result = report(dsn)
    assert not result.ok
    return {c.name: c.evidence for c in result.failures}


def run_sql(dsn: str, *statements: str) -> None:
    with connect(dsn) as conn:
        for statement in statements:
            conn.execute(statement)


def test_a_healthy_database_passes_every_check_with_evidence(
    green: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = pgsweep(capsys, "verify", "--no-cron", "--dsn", green)
    assert done.code == 0, done.out
    lines = done.out.splitlines()
    assert lines[-1].endswith("all checks pass")
    assert "PASS  revision: database at " in done.out
    assert (
        "PASS  function public.cleanup_all_expired_tokens(): returns TABLE(password_reset_cleaned"
        in done.out
    )
    assert "PASS  trigger refresh_tokens.trg_refresh_tokens_cleanup: enabled" in done.out
    assert "PASS  index public.idx_refresh_tokens_expires_at: valid" in done.out
    assert (
        "PASS  plan cleanup refresh_tokens.expires_at: index idx_refresh_tokens_expires_at"
        " can serve it; planner picks" in done.out
    )
    assert "PASS  plan login by email: index users_email_key can serve it" in done.out
    assert "SKIP  pg_cron job: not checked (--no-cron)" in done.out
    as_json = pgsweep(capsys, "verify", "--no-cron", "--json", "--dsn", green).json()
    assert as_json["ok"] is True
    assert {c["status"] for c in as_json["checks"]} == {"pass", "skip"}


def test_verify_changes_nothing(green: str) -> None:
    def expired_rows() -> int:
        with connect(green) as conn:
            row = conn.execute(
                "SELECT count(*) FROM refresh_tokens WHERE expires_at < now()"
            ).fetchone()
        assert row is not None
        return int(row[0])

    before, garbage = catalog_of(green), expired_rows()
    assert garbage > 0  # rows any cleanup would delete
    assert report(green).ok
    assert_same_catalog(before, catalog_of(green), "verify changed the catalog")
    assert expired_rows() == garbage
    assert migrate.current(green) == migrate.head()


def test_a_disabled_trigger_is_red(green: str) -> None:
    run_sql(
        green, "ALTER TABLE password_reset_tokens DISABLE TRIGGER trg_password_reset_tokens_cleanup"
    )
    try:
        failures = failed(green)
    finally:
        run_sql(
            green,
            "ALTER TABLE password_reset_tokens ENABLE TRIGGER trg_password_reset_tokens_cleanup",
        )
    assert list(failures) == ["trigger password_reset_tokens.trg_password_reset_tokens_cleanup"]
    assert failures["trigger password_reset_tokens.trg_password_reset_tokens_cleanup"].startswith(
        "disabled"
    )


def test_a_dropped_trigger_is_red(green: str) -> None:
    run_sql(green, "DROP TRIGGER trg_refresh_tokens_cleanup ON refresh_tokens")
    try:
        failures = failed(green)
    finally:
        run_sql(
            green,
            "CREATE TRIGGER trg_refresh_tokens_cleanup AFTER INSERT ON public.refresh_tokens"
            " FOR EACH STATEMENT EXECUTE FUNCTION pgsweep.sweep_on_insert('expires_at', '10')",
        )
    assert failures == {"trigger refresh_tokens.trg_refresh_tokens_cleanup": "missing"}


def test_a_dropped_index_is_red_and_so_is_the_path_it_served(green: str) -> None:
    run_sql(green, "DROP INDEX idx_refresh_tokens_expires_at")
    try:
        failures = failed(green)
    finally:
        run_sql(green, "CREATE INDEX idx_refresh_tokens_expires_at ON refresh_tokens (expires_at)")
    assert failures["index public.idx_refresh_tokens_expires_at"].startswith("missing")
    assert failures["plan cleanup refresh_tokens.expires_at"].startswith("no index can serve it")
    assert set(failures) == {
        "index public.idx_refresh_tokens_expires_at",
        "plan cleanup refresh_tokens.expires_at",
        "plan cleanup refresh_tokens.expires_at (sweep probe)",
        "plan cleanup refresh_tokens.expires_at (sweep batch)",
    }


def test_an_invalid_index_is_red(green: str) -> None:
    flip = (
        "UPDATE pg_index SET indisvalid = {} WHERE indexrelid ="
        " 'idx_password_reset_tokens_user_id'::regclass"
    )
    run_sql(green, flip.format("false"))
    try:
        failures = failed(green)
    finally:
        run_sql(green, flip.format("true"))
    assert failures["index public.idx_password_reset_tokens_user_id"].startswith("INVALID")
    # The planner ignores an invalid index: the invalidate-by-user lookup lost its index.
    assert failures["plan password_reset_tokens invalidate by user"].startswith(
        "no index can serve it"
    )


def test_an_unknown_invalid_index_is_red(green: str) -> None:
    run_sql(
        green,
        "CREATE INDEX stray ON users (created_at)",
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'stray'::regclass",
    )
    try:
        failures = failed(green)
    finally:
        run_sql(green, "DROP INDEX stray")
    assert failures == {"other indexes in public": "invalid: public.stray"}


def test_a_contract_function_replaced_by_another_body_is_red(green: str) -> None:
    with connect(green) as conn:
        original = conn.execute(
            "SELECT pg_get_functiondef('public.cleanup_expired_refresh_tokens()'::regprocedure)"
        ).fetchone()
    assert original is not None
    # Same name, signature, result, security and options: only the body differs.
    run_sql(
        green,
        "CREATE OR REPLACE FUNCTION public.cleanup_expired_refresh_tokens() RETURNS integer"
        " LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
        " AS $$ SELECT 0 $$",
    )
    try:
        failures = failed(green)
    finally:
        run_sql(green, original[0])
    assert list(failures) == ["function public.cleanup_expired_refresh_tokens()"]
    assert failures["function public.cleanup_expired_refresh_tokens()"].startswith(
        "body differs from the shipped one"
    )


def test_an_engine_function_that_lost_its_pinned_search_path_or_definer_is_red(
    green: str,
) -> None:
    run_sql(
        green,
        "ALTER FUNCTION pgsweep.purge_rule(pgsweep.expiry_rule) RESET search_path",
        "ALTER FUNCTION public.cleanup_all_expired_tokens() SECURITY INVOKER",
    )
    try:
        failures = failed(green)
    finally:
        run_sql(
            green,
            "ALTER FUNCTION pgsweep.purge_rule(pgsweep.expiry_rule)"
            " SET search_path = pg_catalog, pg_temp",
            "ALTER FUNCTION public.cleanup_all_expired_tokens() SECURITY DEFINER",
        )
    statement = "function pgsweep.purge_rule(p_rule pgsweep.expiry_rule)"
    assert "config is ''" in failures[statement]
    assert "security_definer is False" in failures["function public.cleanup_all_expired_tokens()"]


def test_a_dropped_contract_function_is_red(green: str) -> None:
    with connect(green) as conn:
        original = conn.execute(
            "SELECT pg_get_functiondef('public.refresh_stale_deck_progress(uuid)'::regprocedure)"
        ).fetchone()
    assert original is not None
    run_sql(green, "DROP FUNCTION public.refresh_stale_deck_progress(uuid)")
    try:
        failures = failed(green)
    finally:
        run_sql(
            green,
            original[0],
            "REVOKE ALL ON FUNCTION public.refresh_stale_deck_progress(uuid) FROM PUBLIC",
        )
    assert failures == {"function public.refresh_stale_deck_progress(p_user_id uuid)": "missing"}


def test_a_database_behind_the_code_is_red(green: str) -> None:
    migrate.downgrade(green, "0006")
    try:
        failures = failed(green)
    finally:
        migrate.upgrade(green, "head")
    assert failures["revision"].startswith("database at 0006, behind the code's head")
    assert failures["engine"].startswith("this database has the engine Matcha Time's revisions")
    assert failures["function public.deck_progress(p_user_id uuid, p_deck_ids uuid[])"] == (
        "missing"
    )


def test_a_database_ahead_of_the_code_is_red(green: str) -> None:
    head = migrate.head()
    run_sql(green, "UPDATE alembic_version SET version_num = '0099'")
    try:
        failures = failed(green)
    finally:
        run_sql(green, f"UPDATE alembic_version SET version_num = '{head}'")
    assert failures == {
        "revision": f"database at 0099, unknown to this code (head {head}):"
        " the database is ahead of this code"
    }
