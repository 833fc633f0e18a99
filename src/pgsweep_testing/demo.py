"""``make demo``: the lifecycle on a database, end to end, as an operator would see it.

Without ``DATABASE_URL`` it starts a throwaway local PostgreSQL (binaries from ``PG_BINDIR``,
default /usr/lib/postgresql/15/bin), with pg_cron in its ``postgres`` database, removed
afterwards. Then it builds the reference app's schema with its own command (``matcha-time
upgrade``, ``current``) and runs the ``pgsweep`` commands an operator would: status, cleanup
--dry-run, schedule (own cluster only), cleanup, verify, status; and shows the app's
invalidate-then-insert with the insert trigger sweeping used tokens.

With ``DATABASE_URL`` it writes 500 sample users and 15,000 tokens there, so it accepts only a
*throwaway* database: one that has no tables of its own (extensions' tables aside). The name is
no evidence (a "test_results" database can hold anything). It then removes everything it
created (``downgrade base``), leaving the database empty again. Any other database only with
``PGSWEEP_DEMO_ALLOW=1`` or ``--yes``: then it upgrades that database to head, runs the cleanup
there (which deletes every expired or used token in it, not only the demo's), and at the end
deletes exactly the sample users it inserted, with their tokens.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from pgsweep import cli, db, matcha_cli, migrate
from pgsweep.dsn import redact
from pgsweep.errors import EXIT_USAGE, PgsweepError
from pgsweep_testing.localpg import LocalCluster, LocalClusterError

ALLOW_VARIABLE = "PGSWEEP_DEMO_ALLOW"


class NotThrowaway(PgsweepError):
    """DATABASE_URL names a database with tables of its own, and nobody said it may be used."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class DemoDatabase:
    dsn: str
    own_cluster: bool  # a throwaway cluster of our own: pg_cron may be set up and scheduled
    empty: bool = True  # had no tables of its own: the demo removes all it created at the end


# Tables, views and sequences outside the system schemas that no extension owns.
_OWN_RELATIONS = """
SELECT n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
   AND NOT EXISTS (SELECT FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
 ORDER BY 1
"""


def own_relations(dsn: str) -> list[str]:
    with db.connect(dsn) as conn:
        return [str(row[0]) for row in conn.execute(_OWN_RELATIONS).fetchall()]


def check_throwaway(dsn: str, allowed: bool) -> bool:
    """Whether the database is empty; a NotThrowaway error when it is not and not allowed."""
    relations = own_relations(dsn)
    if not relations or allowed:
        return not relations
    more = len(relations) - 3
    shown = ", ".join(relations[:3]) + (f" and {more} more" if more > 0 else "")
    raise NotThrowaway(
        f"DATABASE_URL ({redact(dsn)}) is not a throwaway database: it has tables ({shown}),"
        " and the demo writes 500 users and 15,000 tokens, upgrades it to head and runs the"
        " cleanup there. Point DATABASE_URL at an empty database, or set"
        f" {ALLOW_VARIABLE}=1 (or pass --yes) to use this one anyway"
    )


@contextmanager
def demo_database(allowed: bool = False) -> Iterator[DemoDatabase]:
    url = os.environ.get("DATABASE_URL")
    if url:
        empty = check_throwaway(url, allowed)
        print(f"Using DATABASE_URL: {redact(url)}")
        yield DemoDatabase(url, own_cluster=False, empty=empty)
        return
    # pg_cron's database is "postgres", the app's is matcha_demo: the common production case.
    with LocalCluster(cron_database="postgres") as cluster:
        print(f"Started a throwaway PostgreSQL on 127.0.0.1:{cluster.port} (removed at the end)")
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE matcha_demo")
            if cluster.has_pg_cron:
                admin.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        yield DemoDatabase(cluster.dsn("matcha_demo"), own_cluster=cluster.has_pg_cron)


# No sample token expires this soon after the load: the demo's dry run and its cleanup then
# count the same rows however long the commands between them take. (Issued every few seconds
# back from now, a password-reset token used to expire 3.6 s after the load, a verification
# token after 86 s and a refresh token after 162 s: a dry run before such an instant and a
# cleanup after it differed by a row.)
QUIET_AFTER_LOAD = "10 minutes"


def load_sample_data(conn: psycopg.Connection[Any]) -> list[str]:
    """Token traffic for 500 users over the last hours or days: some live, some expired, and a
    fifth of the password-reset and verification tokens used; none expiring within
    ``QUIET_AFTER_LOAD`` of now. Returns the ids of the users it inserted: every token it writes
    belongs to one of them."""
    users = [
        str(row[0])
        for row in conn.execute(
            "INSERT INTO users (username, email, password_hash)"
            " SELECT 'demo' || g, 'demo' || g || '@example.test', 'x'"
            " FROM generate_series(1, 500) g"
            " ON CONFLICT DO NOTHING RETURNING id"
        ).fetchall()
    ]
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
            " JOIN LATERAL (SELECT id FROM users WHERE id = ANY(%(users)s::uuid[])"
            "              ORDER BY id OFFSET g %% %(n)s LIMIT 1) u ON true"
            " WHERE t.created + %(lifetime)s::interval NOT BETWEEN now()"
            "       AND now() + %(quiet)s::interval",
            {
                "rows": rows,
                "lifetime": lifetime,
                "spread": spread,
                "users": users,
                "n": len(users),
                "quiet": QUIET_AFTER_LOAD,
            },
        )
    conn.execute("ANALYZE")
    return users


def remove_sample_users(conn: psycopg.Connection[Any], users: list[str]) -> None:
    """Delete the demo's users; their tokens and progress go with them (ON DELETE CASCADE)."""
    conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (users,))


def count_used(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM password_reset_tokens WHERE used_at IS NOT NULL"
    ).fetchone()
    return int(row[0]) if row else 0


def pgsweep(*argv: str, program: str = "pgsweep") -> int:
    """Run one pgsweep (or matcha-time) command as an operator would type it (DATABASE_URL is
    set)."""
    print(f"\n$ {program} {' '.join(argv)}", flush=True)
    main = matcha_cli.main if program == "matcha-time" else cli.main
    code = main(list(argv))
    sys.stdout.flush()
    if code:
        print(f"(exit status {code})")
    return code


def show_the_app(conn: psycopg.Connection[Any], users: list[str]) -> None:
    user = conn.execute(
        "SELECT u.id, u.username FROM users u JOIN password_reset_tokens t"
        " ON t.user_id = u.id AND t.used_at IS NULL AND t.expires_at > now()"
        " WHERE u.id = ANY(%s::uuid[])"
        " GROUP BY u.id ORDER BY count(*) DESC, u.username LIMIT 1",
        (users,),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--yes",
        action="store_true",
        help=f"use DATABASE_URL even when it is not a throwaway database (or {ALLOW_VARIABLE}=1)",
    )
    args = parser.parse_args(argv)
    allowed = args.yes or os.environ.get(ALLOW_VARIABLE, "") not in ("", "0")
    try:
        return run(allowed)
    except (PgsweepError, LocalClusterError) as exc:
        # One line: the first line of a cluster error is the cause; its log tail is noise here.
        sys.stderr.write(f"make demo: error: {str(exc).splitlines()[0]}\n")
        return exc.exit_code if isinstance(exc, PgsweepError) else 1


def run(allowed: bool) -> int:
    failures = 0
    with demo_database(allowed) as database:
        os.environ["DATABASE_URL"] = database.dsn
        users: list[str] = []
        try:
            # A database with tables of its own was allowed (--yes): say so to the app's chain.
            consent = () if database.empty else ("--yes",)
            failures += pgsweep("upgrade", *consent, program="matcha-time") != 0
            failures += pgsweep("current", program="matcha-time") != 0
            with psycopg.connect(database.dsn, autocommit=True) as conn:
                print("\n(loading sample tokens for 500 users: live, expired and used)")
                users = load_sample_data(conn)
                failures += pgsweep("status") != 0
                failures += pgsweep("cleanup", "--dry-run") != 0
                if database.own_cluster:
                    # The app's database is not cron.database_name: schedule from outside.
                    failures += pgsweep("schedule") != 0
                else:
                    print("\n(DATABASE_URL given: the demo schedules no pg_cron job there)")
                # The sample is mostly garbage (more than half of two tables): off a terminal the
                # cleanup would stop and ask for consent, which --yes gives.
                failures += pgsweep("cleanup", "--yes") != 0
                # After the cleanup: before it, the sample's old garbage is over its lag target.
                if database.own_cluster:
                    failures += pgsweep("verify") != 0
                else:
                    failures += pgsweep("verify", "--no-cron") != 0
                failures += pgsweep("status") != 0
                show_the_app(conn, users)
        finally:
            if not database.own_cluster:
                clean_up(database, users)
    print("\nDone." if not failures else f"\n{failures} command(s) failed.")
    return 1 if failures else 0


def clean_up(database: DemoDatabase, users: list[str]) -> None:
    """Leave a given database as the demo found it: empty again when it was empty (everything
    the demo created goes, by ``downgrade base``), else without the demo's sample users."""
    if database.empty:
        print("\n(removing what the demo created: downgrade base; the database is empty again)")
        migrate.downgrade(database.dsn, "base")
    elif users:
        print(f"\n(removing the demo's {len(users)} sample users and their tokens)")
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            remove_sample_users(conn, users)


if __name__ == "__main__":
    sys.exit(main())
