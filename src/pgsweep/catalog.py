"""A comparable picture of a database's user-visible catalog.

pytest-alembic-style "upgrade then downgrade leaves the schema as it was" checks only see tables;
this package's revisions mostly install functions, triggers and grants. :func:`snapshot` reads
all of those from the system catalogs into sorted, hashable rows, and :func:`diff` turns two
snapshots into readable lines for an assertion message.

Deliberately left out, so the same revisions compare equal on every kind of test server:

* system schemas, and the ``cron`` schema plus the ``pg_cron`` extension (pg_cron is only
  available on some servers, and only in the database named by ``cron.database_name``);
* objects that belong to an extension (``uuid-ossp``'s functions are the extension's business;
  the extension row and its version stand for them);
* Alembic's own ``alembic_version`` table;
* owner names: ACLs name the owner ``OWNER`` so the result does not depend on who ran the test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

Value: TypeAlias = str | int | bool | None
Row: TypeAlias = tuple[Value, ...]

_MAX_SHOWN = 300  # long function bodies would drown an assertion message

# --- SQL building blocks (constants only; nothing user-supplied is ever spliced in) --------

# Schemas whose contents are PostgreSQL's or pg_cron's, never ours.
_USER_NAMESPACE = sql.SQL(
    "{n}.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'cron')"
    " AND {n}.nspname !~ '^pg_(toast_)?temp_'"
)


def _user_ns(alias: str) -> sql.Composed:
    return _USER_NAMESPACE.format(n=sql.Identifier(alias))


def _not_extension_member(catalog: str, oid_expr: str) -> sql.Composed:
    return sql.SQL(
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = {cat}::regclass"
        " AND d.objid = {oid} AND d.deptype = 'e')"
    ).format(cat=sql.Literal(catalog), oid=sql.SQL(oid_expr))


def _role(expr: str, owner: str) -> sql.Composed:
    """A role OID as text, with PUBLIC and the object's owner spelled owner-independently."""
    return sql.SQL(
        "CASE WHEN {r} = 0 THEN 'PUBLIC' WHEN {r} = {o} THEN 'OWNER'"
        " ELSE pg_get_userbyid({r})::text END"
    ).format(r=sql.SQL(expr), o=sql.SQL(owner))


def _acl(acl: str, owner: str, kind: str) -> sql.Composed:
    """Normalised ACL text such as ``OWNER=EXECUTE, PUBLIC=EXECUTE``.

    A NULL ACL means "the built-in default"; expanding it with acldefault() makes a GRANT that
    was later REVOKEd compare equal to never having been granted.
    """
    return sql.SQL(
        "(SELECT coalesce(string_agg(x.item, ', ' ORDER BY x.item COLLATE \"C\"), '')"
        " FROM (SELECT {grantee} || '=' || a.privilege_type"
        " || CASE WHEN a.is_grantable THEN '*' ELSE '' END AS item"
        " FROM aclexplode(coalesce({acl}, acldefault({kind}, {owner}))) a) x)"
    ).format(
        grantee=_role("a.grantee", owner),
        acl=sql.SQL(acl),
        kind=sql.Literal(kind),
        owner=sql.SQL(owner),
    )


_RELATION = sql.SQL(
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE {ns} AND c.relname <> 'alembic_version' AND {member}"
).format(ns=_user_ns("n"), member=_not_extension_member("pg_class", "c.oid"))

_QUALIFIED = "n.nspname || '.' || c.relname"


@dataclass(frozen=True)
class _Section:
    column_names: str  # space-separated, one per selected column
    key: int  # how many leading columns identify one object
    query: sql.SQL | sql.Composed

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.column_names.split())


_SECTIONS: dict[str, _Section] = {
    "schemas": _Section(
        "schema acl",
        1,
        sql.SQL("SELECT n.nspname, {acl} FROM pg_namespace n WHERE {ns} AND {member}").format(
            acl=_acl("n.nspacl", "n.nspowner", "n"),
            ns=_user_ns("n"),
            member=_not_extension_member("pg_namespace", "n.oid"),
        ),
    ),
    "extensions": _Section(
        "extension version schema",
        1,
        sql.SQL(
            "SELECT e.extname, e.extversion, n.nspname FROM pg_extension e"
            " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'pg_cron'"
        ),
    ),
    "types": _Section(
        "type typtype definition",
        1,
        sql.SQL(
            "SELECT n.nspname || '.' || t.typname, t.typtype::text, CASE t.typtype"
            # enum labels in their declared order: ALTER TYPE … ADD VALUE BEFORE matters
            " WHEN 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', '"
            "   ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)"
            " WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod)"
            "   || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END"
            "   || coalesce(' DEFAULT ' || t.typdefault, '')"
            "   || coalesce((SELECT ' ' || string_agg(k.conname || ' '"
            "   || pg_get_constraintdef(k.oid), ' ' ORDER BY k.conname)"
            "   FROM pg_constraint k WHERE k.contypid = t.oid), '')"
            " WHEN 'c' THEN (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid,"
            "   a.atttypmod), ', ' ORDER BY a.attnum) FROM pg_attribute a"
            "   WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)"
            " ELSE '' END"
            " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE {ns} AND {member} AND t.typtype IN ('e', 'd', 'c', 'r', 'm')"
            # a table's row type is the table's business; keep only CREATE TYPE … AS (…)
            " AND (t.typtype <> 'c'"
            "   OR (SELECT r.relkind FROM pg_class r WHERE r.oid = t.typrelid) = 'c')"
        ).format(ns=_user_ns("n"), member=_not_extension_member("pg_type", "t.oid")),
    ),
    "tables": _Section(
        "relation relkind persistence options row_security acl",
        1,
        sql.SQL(
            "SELECT {q}, c.relkind::text, c.relpersistence::text,"
            " coalesce(array_to_string(c.reloptions, ', '), ''),"
            " CASE WHEN c.relforcerowsecurity THEN 'forced'"
            "   WHEN c.relrowsecurity THEN 'enabled' ELSE 'off' END,"
            " {acl} FROM pg_class c {rel} AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        ).format(q=sql.SQL(_QUALIFIED), acl=_acl("c.relacl", "c.relowner", "r"), rel=_RELATION),
    ),
    "columns": _Section(
        "relation column type not_null default identity generated collation ordinal",
        2,
        sql.SQL(
            "SELECT {q}, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
            " pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text, a.attgenerated::text,"
            " CASE WHEN a.attcollation <> ty.typcollation"
            "   THEN (SELECT co.collname FROM pg_collation co WHERE co.oid = a.attcollation)"
            "   ELSE '' END,"
            # position among live columns: a dropped column leaves no gap behind
            " row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)::int"
            " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_type ty ON ty.oid = a.atttypid"
            " LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum"
            " {rel} AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
            " AND a.attnum > 0 AND NOT a.attisdropped"
        ).format(q=sql.SQL(_QUALIFIED), rel=_RELATION),
    ),
    "constraints": _Section(
        "relation constraint contype definition",
        2,
        sql.SQL(
            "SELECT {q}, k.conname, k.contype::text, pg_get_constraintdef(k.oid)"
            " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid {rel}"
        ).format(q=sql.SQL(_QUALIFIED), rel=_RELATION),
    ),
    "indexes": _Section(
        "index relation definition valid",
        1,
        sql.SQL(
            "SELECT n.nspname || '.' || ic.relname, {q}, pg_get_indexdef(i.indexrelid),"
            " i.indisvalid FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid"
            " JOIN pg_class c ON c.oid = i.indrelid {rel}"
        ).format(q=sql.SQL(_QUALIFIED), rel=_RELATION),
    ),
    "functions": _Section(
        "function result kind language body config volatility security_definer strict parallel"
        " acl comment",
        1,
        sql.SQL(
            # identity arguments belong to the name: f(uuid) and f(uuid, int) are two functions
            "SELECT n.nspname || '.' || p.proname"
            " || '(' || pg_get_function_identity_arguments(p.oid) || ')',"
            " coalesce(pg_get_function_result(p.oid), ''), p.prokind::text, l.lanname,"
            " p.prosrc, coalesce(array_to_string(p.proconfig, ', '), ''),"
            " p.provolatile::text, p.prosecdef, p.proisstrict, p.proparallel::text,"
            " {acl}, coalesce(obj_description(p.oid, 'pg_proc'), '')"
            " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " JOIN pg_language l ON l.oid = p.prolang WHERE {ns} AND {member}"
        ).format(
            acl=_acl("p.proacl", "p.proowner", "f"),
            ns=_user_ns("n"),
            member=_not_extension_member("pg_proc", "p.oid"),
        ),
    ),
    "triggers": _Section(
        "relation trigger definition enabled",
        2,
        sql.SQL(
            "SELECT {q}, tg.tgname, pg_get_triggerdef(tg.oid), tg.tgenabled::text"
            " FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid"
            " {rel} AND NOT tg.tgisinternal"
        ).format(q=sql.SQL(_QUALIFIED), rel=_RELATION),
    ),
    "sequences": _Section(
        "sequence type start increment min max cache cycle owned_by acl",
        1,
        sql.SQL(
            "SELECT {q}, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,"
            " s.seqmax, s.seqcache, s.seqcycle,"
            " coalesce((SELECT oc.relnamespace::regnamespace::text || '.' || oc.relname"
            "   || '.' || oa.attname"
            "   FROM pg_depend d"
            "   JOIN pg_class oc ON oc.oid = d.refobjid"
            "   JOIN pg_attribute oa ON oa.attrelid = d.refobjid AND oa.attnum = d.refobjsubid"
            "   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid"
            "   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')), ''),"
            " {acl} FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid {rel}"
        ).format(q=sql.SQL(_QUALIFIED), acl=_acl("c.relacl", "c.relowner", "s"), rel=_RELATION),
    ),
    "views": _Section(
        "view relkind definition",
        1,
        sql.SQL(
            "SELECT {q}, c.relkind::text, pg_get_viewdef(c.oid, true)"
            " FROM pg_class c {rel} AND c.relkind IN ('v', 'm')"
        ).format(q=sql.SQL(_QUALIFIED), rel=_RELATION),
    ),
    # Event triggers belong to the database, not to a schema: an uninstall or a rollback that
    # leaves one behind would otherwise compare equal.
    "event_triggers": _Section(
        "event_trigger event function enabled tags",
        1,
        sql.SQL(
            "SELECT e.evtname, e.evtevent, e.evtfoid::regprocedure::text, e.evtenabled::text,"
            " coalesce(array_to_string(e.evttags, ','), '')"
            " FROM pg_event_trigger e WHERE {member}"
        ).format(member=_not_extension_member("pg_event_trigger", "e.oid")),
    ),
    # Privileges granted to anyone but the owner, one row each, on relations and columns.
    "grants": _Section(
        "kind object grantee privilege grantable",
        4,
        sql.SQL(
            "SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, {q},"
            " {grantee}, a.privilege_type, a.is_grantable"
            " FROM pg_class c"
            " CROSS JOIN LATERAL aclexplode(coalesce(c.relacl,"
            "   acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\","
            "   c.relowner))) a"
            " {rel} AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND a.grantee <> c.relowner"
            " UNION ALL"
            " SELECT 'column', {q} || '.' || att.attname, {grantee}, a.privilege_type,"
            " a.is_grantable FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid"
            " CROSS JOIN LATERAL aclexplode(att.attacl) a"
            " {rel} AND att.attacl IS NOT NULL AND NOT att.attisdropped"
            " AND a.grantee <> c.relowner"
        ).format(q=sql.SQL(_QUALIFIED), grantee=_role("a.grantee", "c.relowner"), rel=_RELATION),
    ),
}


def _sort_key(row: Row) -> tuple[tuple[bool, str, str], ...]:
    # None sorts first and never meets a str in a comparison; type name keeps 1 apart from '1'.
    return tuple((v is not None, type(v).__name__, str(v)) for v in row)


@dataclass(frozen=True)
class Snapshot:
    """Sorted catalog rows per kind of object; equal snapshots mean equal user schemas."""

    schemas: tuple[Row, ...]
    extensions: tuple[Row, ...]
    types: tuple[Row, ...]
    tables: tuple[Row, ...]
    columns: tuple[Row, ...]
    constraints: tuple[Row, ...]
    indexes: tuple[Row, ...]
    functions: tuple[Row, ...]
    triggers: tuple[Row, ...]
    sequences: tuple[Row, ...]
    views: tuple[Row, ...]
    event_triggers: tuple[Row, ...]
    grants: tuple[Row, ...]

    def sections(self) -> dict[str, tuple[Row, ...]]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def names(self, section: str) -> set[str]:
        """The identifying first column of every row in ``section`` (e.g. relation names)."""
        return {str(row[0]) for row in self.sections()[section]}


def _fetch(conn: psycopg.Connection[Any], query: sql.SQL | sql.Composed) -> tuple[Row, ...]:
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query)
        rows: list[Row] = [tuple(r) for r in cur.fetchall()]
    return tuple(sorted(rows, key=_sort_key))


def snapshot(conn: psycopg.Connection[Any]) -> Snapshot:
    """Read the current database's user-visible catalog.

    Only reads; if ``conn`` is not in autocommit mode this runs inside (or opens) the caller's
    transaction and leaves it to the caller to end.
    """
    return Snapshot(**{name: _fetch(conn, s.query) for name, s in _SECTIONS.items()})


# --- diff ----------------------------------------------------------------------------------


def _shorten(value: Value) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _describe(columns: Sequence[str], row: Row, key: int) -> str:
    ident = " ".join(str(v) for v in row[:key])
    rest = ", ".join(f"{c}={_shorten(v)}" for c, v in zip(columns[key:], row[key:], strict=True))
    return f"{ident} ({rest})" if rest else ident


def _group(rows: Iterable[Row], key: int) -> Mapping[Row, list[Row]]:
    grouped: dict[Row, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row[:key], []).append(row)
    return grouped


def _diff_section(name: str, spec: _Section, old: Sequence[Row], new: Sequence[Row]) -> list[str]:
    out: list[str] = []
    before, after = _group(old, spec.key), _group(new, spec.key)
    for ident in sorted(before.keys() | after.keys(), key=_sort_key):
        a_rows, b_rows = before.get(ident, []), after.get(ident, [])
        if len(a_rows) == 1 and len(b_rows) == 1:
            a_row, b_row = a_rows[0], b_rows[0]
            changed = [
                f"{col}: {_shorten(x)} -> {_shorten(y)}"
                for col, x, y in zip(spec.columns, a_row, b_row, strict=True)
                if x != y
            ]
            if changed:
                label = " ".join(str(v) for v in ident)
                out.append(f"~ {name} {label}: " + "; ".join(changed))
            continue
        # Missing on one side, or a key that is not unique: fall back to whole rows.
        out += [
            f"- {name} {_describe(spec.columns, r, spec.key)}" for r in a_rows if r not in b_rows
        ]
        out += [
            f"+ {name} {_describe(spec.columns, r, spec.key)}" for r in b_rows if r not in a_rows
        ]
    return out


def diff(a: Snapshot, b: Snapshot) -> list[str]:
    """Human-readable differences from ``a`` to ``b``: ``-`` only in a, ``+`` only in b,
    ``~`` changed. Empty when the snapshots are equal."""
    out: list[str] = []
    a_sections, b_sections = a.sections(), b.sections()
    for name, spec in _SECTIONS.items():
        out += _diff_section(name, spec, a_sections[name], b_sections[name])
    return out
