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

# None: the rules and their keep_for stay; what goes is what engine release 1.0 added, among it
# pgsweep.release (the record of the installed release) and each rule's value_zone, a setting
# the 0008 engine cannot read (it reads timestamp columns in the session's TimeZone).
DESTROYS_DATA: str | None = None


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
