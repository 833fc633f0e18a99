"""The chain 0001-0013: reversible revision by revision, and psql and Alembic give one database."""

from __future__ import annotations

import hashlib
import importlib.util
import threading
import time
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from pgsweep import migrate
from pgsweep.paths import data_root, rollback_dir, sql_dir
from tests.pg import connect
from tests.sqlrun import (
    assert_same_catalog,
    catalog_of,
    down_file,
    psql_file,
    psql_ok,
    recorded_version,
    up_file,
)

REVISIONS = [f"{n:04d}" for n in range(1, 14)]


def previous(revision: str) -> str:
    index = REVISIONS.index(revision)
    return "base" if index == 0 else REVISIONS[index - 1]


def test_the_chain_is_linear_with_four_digit_ids_and_one_head() -> None:
    assert migrate.revisions()[: len(REVISIONS)] == REVISIONS
    assert migrate.head() == migrate.revisions()[-1]


def _revision_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("revision", REVISIONS)
def test_each_revision_runs_exactly_its_own_up_and_down_file(revision: str) -> None:
    (path,) = (data_root() / "migrations" / "versions").glob(f"{revision}_*.py")
    module = _revision_module(path)
    assert f"sql/{path.stem}.sql" == module.UP_SQL
    assert f"rollback/{path.stem}_down.sql" == module.DOWN_SQL
    assert up_file(revision).stem == path.stem
    assert down_file(revision).stem == f"{path.stem}_down"


def test_released_up_and_down_scripts_never_change() -> None:
    # sql/SHA256SUMS records every released script (sha256sum sql/*.sql rollback/*.sql); a change
    # to the database is a new revision, never an edit of a released one.
    root = data_root()
    recorded = {
        name: digest
        for digest, name in (
            line.split(maxsplit=1) for line in (sql_dir() / "SHA256SUMS").read_text().splitlines()
        )
    }
    on_disk = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in [*sql_dir().glob("*.sql"), *rollback_dir().glob("*.sql")]
    }
    assert sorted(set(on_disk) - set(recorded)) == [], "new scripts: add them to sql/SHA256SUMS"
    changed = sorted(name for name in recorded if on_disk.get(name) != recorded[name])
    assert changed == [], f"released scripts changed or removed: {changed}"


def test_every_sql_file_belongs_to_a_revision() -> None:
    known = set(migrate.revisions())
    for path in [*sql_dir().glob("*.sql"), *rollback_dir().glob("*.sql")]:
        assert path.name[:4] in known, f"{path} belongs to no revision"


@pytest.mark.parametrize("revision", REVISIONS)
def test_up_down_up_leaves_the_catalog_identical(fresh_db: str, revision: str) -> None:
    migrate.upgrade(fresh_db, previous(revision)) if revision != "0001" else None
    before = catalog_of(fresh_db)
    migrate.upgrade(fresh_db, revision)
    installed = catalog_of(fresh_db)
    assert installed != before, f"{revision} changed nothing"

    migrate.downgrade(fresh_db, previous(revision))
    assert_same_catalog(before, catalog_of(fresh_db), f"downgrade of {revision} left traces")
    assert migrate.current(fresh_db) == (None if revision == "0001" else previous(revision))

    migrate.upgrade(fresh_db, revision)
    assert_same_catalog(installed, catalog_of(fresh_db), f"re-upgrade to {revision} differs")


def test_base_to_head_to_base_leaves_nothing(fresh_db: str) -> None:
    empty = catalog_of(fresh_db)
    migrate.upgrade(fresh_db, "head")
    migrate.downgrade(fresh_db, "base")
    assert_same_catalog(empty, catalog_of(fresh_db), "base -> head -> base left objects")
    assert migrate.current(fresh_db) is None


def test_psql_and_alembic_build_the_same_database(fresh_db: str, pg_server: object) -> None:
    from tests.pg import PgServer, scratch_database

    assert isinstance(pg_server, PgServer)
    migrate.upgrade(fresh_db, "head")
    with scratch_database(pg_server, "psql_twin") as twin:
        for revision in REVISIONS:
            psql_ok(twin, up_file(revision))
        assert_same_catalog(catalog_of(fresh_db), catalog_of(twin), "psql-built differs")


def test_psql_rollbacks_and_alembic_downgrades_match_step_by_step(
    fresh_db: str, pg_server: object
) -> None:
    from tests.pg import PgServer, scratch_database

    assert isinstance(pg_server, PgServer)
    migrate.upgrade(fresh_db, "head")
    with scratch_database(pg_server, "psql_down") as twin:
        migrate.upgrade(twin, "head")
        for revision in reversed(REVISIONS):
            migrate.downgrade(fresh_db, previous(revision))
            psql_ok(twin, down_file(revision))
            assert_same_catalog(
                catalog_of(fresh_db), catalog_of(twin), f"psql rollback of {revision} differs"
            )
            # The down script kept Alembic's record truthful on its own.
            expected = None if revision == "0001" else previous(revision)
            assert recorded_version(twin) == expected
            assert migrate.current(twin) == expected


def test_adoption_of_an_app_built_database_by_stamp_then_upgrade(fresh_db: str) -> None:
    # The app's own migrations knew nothing of Alembic: build 0001-0005 with psql alone.
    for revision in REVISIONS[:5]:
        psql_ok(fresh_db, up_file(revision))
    with connect(fresh_db) as conn:
        conn.execute(
            "INSERT INTO users (username, email, password_hash) VALUES ('ann', 'ann@x', 'h')"
        )
    assert recorded_version(fresh_db) is None
    migrate.stamp(fresh_db, "0005")
    migrate.upgrade(fresh_db, "head")
    assert migrate.current(fresh_db) == migrate.head()
    with connect(fresh_db) as conn:
        row = conn.execute("SELECT total_cleaned FROM cleanup_all_expired_tokens()").fetchone()
        assert row == (0,)
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)


def test_a_psql_upgrade_moves_alembics_record_so_alembic_does_not_rerun_it(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "0005")
    psql_ok(fresh_db, up_file("0006"))
    assert migrate.current(fresh_db) == "0006"
    migrate.upgrade(fresh_db, "head")  # nothing left to do, and no error
    assert migrate.current(fresh_db) == migrate.head()


def test_a_down_script_refuses_while_a_newer_revision_is_recorded(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "0006")
    before = catalog_of(fresh_db)
    done = psql_file(fresh_db, down_file("0005"))
    assert done.returncode != 0
    assert "newer than 0005" in done.stderr
    assert_same_catalog(before, catalog_of(fresh_db), "a refused rollback changed the schema")
    assert migrate.current(fresh_db) == "0006"


@pytest.mark.parametrize(
    "revision", ["0006", "0007", "0008", "0009", "0010", "0011", "0012", "0013"]
)
def test_running_a_down_script_twice_is_a_no_op(fresh_db: str, revision: str) -> None:
    migrate.upgrade(fresh_db, revision)
    psql_ok(fresh_db, down_file(revision))
    after_once = catalog_of(fresh_db)
    psql_ok(fresh_db, down_file(revision))
    assert_same_catalog(after_once, catalog_of(fresh_db), "second rollback changed something")
    assert migrate.current(fresh_db) == previous(revision)


@pytest.mark.parametrize(
    "revision", ["0006", "0007", "0008", "0009", "0010", "0011", "0012", "0013"]
)
def test_running_an_idempotent_up_script_twice_is_a_no_op(fresh_db: str, revision: str) -> None:
    # "Safe to run again" is about a run interrupted or repeated at its own revision. (At a later
    # head, re-running 0006 would put back the purge 0008 replaced; pgsweep verify flags that.)
    migrate.upgrade(fresh_db, revision)
    installed = catalog_of(fresh_db)
    psql_ok(fresh_db, up_file(revision))
    assert_same_catalog(installed, catalog_of(fresh_db), f"re-running {revision} changed something")
    assert migrate.current(fresh_db) == revision


def test_running_a_table_creating_up_script_twice_fails_cleanly(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "0003")
    before = catalog_of(fresh_db)
    done = psql_file(fresh_db, up_file("0003"))
    assert done.returncode != 0
    assert 'relation "password_reset_tokens" already exists' in done.stderr
    assert_same_catalog(before, catalog_of(fresh_db), "a failed re-run changed the schema")


def test_an_invalid_index_left_by_a_failed_build_is_rebuilt_by_the_next_run(fresh_db: str) -> None:
    # The next run of the revision that was interrupted: 0006, at 0006.
    migrate.upgrade(fresh_db, "0006")
    with connect(fresh_db) as conn:
        # What an interrupted CREATE INDEX CONCURRENTLY leaves behind.
        conn.execute(
            "UPDATE pg_index SET indisvalid = false"
            " WHERE indexrelid = 'idx_refresh_tokens_expires_at'::regclass"
        )
    psql_ok(fresh_db, up_file("0006"))
    with connect(fresh_db) as conn:
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index"
            " WHERE indexrelid = 'idx_refresh_tokens_expires_at'::regclass"
        ).fetchone()
    assert valid == (True,)


def test_offline_sql_shows_concurrent_builds_outside_a_transaction(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from alembic import command

    config = migrate.alembic_config()
    config.set_main_option("sqlalchemy.url", "postgresql+psycopg://reviewer@localhost/none")
    command.upgrade(config, "0005:0006", sql=True)
    out = capsys.readouterr().out
    assert "SET pgsweep.managed_by = 'alembic'" in out
    commit_at = out.index("COMMIT;")
    assert out.index("CREATE INDEX CONCURRENTLY") > commit_at
    assert "UPDATE alembic_version SET version_num='0006'" in out


def test_an_upgrade_blocked_by_a_long_transaction_gives_way_and_retries(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "0005")
    policy = migrate.LockPolicy(lock_timeout_ms=200, attempts=10, first_pause_s=0.2)
    with connect(fresh_db, autocommit=False) as app:
        # An app transaction holding a lock 0006's triggers need (CREATE TRIGGER takes
        # SHARE ROW EXCLUSIVE, which conflicts with this ROW EXCLUSIVE lock).
        app.execute("LOCK TABLE refresh_tokens IN ROW EXCLUSIVE MODE")
        timer = threading.Timer(1.0, app.rollback)
        timer.start()
        started = time.monotonic()
        migrate.upgrade(fresh_db, "head", policy)
        timer.join()
    assert migrate.current(fresh_db) == migrate.head()
    assert time.monotonic() - started >= 1.0  # it did have to wait for the app to finish


def test_an_upgrade_gives_up_after_its_attempts_with_the_lock_error(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "0005")
    policy = migrate.LockPolicy(lock_timeout_ms=100, attempts=2, first_pause_s=0.1)
    with connect(fresh_db, autocommit=False) as app:
        app.execute("LOCK TABLE refresh_tokens IN ROW EXCLUSIVE MODE")
        with pytest.raises((DBAPIError, psycopg.Error)) as caught:
            migrate.upgrade(fresh_db, "head", policy)
        app.rollback()
    assert migrate.is_lock_timeout(caught.value)
    assert migrate.current(fresh_db) == "0005"
    # The interrupted run is repaired by the next one.
    migrate.upgrade(fresh_db, "head")
    assert migrate.current(fresh_db) == migrate.head()


def test_a_refused_0006_rollback_changes_nothing_not_even_its_indexes(fresh_db: str) -> None:
    # No alembic_version to consult (a psql-only database): what stops the rollback is that a
    # newer revision's objects still live in the pgsweep schema. It must fail before its
    # concurrent index drops, which cannot be rolled back.
    for revision in migrate.revisions():
        psql_ok(fresh_db, up_file(revision))
    before = catalog_of(fresh_db)
    done = psql_file(fresh_db, down_file("0006"))
    assert done.returncode != 0
    assert "because other objects depend on it" in done.stderr
    assert_same_catalog(before, catalog_of(fresh_db), "a refused 0006 rollback changed the schema")
