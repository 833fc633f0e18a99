"""``pgsweep apply FILE``: expiry rules declared in a TOML file kept in the app's repository.

The file lists rules (``[[rule]]``) and rules to remove (``[[remove]]``)::

    [[rule]]                                  # an age rule, epoch milliseconds, a condition
    table = '"Actor"."Attributes"'
    column = "ttl_timestamp"
    epoch_unit = "milliseconds"
    condition = "bucket <> 'keep'"
    live_view = true                          # "Actor"."Attributes_live" hides its garbage

    [[rule]]                                  # a condition rule, archived first
    table = '"Learn"."Users"'
    column = "status"
    kind = "condition"
    condition = "status = 'suspended' AND ..."
    archive = true                            # or the archive's name

    [[rule]]                                  # orphans, the parent id inside the key
    table = '"Learn".cache'
    column = "key"
    kind = "orphan"
    parent = '"Learn"."Users"'
    parent_key = "id"
    child_key = "substring(key FROM '^user:([0-9]+):')::bigint"

    [[remove]]
    table = "old_sessions"                    # every rule of the table, or name a column

Applying registers each rule through the engine's own functions (``pgsweep.add_rule``,
``add_condition_rule``, ``add_orphan_rule``, ``set_archive``, ``create_live_view``), which check
it, in one transaction; the difference is read from ``pgsweep.expiry_rule`` before and after, so
what is compared is what the engine stores (a condition in its deparsed form). A dry run is the
same transaction rolled back. A rule in the database that the file does not mention is kept and
reported: only ``[[remove]]`` removes one. For a rule in the file, the file is the truth for its
kind, condition, archive and keep_for; a zone or epoch unit left out keeps the rule's own (or
the engine's default for a new rule).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from pgsweep import db
from pgsweep.deploy import require_engine
from pgsweep.errors import UsageError

KINDS = ("age", "condition", "orphan")
RULE_FIELDS = {
    "table": str,
    "column": str,
    "kind": str,
    "keep_for": str,
    "value_zone": str,
    "epoch_unit": str,
    "condition": str,
    "parent": str,
    "parent_key": str,
    "child_key": str,
    "archive": (bool, str),
    "live_view": (bool, str),
}
REMOVE_FIELDS = {"table": str, "column": str}
# The columns of pgsweep.expiry_rule a change is reported in.
COMPARED = (
    "keep_for",
    "value_zone",
    "epoch_unit",
    "kind",
    "condition",
    "parent_table",
    "parent_key",
    "child_key",
    "archive_to",
)


@dataclass(frozen=True)
class RuleSpec:
    table: str
    column: str
    kind: str = "age"
    keep_for: str | None = None
    value_zone: str | None = None
    epoch_unit: str | None = None
    condition: str | None = None
    parent: str | None = None
    parent_key: str | None = None
    child_key: str | None = None
    archive: bool | str = False
    live_view: bool | str = False


@dataclass(frozen=True)
class RemoveSpec:
    table: str
    column: str | None = None


@dataclass(frozen=True)
class Policy:
    path: str
    rules: list[RuleSpec]
    removals: list[RemoveSpec]


@dataclass(frozen=True)
class Change:
    action: str  # add, change, remove, same, kept (in the database, not in the file)
    table: str
    column: str
    fields: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyResult:
    dry_run: bool
    changes: list[Change]
    views: list[str]

    @property
    def removals(self) -> list[Change]:
        return [c for c in self.changes if c.action == "remove"]

    @property
    def changed(self) -> bool:
        return any(c.action in ("add", "change", "remove") for c in self.changes)


def load(path: str | Path) -> Policy:
    """The policy in ``path``, or a :class:`UsageError` naming the line or the field at fault."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{name}: not valid TOML: {exc}") from exc
    unknown = set(document) - {"rule", "remove"}
    if unknown:
        raise UsageError(
            f"{name}: unknown section {sorted(unknown)[0]!r} (use [[rule]], [[remove]])"
        )
    rules = [_rule(name, i, e) for i, e in enumerate(_entries(name, document, "rule"), 1)]
    removals = [_remove(name, i, e) for i, e in enumerate(_entries(name, document, "remove"), 1)]
    if not rules and not removals:
        raise UsageError(f"{name}: no [[rule]] and no [[remove]]: nothing to apply")
    return Policy(name, rules, removals)


def _entries(name: str, document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entries = document.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UsageError(f"{name}: {key} must be an array of tables ([[{key}]])")
    return entries


def _checked(
    name: str, where: str, entry: dict[str, Any], fields: dict[str, Any], required: tuple[str, ...]
) -> None:
    for key, value in entry.items():
        if key not in fields:
            raise UsageError(f"{name}: {where}: unknown field {key!r}")
        if not isinstance(value, fields[key]) or value == "":
            raise UsageError(f"{name}: {where}: field {key!r} has a wrong value: {value!r}")
    for key in required:
        if key not in entry:
            raise UsageError(f"{name}: {where}: field {key!r} is missing")


def _rule(name: str, number: int, entry: dict[str, Any]) -> RuleSpec:
    where = f"[[rule]] #{number}" + (f" ({entry['table']})" if "table" in entry else "")
    _checked(name, where, entry, RULE_FIELDS, ("table", "column"))
    spec = RuleSpec(**entry)
    if spec.kind not in KINDS:
        raise UsageError(
            f"{name}: {where}: kind must be one of {', '.join(KINDS)}, not {spec.kind!r}"
        )
    if spec.kind == "condition" and spec.condition is None:
        raise UsageError(f"{name}: {where}: a condition rule needs field 'condition'")
    if spec.kind == "orphan" and (spec.parent is None or spec.parent_key is None):
        raise UsageError(f"{name}: {where}: an orphan rule needs fields 'parent' and 'parent_key'")
    extra = {
        "age": ("parent", "parent_key", "child_key"),
        "condition": ("parent", "parent_key", "child_key", "keep_for", "value_zone", "epoch_unit"),
        "orphan": ("keep_for", "value_zone", "epoch_unit"),
    }[spec.kind]
    for key in extra:
        if key in entry:
            raise UsageError(f"{name}: {where}: field {key!r} does not apply to a {spec.kind} rule")
    return spec


def _remove(name: str, number: int, entry: dict[str, Any]) -> RemoveSpec:
    where = f"[[remove]] #{number}"
    _checked(name, where, entry, REMOVE_FIELDS, ("table",))
    return RemoveSpec(**entry)


def apply(dsn: str, policy: Policy, *, dry_run: bool) -> ApplyResult:
    """Make the database's rules match ``policy`` (or, ``dry_run``, say how it would differ)."""
    with db.connect(dsn, autocommit=False) as conn:
        require_engine(conn)
        before = _rules(conn)
        named: set[tuple[str | None, str]] = set()
        views: list[str] = []
        where = policy.path
        try:
            for number, removal in enumerate(policy.removals, 1):
                where = f"{policy.path}: [[remove]] #{number} ({removal.table})"
                table = _regclass(conn, removal.table)
                if table is not None:
                    conn.execute(
                        "SELECT pgsweep.remove_rule(%s::regclass, %s)", (table, removal.column)
                    )
            for number, spec in enumerate(policy.rules, 1):
                where = f"{policy.path}: [[rule]] #{number} ({spec.table}.{spec.column})"
                _register(conn, spec)
                named.add((_regclass(conn, spec.table), spec.column))
            for table in dict.fromkeys(s.table for s in policy.rules if s.live_view):
                where = f"{policy.path}: live view of {table}"
                views.append(_view(conn, policy, table))
            after = _rules(conn)
        except psycopg.Error as exc:
            conn.rollback()
            raise UsageError(f"{where}: {_refusal(exc)}") from exc
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
    changes: list[Change] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is None and new is not None:
            changes.append(Change("add", *key, {k: (None, new[k]) for k in COMPARED if new[k]}))
        elif old is not None and new is None:
            changes.append(Change("remove", *key))
        elif old is not None and new is not None:
            diff = {k: (old[k], new[k]) for k in COMPARED if old[k] != new[k]}
            action = "change" if diff else ("same" if key in named else "kept")
            changes.append(Change(action, *key, diff))
    return ApplyResult(dry_run, changes, views)


def _rules(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], dict[str, str | None]]:
    rows = conn.execute(
        "SELECT r.table_name::text, r.column_name::text, r.keep_for::text, r.value_zone,"
        " r.epoch_unit, r.kind, r.condition, r.parent_table::text, r.parent_key::text,"
        " r.child_key, r.archive_to::text FROM pgsweep.expiry_rule r"
    ).fetchall()
    return {(str(r[0]), str(r[1])): dict(zip(COMPARED, r[2:], strict=True)) for r in rows}


def _regclass(conn: psycopg.Connection[Any], table: str) -> str | None:
    row = conn.execute("SELECT to_regclass(%s)::text", (table,)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _register(conn: psycopg.Connection[Any], spec: RuleSpec) -> None:
    if spec.kind == "age":
        conn.execute(
            "SELECT pgsweep.add_rule(%s::regclass, %s, coalesce(%s::interval, '0'), %s, %s, %s)",
            (
                spec.table,
                spec.column,
                spec.keep_for,
                spec.value_zone,
                spec.epoch_unit,
                spec.condition,
            ),
        )
    elif spec.kind == "condition":
        conn.execute(
            "SELECT pgsweep.add_condition_rule(%s::regclass, %s, %s)",
            (spec.table, spec.column, spec.condition),
        )
    else:
        conn.execute(
            "SELECT pgsweep.add_orphan_rule(%s::regclass, %s, %s::regclass, %s, %s, %s)",
            (spec.table, spec.column, spec.parent, spec.parent_key, spec.child_key, spec.condition),
        )
    archive = None if spec.archive is True else (spec.archive or "")
    conn.execute(
        "SELECT pgsweep.set_archive(%s::regclass, %s, %s)", (spec.table, spec.column, archive)
    )


def _view(conn: psycopg.Connection[Any], policy: Policy, table: str) -> str:
    names = {s.live_view for s in policy.rules if s.table == table and s.live_view}
    if len(names) > 1:
        raise UsageError(f"{policy.path}: rules of {table} name different live views")
    name = names.pop()
    row = conn.execute(
        "SELECT pgsweep.create_live_view(%s::regclass, %s)::text",
        (table, None if name is True else name),
    ).fetchone()
    assert row is not None
    return str(row[0])


def _refusal(exc: psycopg.Error) -> str:
    """The engine's refusal, in one line with its hint."""
    message = db.one_line(exc.diag.message_primary or str(exc))
    hint = exc.diag.message_hint
    return message + (f" (hint: {db.one_line(hint)})" if hint else "")
