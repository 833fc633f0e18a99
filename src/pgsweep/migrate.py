"""Drive the Alembic chain from Python: upgrade, downgrade, stamp, and read the version.

Every call opens its own connection to ``dsn`` and hands it to env.py through
``config.attributes["connection"]``, so the same revisions run here, from the ``alembic``
command and from an installed wheel.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, pool

from pgsweep.dsn import sqlalchemy_url
from pgsweep.paths import alembic_ini, data_root


def alembic_config(connection: Connection | None = None) -> Config:
    """The chain's Alembic config, found in the checkout or the installed wheel."""
    config = Config(str(alembic_ini()))
    config.set_main_option("script_location", str(data_root() / "migrations"))
    # The caller owns logging; alembic.ini's logging section is for the alembic command.
    config.attributes["configure_logger"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def connect(dsn: str) -> Iterator[Connection]:
    engine = create_engine(sqlalchemy_url(dsn), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def upgrade(dsn: str, revision: str = "head") -> None:
    with connect(dsn) as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(dsn: str, revision: str) -> None:
    with connect(dsn) as connection:
        command.downgrade(alembic_config(connection), revision)


def stamp(dsn: str, revision: str) -> None:
    with connect(dsn) as connection:
        command.stamp(alembic_config(connection), revision)
        connection.commit()


def current(dsn: str) -> str | None:
    """The revision recorded in the database, or None when it has none."""
    with connect(dsn) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    """The newest revision this code ships."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migration chain must have exactly one head, has {heads}")
    return heads[0]


def revisions() -> list[str]:
    """Every revision id, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
