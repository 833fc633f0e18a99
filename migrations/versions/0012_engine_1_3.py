"""0012_engine_1_3: Matcha Time on pgsweep engine 1.3.

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UP_SQL = "sql/0012_engine_1_3.sql"
DOWN_SQL = "rollback/0012_engine_1_3_down.sql"

# The downgrade refuses while a rule uses what 1.2 would misread, so the rules stay; what 1.3
# alone records goes with it (engine/releases/1.3/downgrade.sql).
DESTROYS_DATA: str | None = None


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
