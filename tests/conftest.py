"""Session-wide PostgreSQL server and per-test / per-module scratch databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pgsweep import migrate
from tests.pg import PgServer, scratch_database, session_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The one PostgreSQL server of this test session (see tests/pg.py for how it is chosen)."""
    with session_server() as server:
        yield server


@pytest.fixture
def fresh_db(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """DSN of a new, empty database that is dropped when the test ends."""
    with scratch_database(pg_server, request.node.name) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def module_db(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """DSN of a new, empty database shared by one test module, dropped after it."""
    with scratch_database(pg_server, request.module.__name__.rsplit(".", 1)[-1]) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def head_db(module_db: str) -> str:
    """The module's database, upgraded to the code's head revision."""
    migrate.upgrade(module_db, "head")
    return module_db
