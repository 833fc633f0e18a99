"""The manifest ``pgsweep verify`` compares against is what the shipped SQL builds at head.

When this fails, an SQL file changed what it installs: run ``make manifest`` and commit the new
``src/pgsweep/expected_schema.json`` with that change.
"""

from __future__ import annotations

import difflib

from pgsweep import manifest, migrate
from tests.pg import connect


def test_the_manifest_matches_a_database_built_from_the_shipped_sql(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "head")
    with connect(fresh_db) as conn:
        built = manifest.read(conn, migrate.head()).to_json()
    shipped = manifest.MANIFEST_PATH.read_text(encoding="utf-8")
    diff = "\n".join(
        difflib.unified_diff(
            shipped.splitlines(), built.splitlines(), "shipped", "built", lineterm=""
        )
    )
    assert built == shipped, f"stale manifest: run `make manifest`\n{diff}"


def test_the_manifest_covers_the_contract_and_the_engine() -> None:
    expected = manifest.expected()
    assert expected.revision == migrate.head()
    for signature in (
        "public.cleanup_all_expired_tokens()",
        "public.cleanup_expired_password_reset_tokens()",
        "public.cleanup_expired_email_verification_tokens()",
        "public.cleanup_expired_refresh_tokens()",
        "public.refresh_deck_progress(p_user_id uuid, p_deck_id uuid)",
        "public.refresh_stale_deck_progress(p_user_id uuid)",
        "pgsweep.sweep_on_insert()",
        "pgsweep.garbage_counts(p_table regclass)",
    ):
        assert signature in expected.routines
    assert {k.split(".")[1] for k in expected.triggers} == {
        "trg_password_reset_tokens_cleanup",
        "trg_email_verification_tokens_cleanup",
        "trg_refresh_tokens_cleanup",
    }
    assert "public.idx_refresh_tokens_expires_at" in expected.indexes
