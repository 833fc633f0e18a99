"""``pgsweep cleanup``, ``cleanup --dry-run`` and ``status`` on known data: the dry run counts
exactly what the cleanup then deletes, without a sequential scan, and status adds up."""

from __future__ import annotations

import pytest

from pgsweep import cleanup, migrate, plans, status
from pgsweep.errors import DatabaseBehind
from tests.cli import pgsweep
from tests.pg import connect

# (table, expired-unused, used-unexpired, expired-and-used, live)
SHAPE = {
    "password_reset_tokens": (7, 5, 3, 11),
    "email_verification_tokens": (4, 6, 2, 9),
    "refresh_tokens": (8, 0, 0, 13),
}


def load(dsn: str) -> None:
    migrate.upgrade(dsn, "head")
    with connect(dsn) as conn:
        # The insert triggers would already sweep a few rows: this is about the counts.
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO users (username, email, password_hash)"
            " SELECT 'u' || g, 'u' || g || '@x', 'h' FROM generate_series(1, 20) g"
        )
        for table, (expired, used, both, live) in SHAPE.items():
            has_used = table != "refresh_tokens"
            rows = (
                [("now() - interval '2 hours'", "NULL")] * expired
                + [("now() + interval '1 hour'", "now() - interval '10 minutes'")] * used
                + [("now() - interval '3 hours'", "now() - interval '4 hours'")] * both
                + [("now() + interval '1 day'", "NULL")] * live
            )
            for i, (expires, used_at) in enumerate(rows):
                columns = "user_id, token_hash, expires_at" + (", used_at" if has_used else "")
                values = f"(SELECT id FROM users LIMIT 1), 'h{i}', {expires}" + (
                    f", {used_at}" if has_used else ""
                )
                conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({values})")


def test_dry_run_counts_exactly_what_cleanup_deletes(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    load(fresh_db)
    dry = cleanup.dry_run(fresh_db)
    expected = {t: e + u + b for t, (e, u, b, _) in SHAPE.items()}
    assert {t.table: t.rows for t in dry.tables} == expected
    by_rule = {(t.table, r.column): r.rows for t in dry.tables for r in t.rules}
    # Each row once: a row both expired and used is counted under expires_at only.
    assert by_rule[("password_reset_tokens", "expires_at")] == 7 + 3
    assert by_rule[("password_reset_tokens", "used_at")] == 5

    shown = pgsweep(capsys, "cleanup", "--dry-run", "--dsn", fresh_db, "--json")
    assert shown.code == 0
    assert shown.json()["would_delete"] == sum(expected.values())
    assert status.status(fresh_db).tables[0].garbage > 0  # the dry run deleted nothing

    done = pgsweep(capsys, "cleanup", "--dsn", fresh_db, "--json")
    assert done.code == 0
    assert {t["table"]: t["deleted"] for t in done.json()["tables"]} == expected
    assert cleanup.dry_run(fresh_db).total == 0
    human = pgsweep(capsys, "cleanup", "--dsn", fresh_db)
    assert human.out.splitlines()[-1].split() == ["total", "deleted", "0"]


def test_the_dry_run_counts_are_index_driven(fresh_db: str) -> None:
    load(fresh_db)
    with connect(fresh_db, autocommit=False) as conn:
        # Price sequential scans out: if a count had no index to use, it would still seq-scan.
        conn.execute("SET LOCAL enable_seqscan = off")
        rules = conn.execute(
            "SELECT r.table_name::text, r.column_name, pgsweep.cutoff_literal(r)"
            " FROM pgsweep.expiry_rule r"
        ).fetchall()
        for table, column, cutoff in rules:
            plan = plans.explain(conn, f"SELECT count(*) FROM {table} WHERE {column} < {cutoff}")
            assert any(s.uses_index for s in plans.scans(plan)), (table, column)
        conn.rollback()


def test_status_reports_active_expired_used_ages_and_sizes(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    load(fresh_db)
    tables = {t.table: t for t in status.status(fresh_db).tables}
    assert set(tables) == set(SHAPE)
    prt = tables["password_reset_tokens"]
    expired, used, both, live = SHAPE["password_reset_tokens"]
    assert prt.rows == expired + used + both + live
    assert prt.active == live
    assert prt.garbage == expired + used + both
    rules = {r.column: r for r in prt.rules}
    assert rules["expires_at"].rows == expired + both
    assert rules["used_at"].rows == used + both
    assert rules["expires_at"].oldest_age_s is not None
    assert rules["expires_at"].newest_age_s is not None
    # Oldest expired 3 hours ago, newest 2 hours ago (give or take the test's own runtime).
    assert 3 * 3600 - 60 < rules["expires_at"].oldest_age_s < 3 * 3600 + 60
    assert 2 * 3600 - 60 < rules["expires_at"].newest_age_s < 2 * 3600 + 60
    assert prt.table_bytes > 0
    assert prt.index_bytes > 0
    assert tables["refresh_tokens"].garbage == SHAPE["refresh_tokens"][0]

    human = pgsweep(capsys, "status", "--dsn", fresh_db)
    assert human.code == 0
    assert "password_reset_tokens: 26 rows, 11 active, 15 garbage (not deleted yet)" in human.out
    words = " ".join(human.out.split())
    assert "expires_at 10, oldest 3h 0m ago, newest 2h 0m ago" in words
    assert "used_at 8, oldest 4h 0m ago, newest 10m " in words
    as_json = pgsweep(capsys, "status", "--dsn", fresh_db, "--json").json()
    assert {t["table"]: t["garbage"] for t in as_json["tables"]}["refresh_tokens"] == 8


def test_cleanup_needs_the_database_upgraded(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "0005")
    with pytest.raises(DatabaseBehind, match=r"the database is at 0005.*matcha-time upgrade"):
        cleanup.cleanup(fresh_db)
