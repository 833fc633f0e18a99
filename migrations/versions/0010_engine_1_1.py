"""0010_engine_1_1: Matcha Time on pgsweep engine 1.1.

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UP_SQL = "sql/0010_engine_1_1.sql"
DOWN_SQL = "rollback/0010_engine_1_1_down.sql"

# What engine 1.1 records and 1.0 has no place for goes with the downgrade (CHANGELOG.md).
DESTROYS_DATA: str | None = None


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
