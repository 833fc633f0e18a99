"""Login roles for least-privilege tests: unique per test run, dropped afterwards.

Roles are cluster-wide, so every name carries a random suffix and :func:`temporary_roles` drops
what the roles own in the test database (``DROP OWNED``) and then the roles themselves, even
when the test fails.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgsweep.dsn import conninfo
from tests.pg import connect

TOKEN_TABLES_SQL = "password_reset_tokens, email_verification_tokens, refresh_tokens"

# The role model of docs/matcha.md, "Roles", statement for statement ({app}, {maintenance}: roles).
APP_GRANTS = (
    "GRANT SELECT ON users TO {app}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON " + TOKEN_TABLES_SQL + " TO {app}",
)
DECK_PROGRESS_GRANTS = (
    "GRANT SELECT ON deck_flashcards, user_card_progress TO {app}",
    "GRANT SELECT, INSERT, UPDATE ON user_deck_progress TO {app}",
)
MAINTENANCE_GRANTS = (
    "GRANT EXECUTE ON FUNCTION cleanup_all_expired_tokens(),"
    " cleanup_expired_password_reset_tokens(), cleanup_expired_email_verification_tokens(),"
    " cleanup_expired_refresh_tokens() TO {maintenance}",
)


@dataclass(frozen=True)
class Role:
    name: str
    password: str
    dsn: str  # logs in as this role to the test database


def grant(admin_dsn: str, statements: tuple[str, ...], **roles: Role) -> None:
    names = {key: sql.Identifier(role.name) for key, role in roles.items()}
    with connect(admin_dsn) as conn:
        for statement in statements:
            conn.execute(sql.SQL(statement).format(**names))


@contextlib.contextmanager
def temporary_roles(db_dsn: str, *hints: str) -> Iterator[dict[str, Role]]:
    """LOGIN roles named ``pgsweep_<hint>_<random>``, with no privilege beyond PUBLIC's."""
    suffix = uuid.uuid4().hex[:8]
    roles: dict[str, Role] = {}
    try:
        with connect(db_dsn) as conn:
            for hint in hints:
                name, password = f"pgsweep_{hint}_{suffix}", secrets.token_urlsafe(16)
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(name), sql.Literal(password)
                    )
                )
                dsn = make_conninfo(conninfo(db_dsn), user=name, password=password)
                roles[hint] = Role(name, password, dsn)
        yield roles
    finally:
        with connect(db_dsn) as conn:
            for role in roles.values():
                # Ends the role's sessions in this database so DROP OWNED cannot wait on them.
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    (role.name,),
                )
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role.name)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role.name)))
