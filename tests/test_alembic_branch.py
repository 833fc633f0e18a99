"""An app with an Alembic chain of its own includes the engine as the labelled branch
``pgsweep`` (``pgsweep:alembic_versions`` in its version_locations), depends on a release, and
gets the engine installed before its own revision and removed after it on the way down."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from pgsweep import db
from pgsweep.alembic_branch import VERSION_LOCATION
from pgsweep.engine import latest
from tests.pg import connect

ENV_PY = '''
from alembic import context
connection = context.config.attributes["connection"]
context.configure(connection=connection, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
'''

APP_REVISION = '''
from alembic import op

revision = "a1_sessions"
down_revision = None
branch_labels = ("app",)
depends_on = "pgsweep_1_0"


def upgrade() -> None:
    op.execute("CREATE TABLE app_sessions (id bigserial PRIMARY KEY, expires_at timestamp(3))")
    op.execute("CREATE INDEX ON app_sessions (expires_at)")
    op.execute("SELECT pgsweep.add_rule('app_sessions', 'expires_at', '1 hour')")


def downgrade() -> None:
    op.execute("SELECT pgsweep.remove_rule('app_sessions')")
    op.execute("DROP TABLE app_sessions")
'''


def app_config(tmp_path: Path) -> Config:
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(ENV_PY)
    (tmp_path / "script.py.mako").write_text("")
    (tmp_path / "versions" / "a1_sessions.py").write_text(APP_REVISION)
    config = Config()
    config.set_main_option("script_location", str(tmp_path))
    config.set_main_option("path_separator", "space")
    config.set_main_option("version_locations", f"{tmp_path / 'versions'} {VERSION_LOCATION}")
    return config


def relations(dsn: str) -> set[str]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'v') AND n.nspname IN ('public', 'pgsweep')"
        ).fetchall()
    return {str(r[0]) for r in rows}


def engine_head() -> set[str]:
    """The engine branch's head revision in alembic_version, when newer than pgsweep_1_0."""
    return set() if latest() == "1.0" else {"pgsweep_" + latest().replace(".", "_")}


def test_an_apps_chain_installs_the_engine_before_its_rule_and_removes_it_after(
    fresh_db: str, tmp_path: Path
) -> None:
    config = app_config(tmp_path)
    engine = db.engine(fresh_db)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
        connection.commit()
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT pgsweep.version()").fetchone() == (latest(),)
        assert conn.execute("SELECT table_name, problem FROM pgsweep.rules").fetchall() == [
            ("app_sessions", None)
        ]
        versions = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
    # The release the app depends on is below it; the newer ones are the engine branch's head.
    assert versions == {"a1_sessions"} | engine_head()
    assert "public.app_sessions" in relations(fresh_db)

    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        connection.commit()
    assert relations(fresh_db) == {"public.alembic_version"}
    engine.dispose()
