"""0002_add_profile_picture: users.profile_picture_url.

Runs exactly UP_SQL on upgrade and DOWN_SQL on downgrade (README, "Migrations").
"""

from pgsweep.revision_files import revision_path, run_sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UP_SQL = "sql/0002_add_profile_picture.sql"
DOWN_SQL = "rollback/0002_add_profile_picture_down.sql"

# What the downgrade destroys for good (matcha-time downgrade asks for consent first).
DESTROYS_DATA: str | None = (
    "the column users.profile_picture_url and its values"
)


def upgrade() -> None:
    run_sql_file(revision_path(__file__, UP_SQL))


def downgrade() -> None:
    run_sql_file(revision_path(__file__, DOWN_SQL))
