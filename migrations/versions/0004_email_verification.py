"""0004_email_verification: email_verification_tokens and users.email_verified.

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UP_SQL = "sql/0004_email_verification.sql"
DOWN_SQL = "rollback/0004_email_verification_down.sql"

# What the downgrade destroys for good (matcha-time downgrade asks for consent first).
DESTROYS_DATA: str | None = (
    "the email_verification_tokens table and its rows, and the column users.email_verified"
)


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
