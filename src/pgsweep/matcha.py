"""Matcha Time, the reference app: what pgsweep checks in its database beyond the engine.

The app's own chain (``alembic.ini``, ``migrations/``, ``sql/``, ``rollback/``) installs its
schema and, since revision 0009, the standalone engine. A database is the app's when its
``alembic_version`` records a revision of that chain (:func:`is_app_database`); then
``pgsweep verify`` also checks the revision, the app's routines, triggers and indexes
(``matcha_manifest.json``) and the plans of the app's hot lookups below. Nothing in the engine
or the other commands depends on this module.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Any

import psycopg

from pgsweep import deploy, migrate
from pgsweep.plans import Path

MANIFEST_PATH = FilePath(__file__).resolve().parent / "matcha_manifest.json"
# The runbook's nightly job runs this contract function (its token rules, one transaction).
CLEANUP_FUNCTION = "cleanup_all_expired_tokens"
# The app's objects live in public (the engine's in pgsweep, checked against the engine's own).
SCHEMAS = ("public",)


def is_app_database(conn: psycopg.Connection[Any]) -> bool:
    """Whether the database records a revision of Matcha Time's chain, or (at a revision this
    code does not know) has the app's public contract."""
    revision = deploy.recorded_revision(conn)
    if revision is None:
        return False
    if revision in migrate.revisions():
        return True
    row = conn.execute(
        "SELECT to_regprocedure('public.cleanup_all_expired_tokens()') IS NOT NULL"
    ).fetchone()
    return bool(row and row[0])


# Tables outside the system schemas that no extension owns (alembic_version aside), the
# engine's own last.
_OWN_TABLES = """
SELECT n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'f')
   AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
   AND NOT (n.nspname = 'public' AND c.relname = 'alembic_version')
   AND NOT EXISTS (SELECT FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
 ORDER BY n.nspname = 'pgsweep', 1
"""


def foreign_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The tables of a database that is not the app's (no alembic_version of its chain), which
    the app's chain would build its schema beside; empty for the app's or an empty database."""
    if is_app_database(conn):
        return []
    return [str(row[0]) for row in conn.execute(_OWN_TABLES).fetchall()]


# The app's hot lookups (schema-facts.md). Parameters are placeholder values: the plan for an
# equality on a unique or selective column does not depend on the value.
HOT_LOOKUPS = (
    Path(
        "login by email",
        "users",
        "SELECT id FROM public.users WHERE email = 'someone@example.test'",
    ),
    Path(
        "password_reset_tokens by hash",
        "password_reset_tokens",
        "SELECT user_id FROM public.password_reset_tokens WHERE token_hash = 'no-such-hash'",
    ),
    Path(
        "email_verification_tokens by hash",
        "email_verification_tokens",
        "SELECT user_id FROM public.email_verification_tokens WHERE token_hash = 'no-such-hash'",
    ),
    Path(
        "refresh_tokens by hash",
        "refresh_tokens",
        "SELECT user_id FROM public.refresh_tokens WHERE token_hash = 'no-such-hash'",
    ),
    Path(
        "password_reset_tokens invalidate by user",
        "password_reset_tokens",
        "UPDATE public.password_reset_tokens SET used_at = now()"
        " WHERE user_id = '00000000-0000-0000-0000-000000000000' AND used_at IS NULL",
    ),
    Path(
        "email_verification_tokens invalidate by user",
        "email_verification_tokens",
        "UPDATE public.email_verification_tokens SET used_at = now()"
        " WHERE user_id = '00000000-0000-0000-0000-000000000000' AND used_at IS NULL",
    ),
    Path(
        "refresh_tokens by user",
        "refresh_tokens",
        "SELECT id FROM public.refresh_tokens"
        " WHERE user_id = '00000000-0000-0000-0000-000000000000'",
    ),
)


