"""pgsweep engine 1.0: installs the engine (schema pgsweep); its downgrade uninstalls it.

The downgrade refuses while expiry rules exist: the app's revisions that registered them are
downgraded first (they depend on this one), and should remove their rules on the way down.
"""

from pgsweep.engine import release_file
from pgsweep.revision_files import run_sql_file

revision = "pgsweep_1_0"
down_revision = None
branch_labels = ("pgsweep",)
depends_on = None


def upgrade() -> None:
    run_sql_file(release_file("1.0", "install.sql"))


def downgrade() -> None:
    run_sql_file(release_file("1.0", "uninstall.sql"))
