"""pgsweep engine 1.4: upgrades 1.3 (or 1.2, 1.1, 1.0) in place; its downgrade returns to 1.3.

The downgrade refuses while rules use what only 1.4 can run (engine/releases/1.4/downgrade.sql
says which): remove or change those rules first.
"""

from pgsweep.engine import release_file
from pgsweep.revision_files import run_sql_file

revision = "pgsweep_1_4"
down_revision = "pgsweep_1_3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(release_file("1.4", "upgrade.sql"))


def downgrade() -> None:
    run_sql_file(release_file("1.4", "downgrade.sql"))
