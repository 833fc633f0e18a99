"""0001_init: the Matcha Time base schema (users, roadmaps, decks, flashcards, progress, stats).

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UP_SQL = "sql/0001_init.sql"
DOWN_SQL = "rollback/0001_init_down.sql"

# What the downgrade destroys for good (matcha-time downgrade asks for consent first).
DESTROYS_DATA: str | None = (
    "every table of the app (users, roadmaps, decks, flashcards, progress, stats)"
    " and all their rows"
)


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
