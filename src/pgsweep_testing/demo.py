"""``make demo``: the lifecycle on a database, end to end, as an operator would see it.

Uses ``DATABASE_URL`` when set (it writes sample rows there: point it at a scratch database),
else starts a throwaway local PostgreSQL, with pg_cron in its ``postgres`` database, that is
removed afterwards. Then runs the ``pgsweep`` commands an operator would: upgrade, current,
status, cleanup --dry-run, schedule (own cluster only), verify, cleanup, status; and shows the
app's invalidate-then-insert with the insert trigger sweeping used tokens.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from pgsweep import cli
from pgsweep.dsn import redact
from pgsweep_testing.localpg import LocalCluster


@dataclass(frozen=True)
class DemoDatabase:
    dsn: str
    own_cluster: bool  # a throwaway cluster of our own: pg_cron may be set up and scheduled


@contextmanager
def demo_database() -> Iterator[DemoDatabase]:
    url = os.environ.get("DATABASE_URL")
    if url:
        print(f"Using DATABASE_URL: {redact(url)}")
        yield DemoDatabase(url, own_cluster=False)
        return
    # pg_cron's database is "postgres", the app's is matcha_demo: the common production case.
    with LocalCluster(cron_database="postgres") as cluster:
        print(f"Started a throwaway PostgreSQL on 127.0.0.1:{cluster.port} (removed at the end)")
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE matcha_demo")
            if cluster.has_pg_cron:
                admin.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        yield DemoDatabase(cluster.dsn("matcha_demo"), own_cluster=cluster.has_pg_cron)


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


def count_used(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM password_reset_tokens WHERE used_at IS NOT NULL"
    ).fetchone()
    return int(row[0]) if row else 0


def pgsweep(*argv: str) -> int:
    """Run one pgsweep command as an operator would type it (DATABASE_URL is set)."""
    print(f"\n$ pgsweep {' '.join(argv)}", flush=True)
    code = cli.main(list(argv))
    sys.stdout.flush()
    if code:
        print(f"(exit status {code})")
    return code


def show_the_app(conn: psycopg.Connection[Any]) -> None:
    user = conn.execute(
        "SELECT u.id, u.username FROM users u JOIN password_reset_tokens t"
        " ON t.user_id = u.id AND t.used_at IS NULL AND t.expires_at > now()"
        " GROUP BY u.id ORDER BY count(*) DESC, u.username LIMIT 1"
    ).fetchone()
    assert user is not None
    print(f"\nThe app issues a password reset for {user[1]} (invalidate, then insert):")
    conn.execute(
        "UPDATE password_reset_tokens SET used_at = now() WHERE user_id = %s AND used_at IS NULL",
        (user[0],),
    )
    print(f"  used tokens after the invalidate: {count_used(conn)}")
    conn.execute(
        "INSERT INTO password_reset_tokens (user_id, token_hash, expires_at)"
        " VALUES (%s, md5(random()::text), now() + interval '1 hour')",
        (user[0],),
    )
    print(f"  used tokens after the insert (its trigger swept them): {count_used(conn)}")


def main() -> int:
    failures = 0
    with demo_database() as database:
        os.environ["DATABASE_URL"] = database.dsn
        failures += pgsweep("upgrade") != 0
        failures += pgsweep("current") != 0
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            print("\n(loading sample tokens for 500 users: live, expired and used)")
            load_sample_data(conn)
            failures += pgsweep("status") != 0
            failures += pgsweep("cleanup", "--dry-run") != 0
            if database.own_cluster:
                # The app's database is not cron.database_name: schedule from outside.
                failures += pgsweep("schedule") != 0
                failures += pgsweep("verify") != 0
            else:
                print("\n(DATABASE_URL given: the demo schedules no pg_cron job on your server)")
                failures += pgsweep("verify", "--no-cron") != 0
            failures += pgsweep("cleanup") != 0
            failures += pgsweep("status") != 0
            show_the_app(conn)
    print("\nDone." if not failures else f"\n{failures} command(s) failed.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
