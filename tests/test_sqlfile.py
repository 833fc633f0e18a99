"""The SQL file reader splits statements and transaction blocks exactly as psql runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgsweep.paths import rollback_dir, sql_dir
from pgsweep.sqlfile import SqlFileError, load, segments, split_statements


def sqls(text: str) -> list[str]:
    return [s.sql for s in split_statements(text)]


def test_semicolons_inside_quotes_comments_and_dollar_quotes_do_not_split() -> None:
    text = """
    SELECT 'a;b', "odd;name" FROM t; -- trailing; comment
    /* block ; /* nested ; */ still comment */ SELECT 2;
    CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;
    DO $$ BEGIN RAISE NOTICE 'x;y'; END $$;
    SELECT 'it''s; fine';
    """
    assert sqls(text) == [
        "SELECT 'a;b', \"odd;name\" FROM t",
        "SELECT 2",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$",
        "DO $$ BEGIN RAISE NOTICE 'x;y'; END $$",
        "SELECT 'it''s; fine'",
    ]


def test_positional_parameters_are_not_dollar_quotes() -> None:
    assert sqls("SELECT $1 + a$b FROM t; SELECT 2;") == ["SELECT $1 + a$b FROM t", "SELECT 2"]


def test_statement_lines_point_at_the_statement_start() -> None:
    statements = split_statements("-- header\n\nSELECT 1;\n/* x\n*/\nSELECT\n 2;")
    assert [s.line for s in statements] == [3, 6]


def test_begin_commit_groups_statements_and_the_rest_run_alone() -> None:
    text = "CREATE INDEX CONCURRENTLY i ON t (a); BEGIN; A; B; COMMIT;"
    parsed = segments(split_statements(text))
    assert [(s.in_transaction, [x.sql for x in s.statements]) for s in parsed] == [
        (False, ["CREATE INDEX CONCURRENTLY i ON t (a)"]),
        (True, ["A", "B"]),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 'open;", "unterminated ' quote"),
        ("DO $$ BEGIN", "unterminated dollar quote"),
        ("/* never closed", "unterminated block comment"),
        ("\\i other.sql\nSELECT 1;", "unsupported psql meta-command"),
        ("BEGIN; SELECT 1;", "BEGIN without COMMIT"),
        ("COMMIT;", "COMMIT without BEGIN"),
        ("BEGIN; BEGIN; COMMIT;", "BEGIN inside a transaction block"),
    ],
)
def test_files_psql_and_alembic_would_run_differently_are_rejected(text: str, message: str) -> None:
    with pytest.raises(SqlFileError, match=message):
        segments(split_statements(text))


def test_on_error_stop_is_the_only_meta_command_and_is_not_sent() -> None:
    assert sqls("\\set ON_ERROR_STOP on\nSELECT 1;") == ["SELECT 1"]


def _shipped_files() -> list[Path]:
    return sorted(sql_dir().glob("*.sql")) + sorted(rollback_dir().glob("*.sql"))


@pytest.mark.parametrize("path", _shipped_files(), ids=lambda p: p.name)
def test_every_shipped_file_parses_and_stops_on_error_under_psql(path: Path) -> None:
    assert load(path), f"{path} has no statements"
    assert "\\set ON_ERROR_STOP on" in path.read_text().splitlines()
