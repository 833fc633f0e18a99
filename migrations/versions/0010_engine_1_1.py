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

# What engine 1.1 records and 1.0 has no place for goes with the downgrade (CHANGELOG.md). The
# downgrade refuses while a rule uses what 1.0 would misread, so the rules themselves stay.
DESTROYS_DATA: str | None = (
    "the engine's run history (pgsweep.run, run_rule, rule_counter, trigger_sweep) and every"
    " rule's lag target"
)


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
