"""``pgsweep apply``: rules of every kind from a policy file (docs/rules.md, "Policy as code"),
on the tables of tests/test_rule_kinds.py. The file registers what the SQL calls register; a dry
run changes nothing; a rule is removed only by ``[[remove]]`` and with consent; bad files are
usage errors naming the line or the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pgsweep import engine
from tests.cli import pgsweep
from tests.pg import connect
from tests.test_rule_kinds import (
    GARBAGE,
    KEPT,
    SCHEMA,
    SEED,
    TABLES,
    add_rules,
    labels,
)

POLICY = """
[[rule]]
table = '"Actor"."Attributes"'
column = "ttl_timestamp"
epoch_unit = "milliseconds"
condition = "bucket <> 'keep'"
live_view = true

[[rule]]
table = '"Learn"."Users"'
column = "status"
kind = "condition"
condition = \"\"\"status = 'suspended'
  AND coalesce(last_login_at, created_at) < (now() AT TIME ZONE 'UTC') - interval '6 months'\"\"\"
archive = true

[[rule]]
table = '"Learn".tokens'
column = "used_at"
kind = "condition"
condition = "used_at IS NOT NULL"

[[rule]]
table = '"Learn".cache'
column = "key"
kind = "orphan"
parent = '"Learn"."Users"'
parent_key = "id"
child_key = "substring(key FROM '^user:([0-9]+):')::bigint"

[[rule]]
table = '"Learn".achievements'
column = "user_id"
kind = "orphan"
parent = '"Learn"."Users"'
parent_key = "id"
"""

RULE_ROWS = (
    "SELECT table_name::text, column_name::text, keep_for, value_zone, epoch_unit, kind,"
    " condition, parent_table::text, parent_key::text, child_key FROM pgsweep.expiry_rule"
    " ORDER BY 1, 2"
)


@pytest.fixture
def tables_db(fresh_db: str) -> str:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(SCHEMA)
        conn.execute(SEED)
    return fresh_db


def rule_rows(dsn: str) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute(RULE_ROWS).fetchall()


def test_the_policy_file_registers_what_the_sql_calls_register_and_every_command_follows(
    tables_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pgsweep.toml"
    path.write_text(POLICY)
    dry = pgsweep(capsys, "apply", str(path), "--dry-run", "--dsn", tables_db, "--json")
    assert dry.code == 0, dry.err
    document = dry.json()
    assert (document["dry_run"], document["changed"]) == (True, True)
    assert sorted((r["action"], r["table"]) for r in document["rules"]) == sorted(
        ("add", t) for t in TABLES
    )
    assert rule_rows(tables_db) == []  # the dry run changed nothing

    done = pgsweep(capsys, "apply", str(path), "--dsn", tables_db)
    assert done.code == 0, done.err
    assert done.out.splitlines()[-1] == f"{path}: changed the rules"
    applied = rule_rows(tables_db)
    # The same rules as the SQL calls make (in another database with the same tables).
    with connect(tables_db) as conn:
        conn.execute("CREATE DATABASE kinds_sql_twin")
    try:
        twin = tables_db.replace(tables_db.split("dbname=")[1].split()[0], "kinds_sql_twin")
        engine.install(twin)
        with connect(twin) as conn:
            conn.execute(SCHEMA)
            add_rules(conn)
        assert rule_rows(twin) == applied
    finally:
        with connect(tables_db) as conn:
            conn.execute("DROP DATABASE kinds_sql_twin")

    again = pgsweep(capsys, "apply", str(path), "--dsn", tables_db, "--json").json()
    assert {r["action"] for r in again["rules"]} == {"same"}
    assert again["changed"] is False
    assert again["views"] == ['"Actor"."Attributes_live"']

    cleaned = pgsweep(capsys, "cleanup", "--dsn", tables_db, "--json").json()
    assert cleaned["deleted"] == sum(GARBAGE.values())
    with connect(tables_db) as conn:
        for table in TABLES:
            assert labels(conn, table) == KEPT[table], table
        archived = conn.execute('SELECT count(*) FROM "Learn"."Users_archive"').fetchone()
        assert archived == (GARBAGE['"Learn"."Users"'],)


def test_a_rule_leaves_only_by_a_remove_entry_and_with_consent(
    tables_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(tables_db) as conn:
        add_rules(conn)
    before = rule_rows(tables_db)
    path = tmp_path / "pgsweep.toml"
    path.write_text(
        '[[rule]]\ntable = \'"Learn".tokens\'\ncolumn = "used_at"\nkind = "condition"\n'
        "condition = \"used_at IS NOT NULL AND label <> 'keep'\"\n"
    )
    done = pgsweep(capsys, "apply", str(path), "--dsn", tables_db, "--json").json()
    actions = {(r["table"], r["action"]) for r in done["rules"]}
    assert ('"Learn".tokens', "change") in actions
    assert ('"Learn".cache', "kept") in actions  # not in the file: kept
    assert len(rule_rows(tables_db)) == len(before)

    path.write_text("[[remove]]\ntable = '\"Learn\".cache'\n")
    refused = pgsweep(capsys, "apply", str(path), "--dsn", tables_db)
    assert refused.code == 2
    assert 'removes 1 rule: "Learn".cache.key' in refused.err
    assert len(rule_rows(tables_db)) == len(before)
    gone = pgsweep(capsys, "apply", str(path), "--yes", "--dsn", tables_db, "--json").json()
    assert [(r["table"], r["action"]) for r in gone["rules"] if r["action"] == "remove"] == [
        ('"Learn".cache', "remove")
    ]
    assert len(rule_rows(tables_db)) == len(before) - 1


BAD_FILES = [
    (
        '[[rule]]\ntable = "t"\ncolumn = \n',
        "not valid TOML: Invalid value (at line 3, column 10)",
    ),
    ('[[rule]]\ntable = "t"\ncolum = "x"\n', "[[rule]] #1 (t): unknown field 'colum'"),
    ('[[rule]]\ntable = "t"\n', "[[rule]] #1 (t): field 'column' is missing"),
    ('[[rule]]\ntable = "t"\ncolumn = "c"\nkind = "x"\n', "kind must be one of"),
    ('[[rule]]\ntable = "t"\ncolumn = "c"\nkind = "orphan"\n', "needs fields 'parent'"),
    ('[[rules]]\ntable = "t"\n', "unknown section 'rules'"),
    (
        '[[rule]]\ntable = \'"Learn".tokens\'\ncolumn = "used_at"\nkind = "condition"\n'
        'condition = "random() < 0.5"\n',
        '[[rule]] #1 ("Learn".tokens.used_at): condition of a rule on "Learn".tokens calls'
        " functions a sweep may not run: random() (volatile)",
    ),
]


def test_a_bad_policy_file_is_a_usage_error_naming_the_line_or_field_and_changes_nothing(
    tables_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    for text, message in BAD_FILES:
        path.write_text(text)
        done = pgsweep(capsys, "apply", str(path), "--dsn", tables_db)
        assert done.code == 2, (done.out, done.err)
        assert message in done.err, done.err
        assert "Traceback" not in done.err
        assert rule_rows(tables_db) == []
