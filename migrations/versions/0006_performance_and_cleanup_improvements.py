"""0006_performance_and_cleanup_improvements: the expiry lifecycle of the token tables.

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UP_SQL = "sql/0006_performance_and_cleanup_improvements.sql"
DOWN_SQL = "rollback/0006_performance_and_cleanup_improvements_down.sql"

# What the downgrade destroys for good (matcha-time downgrade asks for consent first).
DESTROYS_DATA: str | None = (
    "pgsweep.expiry_rule: the shipped expiry rules and any added with pgsweep.add_rule"
)


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
