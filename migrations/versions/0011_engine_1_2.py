"""0011_engine_1_2: Matcha Time on pgsweep engine 1.2.

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UP_SQL = "sql/0011_engine_1_2.sql"
DOWN_SQL = "rollback/0011_engine_1_2_down.sql"

# The downgrade refuses while a rule uses what 1.1 would misread, so the rules stay; what 1.2
# alone records goes with it (engine/releases/1.2/downgrade.sql).
DESTROYS_DATA: str | None = None


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
