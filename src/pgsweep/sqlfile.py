"""Read a migration SQL file the way psql -f reads it.

A file is a list of statements split on top-level semicolons (quotes, comments and dollar
quotes respected). Explicit ``BEGIN; ... COMMIT;`` blocks group statements into one
transaction; everything outside them runs on its own, as psql runs it in autocommit mode.
That split is what lets Alembic run the very file an operator runs with psql: Alembic maps a
block onto its migration transaction and runs the rest (``CREATE INDEX CONCURRENTLY``) in an
autocommit block.

A file may include another with psql's ``\\ir FILE`` (a path relative to the including file), as
an app revision includes an engine release: :func:`load` reads the included file in its place,
exactly where psql would run it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The one psql meta-command the files may use: it makes a 3 a.m. ``psql -f`` stop at the first
# error. Any other backslash command would mean psql and Alembic run different things.
ALLOWED_META_COMMANDS = frozenset({r"\set ON_ERROR_STOP on"})

# psql's "include relative": the only other meta-command, expanded by load() before splitting.
_INCLUDE = re.compile(r"(?m)^\\ir[ \t]+(\S+)[ \t]*$")
_MAX_INCLUDE_DEPTH = 4

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_BEGIN = re.compile(r"(?is)^(BEGIN|START\s+TRANSACTION)(\s+TRANSACTION|\s+WORK)?$")
_COMMIT = re.compile(r"(?is)^(COMMIT|END)(\s+TRANSACTION|\s+WORK)?$")


class SqlFileError(ValueError):
    """The file is not something both psql and the Alembic runner execute identically."""


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int  # 1-based line of the statement's first character, for error messages


@dataclass(frozen=True)
class Segment:
    """Statements run together: in one transaction, or each on its own (autocommit)."""

    in_transaction: bool
    statements: tuple[Statement, ...]


def split_statements(text: str) -> list[Statement]:
    """Split SQL text into statements; comments between statements are dropped."""
    statements: list[Statement] = []
    buf: list[str] = []
    start_line = 1
    line = 1
    i = 0
    n = len(text)

    def flush() -> None:
        sql = "".join(buf).strip()
        if sql:
            statements.append(Statement(sql, start_line))
        buf.clear()

    def at_statement_start() -> bool:
        return all(not chunk.strip() for chunk in buf)

    while i < n:
        ch = text[i]
        if at_statement_start():
            start_line = line
            if ch == "\\":  # psql meta-command: only at the start of a statement
                end = text.find("\n", i)
                end = n if end == -1 else end
                command = text[i:end].strip()
                if command not in ALLOWED_META_COMMANDS:
                    raise SqlFileError(f"line {line}: unsupported psql meta-command {command!r}")
                i = end
                continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end == -1 else end
            continue
        if text.startswith("/*", i):
            end = _block_comment_end(text, i, line)
            line += text.count("\n", i, end)
            i = end
            continue
        if ch in ("'", '"'):
            end = _quoted_end(text, i, ch, line)
        elif ch == "$" and (m := _DOLLAR_TAG.match(text, i)) and not _in_identifier(text, i):
            close = text.find(m.group(0), m.end())
            if close == -1:
                raise SqlFileError(f"line {line}: unterminated dollar quote {m.group(0)}")
            end = close + len(m.group(0))
        elif ch == ";":
            flush()
            i += 1
            continue
        else:
            end = i + 1
        chunk = text[i:end]
        buf.append(chunk)
        line += chunk.count("\n")
        i = end
    flush()
    return statements


def segments(statements: list[Statement]) -> list[Segment]:
    """Group statements by the file's own BEGIN/COMMIT (which are not themselves returned)."""
    result: list[Segment] = []
    block: list[Statement] | None = None
    for statement in statements:
        if _BEGIN.match(statement.sql):
            if block is not None:
                raise SqlFileError(f"line {statement.line}: BEGIN inside a transaction block")
            block = []
        elif _COMMIT.match(statement.sql):
            if block is None:
                raise SqlFileError(f"line {statement.line}: COMMIT without BEGIN")
            result.append(Segment(True, tuple(block)))
            block = None
        elif block is not None:
            block.append(statement)
        else:
            result.append(Segment(False, (statement,)))
    if block is not None:
        raise SqlFileError("BEGIN without COMMIT at end of file")
    return result


def load(path: Path) -> list[Segment]:
    """Parse a migration file into the segments it runs as, its ``\\ir`` includes in place."""
    try:
        return segments(split_statements(expand_includes(path)))
    except SqlFileError as exc:
        raise SqlFileError(f"{path}: {exc}") from None


def expand_includes(path: Path, depth: int = 0) -> str:
    """The file's text with every ``\\ir FILE`` line replaced by that file's own (expanded) text."""
    if depth > _MAX_INCLUDE_DEPTH:
        raise SqlFileError(f"{path}: includes nested more than {_MAX_INCLUDE_DEPTH} deep")
    text = path.read_text(encoding="utf-8")

    def include(match: re.Match[str]) -> str:
        target = (path.parent / match.group(1)).resolve()
        if not target.is_file():
            raise SqlFileError(f"{path}: \\ir {match.group(1)}: no such file")
        return expand_includes(target, depth + 1)

    return _INCLUDE.sub(include, text)


# Statements that end, begin or nest a transaction: what a file run inside a transaction it
# does not own (an extension script, a migration tool's transaction) leaves out or cannot run.
TRANSACTION_STATEMENT = re.compile(
    r"(?is)^(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE"
    r"|PREPARE\s+TRANSACTION|COMMIT\s+PREPARED|ROLLBACK\s+PREPARED)\b"
)


def without_psql_only(text: str) -> list[str]:
    """The lines of ``text`` but psql's ``\\set`` and the file's own top-level BEGIN/COMMIT.

    Found by the statement splitter, never by matching lines: a procedure's body commits
    between batches on lines of its own (``    COMMIT;``), and those must stay.
    """
    lines = text.splitlines()
    dropped: set[int] = set()
    for statement in split_statements(text):
        if TRANSACTION_STATEMENT.match(statement.sql):
            line = lines[statement.line - 1]
            if line != statement.sql + ";":
                raise SqlFileError(
                    f"line {statement.line}: a transaction statement that is not a line"
                    " of its own cannot be left out"
                )
            dropped.add(statement.line)
    return [
        line
        for number, line in enumerate(lines, start=1)
        if number not in dropped and line not in ALLOWED_META_COMMANDS
    ]


def _block_comment_end(text: str, start: int, line: int) -> int:
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise SqlFileError(f"line {line}: unterminated block comment")


def _quoted_end(text: str, start: int, quote: str, line: int) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == quote:
            if text.startswith(quote * 2, i):  # doubled quote is an escaped quote
                i += 2
                continue
            return i + 1
        i += 1
    raise SqlFileError(f"line {line}: unterminated {quote} quote")


def _in_identifier(text: str, i: int) -> bool:
    """``$1`` parameters and names like ``a$b`` are not dollar quotes."""
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")
