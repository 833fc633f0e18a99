"""0008_single_pass_purge: each garbage row deleted in one pass; sweep batches as column ranges.

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UP_SQL = "sql/0008_single_pass_purge.sql"
DOWN_SQL = "rollback/0008_single_pass_purge_down.sql"

# None: puts back 0006's purge functions; no table or row is touched.
DESTROYS_DATA: str | None = None


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
