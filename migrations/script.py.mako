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


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
