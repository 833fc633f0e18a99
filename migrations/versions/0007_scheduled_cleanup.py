"""0007_scheduled_cleanup: the nightly pg_cron job (when pg_cron is usable here), garbage counts.

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UP_SQL = "sql/0007_scheduled_cleanup.sql"
DOWN_SQL = "rollback/0007_scheduled_cleanup_down.sql"

# None: drops pgsweep.scheduled_job, its own record of the pg_cron jobs it created, after
# unscheduling exactly those jobs; no row of the app's is touched.
DESTROYS_DATA: str | None = None


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
