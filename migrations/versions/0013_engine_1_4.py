"""0013_engine_1_4: Matcha Time on pgsweep engine 1.4.

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UP_SQL = "sql/0013_engine_1_4.sql"
DOWN_SQL = "rollback/0013_engine_1_4_down.sql"

# The downgrade refuses while a rule uses what 1.3 would misread, so the rules stay; what 1.4
# alone records goes with it (engine/releases/1.4/downgrade.sql).
DESTROYS_DATA: str | None = None


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
