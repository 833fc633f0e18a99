"""``CREATE EXTENSION pgsweep``: the files generated from engine/releases, installed into the
test server's extension directory, create every release, update every earlier release to the
newest with the catalog of a fresh one (and of the plain install.sql), survive pg_dump and
pg_restore with their rules, settings and history, and leave nothing behind when dropped."""

from __future__ import annotations

import dataclasses
import itertools
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgsweep import catalog, engine, extension
from pgsweep.catalog import Snapshot
from tests import own_tables
from tests.cli import pgsweep
from tests.pg import PgServer, connect, scratch_database
from tests.sqlrun import assert_same_catalog, catalog_of, psql_file, psql_ok

RELEASES = engine.releases()
NEWEST = engine.latest()
EARLIER = RELEASES[:-1]

# Every object that belongs to the extension, as ALTER EXTENSION ... DROP names it.
_MEMBERS = (
    "SELECT o.type, o.identity, o.schema FROM pg_depend d"
    " CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) o"
    " WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'"
    " AND d.refobjid = (SELECT e.oid FROM pg_extension e WHERE e.extname = 'pgsweep')"
)


# --- the generated files, no server needed -----------------------------------------------------


def test_there_is_a_script_for_every_release_and_an_update_for_every_step() -> None:
    names = set(extension.files())
    assert {f"pgsweep--{v}.sql" for v in RELEASES} <= names
    steps = list(itertools.pairwise(RELEASES))
    assert {f"pgsweep--{a}--{b}.sql" for a, b in steps} <= names
    assert len(names) == 1 + len(RELEASES) + len(steps)
    control = extension.files()["pgsweep.control"]
    assert f"default_version = '{NEWEST}'" in control
    assert "relocatable = false" in control
    assert "superuser = true" in control
    assert "trusted = false" in control


def test_the_scripts_hold_no_transaction_control_and_no_meta_command_but_the_guard() -> None:
    for name, text in extension.files().items():
        if name.endswith(".control"):
            continue
        extension.check_script(text, name)  # raises on BEGIN, COMMIT, \set, \ir ...
        meta = [line for line in text.splitlines() if line.startswith("\\")]
        assert meta == [line for line in meta if line.startswith("\\echo ")], name
        assert len(meta) == 1, name
        assert "pg_extension_config_dump" in text, name


@pytest.mark.parametrize("version", RELEASES)
def test_only_the_files_own_begin_and_commit_are_left_out_not_the_procedures(
    version: str,
) -> None:
    plain = engine.release_file(version, "install.sql").read_text(encoding="utf-8").splitlines()
    script = extension.install_script(version).splitlines()
    # CALL pgsweep.sweep() commits between batches on lines of their own: they stay
    commits = [line for line in plain if line.strip() == "COMMIT;"]
    assert len(commits) > 1
    assert [line for line in script if line.strip() == "COMMIT;"] == commits[:-1]
    assert "BEGIN;" in plain
    assert "BEGIN;" not in script
    kept = [line for line in plain if line not in ("BEGIN;", "COMMIT;", "\\set ON_ERROR_STOP on")]
    assert "\n".join(kept) in "\n".join(script)


def test_a_script_that_commits_or_uses_a_meta_command_is_refused() -> None:
    with pytest.raises(extension.ExtensionError, match="COMMIT cannot run"):
        extension.check_script("SELECT 1;\nCOMMIT;\n", "x.sql")
    with pytest.raises(extension.ExtensionError, match="meta-command"):
        extension.check_script("\\i other.sql\nSELECT 1;\n", "x.sql")
    # a COMMIT inside a function body is the function's business, not the script's
    extension.check_script("DO $$ BEGIN COMMIT; END $$;\n", "x.sql")


def test_build_writes_the_files_into_a_directory(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pgsweep.extension", "--json", "build", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(extension.files())
    for name, text in extension.files().items():
        assert (tmp_path / "out" / name).read_text(encoding="utf-8") == text
    assert f'"default_version": "{NEWEST}"' in done.stdout


def test_install_without_a_usable_pg_config_says_so_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgsweep.extension",
            "install",
            "--pg-config",
            str(tmp_path / "no-pg_config"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "not found" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(not hasattr(os, "fork") or os.geteuid() != 0, reason="needs root and fork")
def test_install_as_a_user_who_cannot_write_the_extension_directory_is_refused() -> None:
    target = extension.extension_dir()
    if not target.is_dir():
        pytest.skip(f"{target}: no such directory")
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        code = 3
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            extension.install()
            code = 0
        except extension.ExtensionError as exc:
            os.write(write_end, str(exc).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, encoding="utf-8") as pipe:
        message = pipe.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 1, message
    assert message == (
        f"{target} is not writable by this user: run the install as root"
        " (sudo python -m pgsweep.extension install), or as the directory's owner"
    )


# --- on the server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(pg_server: PgServer) -> PgServer:
    """The extension's files in the server's extension directory (the cluster's own pg_config).
    Only a server on this machine reads that directory: a container's or a remote one does not."""
    if pg_server.cluster is None:
        pytest.skip(f"a {pg_server.kind} server does not read this machine's extension directory")
    pg_config = pg_server.cluster.bindir / "pg_config"
    try:
        extension.install(str(pg_config) if pg_config.exists() else "pg_config")
    except extension.ExtensionError as exc:
        pytest.skip(str(exc))
    with connect(pg_server.admin_dsn) as conn:
        versions = conn.execute(
            "SELECT version FROM pg_available_extension_versions WHERE name = 'pgsweep'"
        ).fetchall()
    assert sorted((str(v) for (v,) in versions), key=engine._version_key) == RELEASES
    return pg_server


def create_extension(dsn: str, version: str | None = None) -> None:
    with connect(dsn) as conn:
        if version is None:
            conn.execute("CREATE EXTENSION pgsweep")
        else:
            conn.execute(psycopg.sql.SQL("CREATE EXTENSION pgsweep VERSION {}").format(version))


def extension_version(dsn: str) -> tuple[str, str]:
    """(the extension's version, the engine's own record of it)."""
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT e.extversion, pgsweep.version() FROM pg_extension e WHERE e.extname = 'pgsweep'"
        ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def members(dsn: str) -> set[tuple[str, str]]:
    with connect(dsn) as conn:
        return {(str(t), str(i)) for t, i, _ in conn.execute(_MEMBERS).fetchall()}


def dumped(dsn: str) -> set[str]:
    """The relations pg_dump keeps the rows of (pg_extension_config_dump)."""
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT extconfig::regclass[]::text[] FROM pg_extension WHERE extname = 'pgsweep'"
        ).fetchone()
    assert row is not None
    return set(row[0] or [])


def disowned_catalog(dsn: str) -> Snapshot:
    """The catalog with the extension's objects read as plain ones: catalog.snapshot leaves an
    extension's members out. They are released from it in a transaction that is rolled back."""
    with psycopg.connect(dsn) as conn:  # not autocommit: everything below is undone
        for kind, identity, _ in conn.execute(_MEMBERS).fetchall():
            conn.execute(f"ALTER EXTENSION pgsweep DROP {kind.upper()} {identity}")
        snapshot = catalog.snapshot(conn)
        conn.rollback()
    plain_rows = tuple(row for row in snapshot.extensions if row[0] != "pgsweep")
    return dataclasses.replace(snapshot, extensions=plain_rows)


def with_own_tables(dsn: str) -> None:
    with connect(dsn) as conn:
        own_tables.create(conn, rules=False)


@pytest.fixture(scope="module")
def newest_catalogs(installed: PgServer) -> tuple[Snapshot, Snapshot, set[tuple[str, str]]]:
    """The newest release created as the extension (its catalog and its members) and installed
    from its plain install.sql, each in a database with the tests' own tables."""
    with scratch_database(installed, "ext_newest") as dsn:
        with_own_tables(dsn)
        create_extension(dsn)
        created, created_members = disowned_catalog(dsn), members(dsn)
    with scratch_database(installed, "plain_newest") as dsn:
        with_own_tables(dsn)
        psql_ok(dsn, engine.release_file(NEWEST, "install.sql"))
        plain = catalog_of(dsn)
    return created, plain, created_members


@pytest.mark.parametrize("version", RELEASES)
def test_create_extension_at_every_release_matches_its_plain_install(
    installed: PgServer, fresh_db: str, version: str
) -> None:
    psql_ok(fresh_db, engine.release_file(version, "install.sql"))
    plain = catalog_of(fresh_db)
    psql_ok(fresh_db, engine.release_file(version, "uninstall.sql"))

    create_extension(fresh_db, version)
    assert extension_version(fresh_db) == (version, version)
    assert_same_catalog(plain, disowned_catalog(fresh_db), f"extension {version} != plain")
    with connect(fresh_db) as conn:
        elsewhere = [
            (t, i, s)
            for t, i, s in conn.execute(_MEMBERS).fetchall()
            if s is not None and s != "pgsweep"
        ]
    assert elsewhere == []  # nothing unqualified landed in pg_catalog, the control's schema


@pytest.mark.parametrize("older", EARLIER)
def test_update_from_every_earlier_release_ends_as_a_fresh_create_of_the_newest(
    newest_catalogs: tuple[Snapshot, Snapshot, set[tuple[str, str]]],
    fresh_db: str,
    older: str,
) -> None:
    created, plain, created_members = newest_catalogs
    with_own_tables(fresh_db)
    create_extension(fresh_db, older)
    with connect(fresh_db) as conn:
        own_tables.add_rules(conn)
        before = conn.execute("SELECT table_name::text, column_name FROM pgsweep.expiry_rule")
        rules = sorted(before.fetchall())

    with connect(fresh_db) as conn:
        conn.execute("ALTER EXTENSION pgsweep UPDATE")
    assert extension_version(fresh_db) == (NEWEST, NEWEST)
    with connect(fresh_db) as conn:
        after = conn.execute("SELECT table_name::text, column_name FROM pgsweep.expiry_rule")
        assert sorted(after.fetchall()) == rules

    updated = disowned_catalog(fresh_db)
    assert_same_catalog(created, updated, f"{older} updated differs from a fresh {NEWEST}")
    assert_same_catalog(plain, updated, f"{older} updated differs from the plain {NEWEST}")
    assert members(fresh_db) == created_members  # what DROP EXTENSION removes, the same too


def test_the_configuration_tables_are_dumped_and_every_table_is_decided(
    installed: PgServer, fresh_db: str
) -> None:
    create_extension(fresh_db)
    with connect(fresh_db) as conn:
        tables = {
            str(name)
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'pgsweep'::regnamespace"
                " AND c.relkind IN ('r', 'p')"
            ).fetchall()
        }
    # a table a new release adds must be put in CONFIG_TABLES or NOT_DUMPED, on purpose
    assert tables == set(extension.CONFIG_TABLES) | set(extension.NOT_DUMPED)
    wanted = {f"pgsweep.{t}" for t in extension.CONFIG_TABLES} | {"pgsweep.run_run_id_seq"}
    assert dumped(fresh_db) == wanted


def test_a_database_with_the_plain_engine_is_refused_with_what_to_do(
    installed: PgServer, fresh_db: str
) -> None:
    psql_ok(fresh_db, engine.release_file(NEWEST, "install.sql"))
    before = catalog_of(fresh_db)
    with pytest.raises(psycopg.errors.DuplicateSchema) as refused:
        create_extension(fresh_db)
    assert "installed from plain SQL" in str(refused.value)
    assert refused.value.diag.message_hint is not None
    assert "docs/extension.md" in refused.value.diag.message_hint
    assert_same_catalog(before, catalog_of(fresh_db), "a refused CREATE EXTENSION changed it")


def _pg_tool(server: PgServer, name: str) -> str:
    assert server.cluster is not None
    path = server.cluster.bindir / name
    return str(path) if path.exists() else name


def _rows(conn: psycopg.Connection[Any], table: str) -> list[tuple[Any, ...]]:
    # every column but the rows' own clock readings is compared; a run's times are kept too
    return sorted(conn.execute(f"SELECT * FROM pgsweep.{table}").fetchall(), key=repr)


@pytest.fixture
def restored_db(installed: PgServer) -> Iterator[str]:
    with scratch_database(installed, "ext_restored") as dsn:
        yield dsn


def test_dump_and_restore_keep_rules_settings_and_history_and_the_copy_sweeps(
    installed: PgServer, fresh_db: str, restored_db: str, tmp_path: Path
) -> None:
    with_own_tables(fresh_db)
    create_extension(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.add_rules(conn)
        conn.execute(
            "SELECT pgsweep.set_lag_target(%s, %s, '2 hours')",
            (own_tables.SESSIONS, own_tables.SESSIONS_COLUMN),
        )
        dbname = conn.execute("SELECT current_database()").fetchone()
        assert dbname is not None
        conn.execute(
            psycopg.sql.SQL("ALTER DATABASE {} SET pgsweep.history_retention = '90 days'").format(
                psycopg.sql.Identifier(str(dbname[0]))
            )
        )
        own_tables.seed(conn)
        conn.execute("CALL pgsweep.sweep()")
        history = {t: _rows(conn, t) for t in extension.CONFIG_TABLES}
    assert history["run"], "the sweep wrote no run"
    assert any(r[0] == own_tables.SESSIONS and r[-1] is not None for r in history["expiry_rule"])

    archive = tmp_path / "db.dump"
    dump = subprocess.run(
        [_pg_tool(installed, "pg_dump"), "-Fc", "-f", str(archive), "-d", fresh_db],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dump.returncode == 0, dump.stderr
    restore = subprocess.run(
        [_pg_tool(installed, "pg_restore"), "--exit-on-error", "-d", restored_db, str(archive)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert restore.returncode == 0, restore.stderr

    assert extension_version(restored_db) == (NEWEST, NEWEST)
    with connect(restored_db) as conn:
        for table, rows in history.items():
            assert _rows(conn, table) == rows, f"pgsweep.{table} differs after the restore"
        settings = conn.execute(
            "SELECT table_name::text, lag_target FROM pgsweep.expiry_rule"
            " WHERE lag_target IS NOT NULL"
        ).fetchall()
        assert [s[0] for s in settings] == [own_tables.SESSIONS]
        assert conn.execute(
            "SELECT count(*) FROM pg_event_trigger WHERE evtname = 'pgsweep_forget_dropped_rules'"
        ).fetchone() == (1,)

        own_tables.seed(conn)  # a second seed: the restored rows kept, and new garbage
        conn.execute("CALL pgsweep.sweep()")
        for table in own_tables.TABLES:
            kept = own_tables.KEPT_LABELS[table]
            assert own_tables.labels(conn, table) == kept + kept
        new_runs = conn.execute(
            "SELECT run_id, status FROM pgsweep.run WHERE run_id > %s",
            (max(r[0] for r in history["run"]),),
        ).fetchall()
    # the run-id sequence came along: the copy's new run follows the restored ones
    assert [status for _, status in new_runs] == ["succeeded"]

    # The database's own settings are the database's, not the extension's: pg_restore writes
    # them only with --create (docs/extension.md says so).
    script = subprocess.run(
        [_pg_tool(installed, "pg_restore"), "--create", "-f", "-", str(archive)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert script.returncode == 0, script.stderr
    assert "SET \"pgsweep.history_retention\" TO '90 days'" in script.stdout


def test_drop_extension_removes_everything_and_leaves_the_apps_tables(
    installed: PgServer, fresh_db: str
) -> None:
    with_own_tables(fresh_db)
    before = catalog_of(fresh_db)
    create_extension(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.add_rules(conn)
        own_tables.seed(conn)
        conn.execute("CALL pgsweep.sweep()")
        kept = {t: own_tables.labels(conn, t) for t in own_tables.TABLES}
        conn.execute("DROP EXTENSION pgsweep")
        assert conn.execute("SELECT to_regnamespace('pgsweep')").fetchone() == (None,)
        assert {t: own_tables.labels(conn, t) for t in own_tables.TABLES} == kept
    assert_same_catalog(before, catalog_of(fresh_db), "DROP EXTENSION left something behind")


def test_verify_passes_on_an_engine_updated_as_the_extension(
    installed: PgServer, fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create_extension(fresh_db, RELEASES[0])
    with connect(fresh_db) as conn:
        conn.execute("ALTER EXTENSION pgsweep UPDATE")
    done = pgsweep(capsys, "verify", "--no-cron", "--dsn", fresh_db)
    assert done.code == 0, done.out + done.err


def test_the_script_setting_is_on_inside_the_script_only(
    installed: PgServer, fresh_db: str
) -> None:
    with psycopg.connect(fresh_db) as conn:  # one transaction around CREATE EXTENSION
        conn.execute("CREATE EXTENSION pgsweep")
        row = conn.execute("SELECT current_setting(%s, true)", (extension.SCRIPT_SETTING,))
        assert row.fetchone() in ((None,), ("",))
        conn.commit()
    script = extension.install_script(NEWEST)
    assert f"set_config('{extension.SCRIPT_SETTING}', 'on', true)" in script.split("\n\n")[0]
    assert script.endswith(f"set_config('{extension.SCRIPT_SETTING}', '', true);\n")


def test_the_plain_install_script_refuses_to_run_over_the_extension(
    installed: PgServer, fresh_db: str
) -> None:
    # From 1.4 on (older sealed files cannot learn it): only the extension's own scripts, which
    # set pgsweep.extension_script, may run the engine's statements over its objects.
    with_own_tables(fresh_db)
    create_extension(fresh_db)
    before = members(fresh_db)
    for name in ("install.sql", "upgrade.sql"):
        done = psql_file(fresh_db, engine.release_file(NEWEST, name))
        assert done.returncode != 0, name
        assert "the pgsweep engine here is the extension" in done.stderr
        assert "ALTER EXTENSION pgsweep UPDATE" in done.stderr
    assert members(fresh_db) == before
    assert extension_version(fresh_db) == (NEWEST, NEWEST)


def test_moving_a_plain_engine_to_the_extension_as_documented_keeps_rules_and_history(
    installed: PgServer, fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_own_tables(fresh_db)
    psql_ok(fresh_db, engine.release_file(NEWEST, "install.sql"))
    with connect(fresh_db) as conn:
        own_tables.add_rules(conn)
        own_tables.seed(conn)
        conn.execute("CALL pgsweep.sweep()")
        history = {t: _rows(conn, t) for t in extension.CONFIG_TABLES}

    # docs/extension.md, "From plain SQL to the extension": the rows, the engine, the rows back
    saved = tmp_path / "pgsweep-data.sql"
    tables = [f"--table=pgsweep.{t}" for t in (*extension.CONFIG_TABLES, "run_run_id_seq")]
    dump = subprocess.run(
        [_pg_tool(installed, "pg_dump"), "--data-only", *tables, "-f", str(saved), "-d", fresh_db],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dump.returncode == 0, dump.stderr
    done = pgsweep(capsys, "uninstall", "--force", "--yes", "--dsn", fresh_db)
    assert done.code == 0, done.err
    create_extension(fresh_db)
    psql_ok(fresh_db, saved)

    assert extension_version(fresh_db) == (NEWEST, NEWEST)
    with connect(fresh_db) as conn:
        for table, rows in history.items():
            assert _rows(conn, table) == rows, f"pgsweep.{table} differs after the move"
        own_tables.seed(conn)
        conn.execute("CALL pgsweep.sweep()")
        for table in own_tables.TABLES:
            kept = own_tables.KEPT_LABELS[table]
            assert own_tables.labels(conn, table) == kept + kept
        runs = conn.execute("SELECT status FROM pgsweep.run ORDER BY run_id").fetchall()
    assert [s for (s,) in runs][-1] == "succeeded"
    assert len(runs) == len(history["run"]) + 1
