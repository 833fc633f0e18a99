"""The manifests ``pgsweep verify`` compares against are what the shipped SQL builds: the newest
engine release installed alone, and the reference app at head (whose engine is the same).

When this fails, an SQL file changed what it installs: run ``make manifest`` and commit the new
``src/pgsweep/engine_manifest.json`` and ``src/pgsweep/matcha_manifest.json`` with that change.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from pgsweep import engine, manifest, matcha, migrate
from tests.pg import connect


def assert_current(shipped_path: Path, built: manifest.Manifest) -> None:
    shipped = shipped_path.read_text(encoding="utf-8")
    text = built.to_json()
    lines = difflib.unified_diff(
        shipped.splitlines(), text.splitlines(), "shipped", "built", lineterm=""
    )
    diff = "\n".join(lines)
    assert text == shipped, f"stale {shipped_path.name}: run `make manifest`\n{diff}"


def test_the_engine_manifest_matches_a_database_with_only_the_engine(fresh_db: str) -> None:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        built = manifest.read(conn, engine.latest(), manifest.ENGINE_SCHEMAS)
    assert_current(manifest.ENGINE_MANIFEST_PATH, built)


def test_the_app_manifest_matches_the_app_at_head(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "head")
    with connect(fresh_db) as conn:
        built = manifest.read(conn, migrate.head(), matcha.SCHEMAS)
    assert_current(matcha.MANIFEST_PATH, built)


def test_the_apps_engine_is_the_engine_installed_alone(fresh_db: str) -> None:
    # The app's chain reaches the engine through 0006-0008 and 0009's upgrade of them; a bare
    # database through install.sql. Both must end with the same routines, byte for byte.
    migrate.upgrade(fresh_db, "head")
    with connect(fresh_db) as conn:
        built = manifest.read(conn, engine.latest(), manifest.ENGINE_SCHEMAS)
    expected = manifest.expected()
    assert built.routines == expected.routines
    assert built.triggers == expected.triggers
    # 0007's own table (the jobs it scheduled) lives in the schema too, with its key.
    assert set(built.indexes) - set(expected.indexes) == {"pgsweep.scheduled_job_pkey"}


def test_the_manifests_cover_the_contract_and_the_engine() -> None:
    app = manifest.expected(matcha.MANIFEST_PATH)
    assert app.revision == migrate.head()
    for signature in (
        "public.cleanup_all_expired_tokens()",
        "public.cleanup_expired_password_reset_tokens()",
        "public.cleanup_expired_email_verification_tokens()",
        "public.cleanup_expired_refresh_tokens()",
        "public.refresh_deck_progress(p_user_id uuid, p_deck_id uuid)",
        "public.refresh_stale_deck_progress(p_user_id uuid)",
        "public.deck_progress(p_user_id uuid, p_deck_ids uuid[])",
    ):
        assert signature in app.routines
    assert {k.split(".")[1] for k in app.triggers} == {
        "trg_password_reset_tokens_cleanup",
        "trg_email_verification_tokens_cleanup",
        "trg_refresh_tokens_cleanup",
    }
    assert "public.idx_refresh_tokens_expires_at" in app.indexes
    core = manifest.expected()
    assert core.revision == engine.latest()
    for signature in (
        "pgsweep.sweep_on_insert()",
        "pgsweep.garbage_counts(p_table regclass)",
        "pgsweep.add_rule(p_table regclass, p_column name, p_keep_for interval, p_value_zone text,"
        " p_epoch_unit text, p_condition text)",
    ):
        assert signature in core.routines
    assert not any(name.startswith("public.") for name in core.routines)
