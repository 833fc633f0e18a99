"""0009_standalone_engine: Matcha Time on the standalone engine 1.0; deck progress leaves it.

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UP_SQL = "sql/0009_standalone_engine.sql"
DOWN_SQL = "rollback/0009_standalone_engine_down.sql"


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
