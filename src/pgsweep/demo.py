"""``make demo``: the lifecycle on a database, end to end, as an operator would see it.

Uses ``DATABASE_URL`` when set (it writes sample rows there: point it at a scratch database),
else starts a throwaway local PostgreSQL that is removed afterwards. Then: upgrade to head,
load a little realistic Matcha Time data, show what is expired, prove the cleanup plans use
their indexes, run the cleanup and the triggers, and show the result.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from pgsweep import migrate, plans
from pgsweep.dsn import redact
from pgsweep.localpg import LocalCluster

TOKEN_TABLES = ("password_reset_tokens", "email_verification_tokens", "refresh_tokens")


@contextmanager
def demo_database() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        print(f"Using DATABASE_URL: {redact(url)}")
        yield url
        return
    with LocalCluster() as cluster:
        print(f"Started a throwaway PostgreSQL on 127.0.0.1:{cluster.port} (removed at the end)")
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE matcha_demo")
        yield cluster.dsn("matcha_demo")


def load_sample_data(conn: psycopg.Connection[Any]) -> None:
    """Token traffic for 500 users over the last hours or days: some live, some expired, and a
    fifth of the password-reset and verification tokens used."""
    conn.execute(
        "INSERT INTO users (username, email, password_hash)"
        " SELECT 'demo' || g, 'demo' || g || '@example.test', 'x' FROM generate_series(1, 500) g"
        " ON CONFLICT DO NOTHING"
    )
    for table, rows, lifetime, spread in (
        ("password_reset_tokens", 4000, "1 hour", "6 hours"),
        ("email_verification_tokens", 3000, "1 day", "3 days"),
        ("refresh_tokens", 8000, "30 days", "45 days"),
    ):
        used = table != "refresh_tokens"
        conn.execute(
            f"INSERT INTO {table} (user_id, token_hash, expires_at"  # noqa: S608 - constants
            f"{', used_at' if used else ''}, created_at)"
            " SELECT u.id, md5(random()::text || g), t.created + %(lifetime)s::interval"
            f"       {', CASE WHEN g %% 5 = 0 THEN t.created END' if used else ''},"
            "        t.created"
            " FROM generate_series(1, %(rows)s) g"
            " CROSS JOIN LATERAL"
            "   (SELECT now() - (g::float8 / %(rows)s) * %(spread)s::interval AS created) t"
            " JOIN LATERAL (SELECT id FROM users OFFSET g %% 500 LIMIT 1) u ON true",
            {"rows": rows, "lifetime": lifetime, "spread": spread},
        )
    conn.execute("ANALYZE")


def show_status(conn: psycopg.Connection[Any], title: str) -> None:
    print(f"\n{title}")
    print(f"  {'table':<28}{'live':>8}{'expired':>9}{'used':>7}")
    for table in TOKEN_TABLES:
        used = "count(*) FILTER (WHERE used_at IS NOT NULL)" if table != "refresh_tokens" else "0"
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE expires_at >= now()"  # noqa: S608 - constants
            f"{' AND used_at IS NULL' if table != 'refresh_tokens' else ''}),"
            f" count(*) FILTER (WHERE expires_at < now()), {used} FROM {table}"
        ).fetchone()
        assert row is not None
        print(f"  {table:<28}{row[0]:>8}{row[1]:>9}{row[2]:>7}")


def show_plans(conn: psycopg.Connection[Any]) -> None:
    print("\nHow each cleanup batch finds its rows (EXPLAIN, nothing executed):")
    for path in plans.cleanup_paths(conn):
        if path.name.endswith("(next batch)"):
            continue
        found = plans.scans(plans.explain(conn, path.statement))
        index = next((s.index for s in found if s.uses_index), None)
        print(f"  {path.name:<46} {'index ' + index if index else 'NO INDEX'}")


def count_used(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM password_reset_tokens WHERE used_at IS NOT NULL"
    ).fetchone()
    return int(row[0]) if row else 0


def main() -> int:
    with demo_database() as dsn:
        print("\n$ pgsweep upgrade head")
        migrate.upgrade(dsn, "head")
        print(f"  database at revision {migrate.current(dsn)} (code head {migrate.head()})")
        with psycopg.connect(dsn, autocommit=True) as conn:
            load_sample_data(conn)
            show_status(conn, "Before cleanup:")
            show_plans(conn)

            print("\n$ psql -c 'SELECT * FROM cleanup_all_expired_tokens();'")
            row = conn.execute("SELECT * FROM cleanup_all_expired_tokens()").fetchone()
            assert row is not None
            print(
                f"  password_reset_cleaned={row[0]} email_verification_cleaned={row[1]}"
                f" refresh_tokens_cleaned={row[2]} total_cleaned={row[3]}"
            )
            show_status(conn, "After cleanup:")

            user = conn.execute(
                "SELECT u.id, u.username FROM users u JOIN password_reset_tokens t"
                " ON t.user_id = u.id AND t.used_at IS NULL AND t.expires_at > now()"
                " GROUP BY u.id ORDER BY count(*) DESC, u.username LIMIT 1"
            ).fetchone()
            assert user is not None
            print(f"\nThe app issues a password reset for {user[1]} (invalidate, then insert):")
            conn.execute(
                "UPDATE password_reset_tokens SET used_at = now()"
                " WHERE user_id = %s AND used_at IS NULL",
                (user[0],),
            )
            print(f"  used tokens after the invalidate: {count_used(conn)}")
            conn.execute(
                "INSERT INTO password_reset_tokens (user_id, token_hash, expires_at)"
                " VALUES (%s, md5(random()::text), now() + interval '1 hour')",
                (user[0],),
            )
            print(f"  used tokens after the insert (its trigger swept them): {count_used(conn)}")
    print("\nDone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
