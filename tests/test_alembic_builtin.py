"""pytest-alembic's built-in tests on our chain, as Alembic users run them in CI.

Run: single head, upgrade base -> head, and up/down consistency (every revision up one at a
time, down one at a time, and up again). Not run: ``test_model_definitions_match_ddl``, which
compares SQLAlchemy models with the database; this chain has no models (every revision is an
SQL file) and pytest-alembic cannot see functions and triggers anyway, which
tests/test_migrations.py compares catalog-wide. The plugin's automatic collection is off
(pyproject.toml), so these are the only ones that run, once per way a caller may hand the
database to env.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import alembic.config
import pytest
from pytest_alembic.plugin.fixtures import alembic_runner  # noqa: F401 - the fixture
from pytest_alembic.tests import (  # noqa: F401 - collected from here
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import Connection, Engine, text

from pgsweep import db, migrate


@pytest.fixture
def alembic_config() -> alembic.config.Config:
    return migrate.alembic_config()


@pytest.fixture(
    params=[
        "engine",
        "connection holding an advisory lock in a transaction",
        "autocommit connection",
    ]
)
def alembic_engine(fresh_db: str, request: pytest.FixtureRequest) -> Iterator[Engine | Connection]:
    engine = db.engine(fresh_db)
    try:
        if request.param == "engine":
            yield engine
            return
        if request.param == "autocommit connection":
            # Every revision's BEGIN ... COMMIT block (0010's down script locks a table in it)
            # must still run as a transaction when the caller's connection commits each
            # statement on its own.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                yield connection
            return
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(4242)"))
            assert connection.in_transaction()
            yield connection
            connection.rollback()
    finally:
        engine.dispose()


def test_the_builtin_suite_ran_on_a_real_server(alembic_runner: Any) -> None:  # noqa: F811
    # A guard: the built-in tests above must not have been pointed at pytest-alembic's
    # default in-memory SQLite engine.
    alembic_runner.migrate_up_to("0001")
    assert alembic_runner.current == "0001"
