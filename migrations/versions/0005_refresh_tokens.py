"""0005_refresh_tokens: long-lived refresh tokens (hash only), garbage once expired.

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UP_SQL = "sql/0005_refresh_tokens.sql"
DOWN_SQL = "rollback/0005_refresh_tokens_down.sql"

# What the downgrade destroys for good (matcha-time downgrade asks for consent first).
DESTROYS_DATA: str | None = (
    "the refresh_tokens table and its rows"
)


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
