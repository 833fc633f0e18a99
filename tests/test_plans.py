"""EXPLAIN on tables large enough that a sequential scan would otherwise win: every cleanup
path and every hot lookup is index-driven. The planner's scan types are never switched off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgsweep import matcha, migrate, plans
from tests.pg import connect

ROWS_PER_TOKEN_TABLE = 200_000
USERS = 50_000

EXPECTED_INDEX = {
    "cleanup password_reset_tokens.expires_at": "idx_password_reset_tokens_expires_at",
    "cleanup password_reset_tokens.used_at": "idx_password_reset_tokens_used_at",
    "cleanup email_verification_tokens.expires_at": "idx_email_verification_tokens_expires_at",
    "cleanup email_verification_tokens.used_at": "idx_email_verification_tokens_used_at",
    "cleanup refresh_tokens.expires_at": "idx_refresh_tokens_expires_at",
    "login by email": "users_email_key",
    "password_reset_tokens by hash": "password_reset_tokens_token_hash_key",
    "email_verification_tokens by hash": "email_verification_tokens_token_hash_key",
    "refresh_tokens by hash": "refresh_tokens_token_hash_key",
    "password_reset_tokens invalidate by user": "idx_password_reset_tokens_user_id",
    "email_verification_tokens invalidate by user": "idx_email_verification_tokens_user_id",
    "refresh_tokens by user": "idx_refresh_tokens_user_id",
}


@pytest.fixture(scope="module")
def big_db(module_db: str) -> str:
    """Realistic proportions: tokens spread over a month, 0.5 % expired, 0.5 % used."""
    migrate.upgrade(module_db, "head")
    with connect(module_db) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO users (username, email, password_hash)"
            " SELECT 'user' || g, 'user' || g || '@example.test', 'h'"
            " FROM generate_series(1, %s) g",
            (USERS,),
        )
        conn.execute("CREATE TEMP TABLE uid AS SELECT row_number() OVER () AS n, id FROM users")
        for table in ("password_reset_tokens", "email_verification_tokens", "refresh_tokens"):
            used = ", CASE WHEN g %% 200 = 1 THEN now() END" if table != "refresh_tokens" else ""
            conn.execute(
                f"INSERT INTO {table} (user_id, token_hash, expires_at"
                f"{', used_at' if used else ''})"
                " SELECT uid.id, md5(g::text),"
                "        CASE WHEN g %% 200 = 0 THEN now() - interval '1 hour'"
                "             ELSE now() + (g %% 43200) * interval '1 minute' END"
                f"       {used}"
                " FROM generate_series(1, %s) g JOIN uid ON uid.n = 1 + g %% %s",
                (ROWS_PER_TOKEN_TABLE, USERS),
            )
        conn.execute("ANALYZE")
    return module_db


@pytest.fixture
def conn(big_db: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(big_db, autocommit=False) as connection:
        yield connection
        connection.rollback()


def all_paths(conn: psycopg.Connection[Any]) -> list[plans.Path]:
    return [*plans.cleanup_paths(conn), *matcha.HOT_LOOKUPS]


def base_name(path: plans.Path) -> str:
    """The rule or lookup a path belongs to: "cleanup t.c (sweep batch)" -> "cleanup t.c"."""
    return path.name.split(" (")[0]


def test_every_cleanup_path_and_hot_lookup_has_an_expected_index(
    conn: psycopg.Connection[Any],
) -> None:
    assert {base_name(p) for p in all_paths(conn)} == set(EXPECTED_INDEX)


def test_every_path_is_served_by_its_index_and_never_by_a_sequential_scan(
    conn: psycopg.Connection[Any],
) -> None:
    report = []
    for path in all_paths(conn):
        plan = plans.explain(conn, path.statement)
        found = plans.scans(plan)
        shown = ", ".join(f"{s.node_type} {s.index or s.relation}" for s in found)
        report.append(f"{path.name}: {shown}")
        assert not [s for s in found if s.node_type == "Seq Scan" and s.relation == path.table], (
            f"{path.name} scans {path.table} sequentially: {found}"
        )
        assert EXPECTED_INDEX[base_name(path)] in {s.index for s in found if s.uses_index}, (
            f"{path.name} does not use {EXPECTED_INDEX[base_name(path)]}: {found}"
        )
    print("\n".join(report))  # shown with -s: the plan lines quoted in the README


def test_the_tables_are_large_enough_that_without_the_index_the_planner_scans(
    conn: psycopg.Connection[Any],
) -> None:
    # The counterfactual that makes the test above meaningful: drop each cleanup index inside
    # this (rolled back) transaction and the same statement turns into a sequential scan.
    for path in plans.cleanup_paths(conn):
        if path.name != base_name(path):
            continue
        conn.execute("SAVEPOINT counterfactual")
        conn.execute(f"DROP INDEX {EXPECTED_INDEX[path.name]}")
        found = plans.scans(plans.explain(conn, path.statement))
        assert any(s.node_type == "Seq Scan" and s.relation == path.table for s in found), (
            f"{path.name} without its index: {found}"
        )
        conn.execute("ROLLBACK TO SAVEPOINT counterfactual")
