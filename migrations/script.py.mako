"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}

UP_SQL = "sql/${up_revision}_TODO.sql"
DOWN_SQL = "rollback/${up_revision}_TODO_down.sql"

# What DOWN_SQL destroys for good (a table, a column, rows), in words for the operator; None
# when it destroys nothing. matcha-time downgrade asks for consent before crossing such a revision,
# and tests/test_consent.py fails when a down script drops a table or column without it.
DESTROYS_DATA: str | None = None


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
