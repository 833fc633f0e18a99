"""What the shipped SQL installs, as checked-in manifests that ``pgsweep verify`` reads.

A function "replaced by another body" can only be recognised against what it should be. This
module reads, from a database, the definitions pgsweep owns in some schemas: every routine
(extension members excluded), every trigger and every index on tables of those schemas. Two
manifests are shipped: ``engine_manifest.json``, schema ``pgsweep`` of a database where only the
newest engine release was installed, and ``matcha_manifest.json``, schema ``public`` of the
reference app's database at its head revision. :func:`expected` loads one.

Routine bodies are kept as SHA-256 hashes of ``prosrc`` (with language, result type, volatility,
security and ``SET`` options as they are); triggers and indexes as PostgreSQL's own
``pg_get_triggerdef`` / ``pg_get_indexdef``. The manifest is generated, never edited:
``make manifest`` (``python -m pgsweep.manifest --write``) rebuilds both from a throwaway cluster,
and ``tests/test_manifest.py`` fails whenever one no longer matches the SQL files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

ENGINE_MANIFEST_PATH = Path(__file__).resolve().parent / "engine_manifest.json"
ENGINE_SCHEMAS = ("pgsweep",)


@dataclass(frozen=True)
class Routine:
    signature: str  # schema.name(identity arguments)
    kind: str  # function | procedure
    result: str
    language: str
    volatility: str
    security_definer: bool
    config: str
    body_sha256: str


@dataclass(frozen=True)
class Trigger:
    name: str  # table.trigger
    definition: str


@dataclass(frozen=True)
class Index:
    name: str  # schema.index
    table: str
    definition: str


@dataclass(frozen=True)
class Manifest:
    revision: str | None  # what it describes: an engine release, or an app revision
    routines: dict[str, Routine]
    triggers: dict[str, Trigger]
    indexes: dict[str, Index]

    def to_json(self) -> str:
        document = {
            "revision": self.revision,
            "routines": {k: asdict(v) for k, v in sorted(self.routines.items())},
            "triggers": {k: asdict(v) for k, v in sorted(self.triggers.items())},
            "indexes": {k: asdict(v) for k, v in sorted(self.indexes.items())},
        }
        return json.dumps(document, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        document: dict[str, Any] = json.loads(text)
        return cls(
            document["revision"],
            {k: Routine(**v) for k, v in document["routines"].items()},
            {k: Trigger(**v) for k, v in document["triggers"].items()},
            {k: Index(**v) for k, v in document["indexes"].items()},
        )


_ROUTINES = """
SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
       coalesce(pg_get_function_result(p.oid), ''), l.lanname,
       CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END,
       p.prosecdef, coalesce(array_to_string(p.proconfig, ', '), ''), p.prosrc
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_language l ON l.oid = p.prolang
 WHERE n.nspname = ANY (%(schemas)s)
   -- another extension's functions in the schema are that extension's business; the engine
   -- installed as the extension pgsweep (pgsweep.extension) is the engine
   AND NOT EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
                      AND d.refclassid = 'pg_extension'::regclass AND e.extname <> 'pgsweep')
"""

_TRIGGERS = """
SELECT c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY (%(schemas)s) AND NOT t.tgisinternal
"""

_INDEXES = """
SELECT n.nspname || '.' || ic.relname, c.relname, pg_get_indexdef(i.indexrelid)
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY (%(schemas)s) AND c.relname <> 'alembic_version'
"""


def body_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def read_routines(conn: psycopg.Connection[Any], schemas: tuple[str, ...]) -> dict[str, Routine]:
    rows = conn.execute(_ROUTINES, {"schemas": list(schemas)}).fetchall()
    return {
        r[0]: Routine(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], body_hash(r[7])) for r in rows
    }


def read_triggers(conn: psycopg.Connection[Any], schemas: tuple[str, ...]) -> dict[str, Trigger]:
    rows = conn.execute(_TRIGGERS, {"schemas": list(schemas)}).fetchall()
    return {r[0]: Trigger(r[0], r[1]) for r in rows}


def read_indexes(conn: psycopg.Connection[Any], schemas: tuple[str, ...]) -> dict[str, Index]:
    rows = conn.execute(_INDEXES, {"schemas": list(schemas)}).fetchall()
    return {r[0]: Index(r[0], r[1], r[2]) for r in rows}


def read(
    conn: psycopg.Connection[Any], revision: str | None, schemas: tuple[str, ...]
) -> Manifest:
    """The manifest of ``schemas`` in the database behind ``conn``, labelled ``revision``."""
    return Manifest(
        revision,
        read_routines(conn, schemas),
        read_triggers(conn, schemas),
        read_indexes(conn, schemas),
    )


def expected(path: Path = ENGINE_MANIFEST_PATH) -> Manifest:
    """The definitions the shipped SQL installs (by default: the newest engine release's)."""
    return Manifest.from_json(path.read_text(encoding="utf-8"))


def build_references() -> dict[Path, Manifest]:
    """In a throwaway local cluster: the newest engine alone in one database, the reference app
    at head in another; the manifest of each, by the file it is shipped in.

    Needs a source checkout (``make manifest``): the cluster is test support, which the wheel
    does not ship, so it is imported here and not at module level.
    """
    from pgsweep import engine, matcha, migrate
    from pgsweep_testing.localpg import LocalCluster

    with LocalCluster(preload_cron=False) as cluster:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE engine_only")
            admin.execute("CREATE DATABASE matcha")
        engine.install(cluster.dsn("engine_only"))
        migrate.upgrade(cluster.dsn("matcha"), "head")
        with psycopg.connect(cluster.dsn("engine_only"), autocommit=True) as conn:
            engine_manifest = read(conn, engine.latest(), ENGINE_SCHEMAS)
        with psycopg.connect(cluster.dsn("matcha"), autocommit=True) as conn:
            app_manifest = read(conn, migrate.head(), matcha.SCHEMAS)
    return {ENGINE_MANIFEST_PATH: engine_manifest, matcha.MANIFEST_PATH: app_manifest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pgsweep.manifest",
        description="Print (or --write) the manifests of the engine and of the reference app.",
    )
    parser.add_argument("--write", action="store_true", help="write the manifest files")
    args = parser.parse_args(argv)
    for path, built in build_references().items():
        if args.write:
            path.write_text(built.to_json(), encoding="utf-8")
            print(f"wrote {path}")
        else:
            sys.stdout.write(f"# {path.name}\n{built.to_json()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
