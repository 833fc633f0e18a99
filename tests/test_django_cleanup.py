"""A real Django project with django-oauth-toolkit (tests/django_app), cleaned two ways.

Django's ``migrate`` creates the tables, ``tests/django_app/fill.py`` fills them through Django's
own APIs (``SessionStore``, the toolkit's models) from a fixed seed, and copies of that database
(``CREATE DATABASE … TEMPLATE``) are cleaned by ``manage.py clearsessions`` + ``cleartokens``,
by ``pgsweep cleanup`` and by ``CALL pgsweep.sweep()`` with the rules of
``tests/django_app/pgsweep_rules.sql``. The rows left are compared table by table; docs/rules.md
("Django and django-oauth-toolkit") records where pgsweep's rules cannot follow ``cleartokens``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.django_app.compare import DAY, Variant
from tests.django_app.project import (
    PROJECT,
    ROWS,
    cleanup_once,
    copy_of,
    django_cleanup,
    filled_database,
    rows,
    run_python,
    sweep_once,
    with_rules,
)
from tests.pg import PgServer, connect


@pytest.fixture(scope="module")
def filled(pg_server: PgServer) -> Iterator[str]:
    """Name of the filled database every copy is made from."""
    with filled_database(pg_server) as name:
        yield name


@pytest.fixture(scope="module")
def cleaned(pg_server: PgServer, filled: str) -> dict[str, Any]:
    """The rows of the filled database and of each copy after each way of cleaning it."""
    out: dict[str, Any] = {"filled": rows(pg_server.dsn(filled))}
    with (
        copy_of(pg_server, filled, "django_orm") as orm,
        copy_of(pg_server, filled, "django_cleanup") as by_cleanup,
        copy_of(pg_server, filled, "django_sweep") as by_sweep,
    ):
        django_cleanup(orm)
        out["django"] = rows(orm)
        for dsn in (by_cleanup, by_sweep):
            with_rules(dsn)
        out["cleanup_reports"] = [cleanup_once(by_cleanup)]
        out["cleanup"] = rows(by_cleanup)
        out["cleanup_reports"].append(cleanup_once(by_cleanup))
        out["cleanup_twice"] = rows(by_cleanup)
        out["sweep_status"] = [sweep_once(by_sweep)]
        out["sweep"] = rows(by_sweep)
        out["sweep_status"].append(sweep_once(by_sweep))
        out["sweep_twice"] = rows(by_sweep)
        out["sessions_loaded"] = json.loads(run_python(by_sweep, PROJECT / "load_sessions.py"))
    return out


EXACT_IN_ONE_RUN = (
    "django_session",
    "oauth2_provider_refreshtoken",
    "oauth2_provider_grant",
    "oauth2_provider_application",
    "auth_user",
)
# Freed by a refresh token the same run deletes later (docs/rules.md, "Django and
# django-oauth-toolkit"): left for the next run.
SECOND_RUN = ("oauth2_provider_accesstoken", "oauth2_provider_idtoken")


KINDS = """
SELECT count(*) FILTER (WHERE a.expires < now() - interval '1 day' AND r.id IS NULL),
       count(*) FILTER (WHERE a.expires < now() - interval '1 day' AND r.revoked IS NULL),
       count(*) FILTER (WHERE a.expires < now() - interval '1 day' AND r.revoked IS NOT NULL),
       count(*) FILTER (WHERE a.expires BETWEEN now() - interval '1 day' AND now()
                          AND r.id IS NULL),
       count(*) FILTER (WHERE a.expires BETWEEN now() - interval '1 day' AND now()
                          AND r.revoked IS NULL),
       count(*) FILTER (WHERE a.expires BETWEEN now() - interval '1 day' AND now()
                          AND r.revoked IS NOT NULL),
       count(*) FILTER (WHERE a.expires > now() AND r.id IS NULL),
       count(*) FILTER (WHERE a.expires > now() AND r.revoked IS NULL),
       count(*) FILTER (WHERE a.expires < now() AND a.id_token_id IS NOT NULL),
       count(*) FILTER (WHERE a.expires > now() AND a.id_token_id IS NOT NULL)
  FROM oauth2_provider_accesstoken a
  LEFT JOIN oauth2_provider_refreshtoken r ON r.access_token_id = a.id
"""
# Nothing the filler writes is within 10 minutes of a cutoff (now, now - 1 day).
NEAR_A_CUTOFF = """
SELECT (SELECT count(*) FROM django_session WHERE expire_date BETWEEN now() - m AND now() + m)
     + (SELECT count(*) FROM oauth2_provider_accesstoken
         WHERE expires BETWEEN now() - m AND now() + m
            OR expires BETWEEN now() - d - m AND now() - d + m)
     + (SELECT count(*) FROM oauth2_provider_refreshtoken
         WHERE revoked BETWEEN now() - m AND now() + m
            OR revoked BETWEEN now() - d - m AND now() - d + m)
     + (SELECT count(*) FROM oauth2_provider_idtoken WHERE expires BETWEEN now() - m AND now() + m)
     + (SELECT count(*) FROM oauth2_provider_grant WHERE expires BETWEEN now() - m AND now() + m)
  FROM (VALUES (interval '9 minutes', interval '1 day')) AS margin (m, d)
"""


def test_the_filler_wrote_every_kind_of_token_and_none_near_a_cutoff(
    pg_server: PgServer, filled: str
) -> None:
    with connect(pg_server.dsn(filled)) as conn:
        kinds = conn.execute(KINDS).fetchone()
        near = conn.execute(NEAR_A_CUTOFF).fetchone()
    assert kinds is not None
    assert all(count > 0 for count in kinds), kinds
    assert near == (0,)


def test_the_filler_wrote_garbage_and_live_rows_of_every_kind(cleaned: dict[str, Any]) -> None:
    filled, django = cleaned["filled"], cleaned["django"]
    for table in ROWS:
        if table in ("oauth2_provider_application", "auth_user"):
            assert len(django[table]) == len(filled[table]) > 0
        else:  # cleartokens and clearsessions both delete some and keep some of each table
            assert 0 < len(django[table]) < len(filled[table]), table
    tokens = filled["oauth2_provider_accesstoken"]
    assert any(source is not None for _, source, _ in tokens)
    assert any(id_token is not None for _, _, id_token in tokens)
    refresh = filled["oauth2_provider_refreshtoken"]
    assert any(access is None and not revoked for _, access, revoked in refresh)
    assert any(access is None and revoked for _, access, revoked in refresh)


@pytest.mark.parametrize("way", ["cleanup", "sweep"])
def test_sessions_refresh_tokens_and_grants_are_left_as_the_commands_leave_them_in_one_run(
    cleaned: dict[str, Any], way: str
) -> None:
    for table in EXACT_IN_ONE_RUN:
        assert cleaned[way][table] == cleaned["django"][table], table


@pytest.mark.parametrize("way", ["cleanup", "sweep"])
def test_one_run_keeps_every_access_and_id_token_cleartokens_keeps(
    cleaned: dict[str, Any], way: str
) -> None:
    for table in SECOND_RUN:
        kept, by_django = set(cleaned[way][table]), set(cleaned["django"][table])
        assert by_django <= kept, table
    # what the first run leaves over is expired: no live access token is ever at stake
    left_over = {
        row[0]
        for row in set(cleaned[way]["oauth2_provider_accesstoken"])
        - set(cleaned["django"]["oauth2_provider_accesstoken"])
    }
    assert left_over  # this seed has access tokens freed only by the run's refresh rules
    refreshed = {r[1] for r in cleaned[way]["oauth2_provider_refreshtoken"]}
    assert not left_over & refreshed  # none has a refresh token any more: the next run's


def test_pgsweep_cleanup_and_the_scheduled_sweep_leave_the_same_rows_run_for_run(
    cleaned: dict[str, Any],
) -> None:
    assert cleaned["cleanup"] == cleaned["sweep"]
    assert cleaned["cleanup_twice"] == cleaned["sweep_twice"]


@pytest.mark.parametrize("way", ["cleanup_twice", "sweep_twice"])
def test_a_second_run_leaves_every_table_as_clearsessions_and_cleartokens_do(
    cleaned: dict[str, Any], way: str
) -> None:
    for table in ROWS:
        assert cleaned[way][table] == cleaned["django"][table], table


def test_every_run_succeeded_and_the_second_deleted_only_access_and_id_tokens(
    cleaned: dict[str, Any],
) -> None:
    assert cleaned["sweep_status"] == ["succeeded", "succeeded"]
    first, second = cleaned["cleanup_reports"]
    for report in (first, second):
        assert report["ok"]
        assert not report["failed"]
    filled, once = cleaned["filled"], cleaned["cleanup"]
    assert first["deleted"] == sum(len(filled[t]) - len(once[t]) for t in ROWS)
    by_table = {t["table"]: t["deleted"] for t in second["tables"] if t["deleted"]}
    assert set(by_table) == set(SECOND_RUN)
    for table in SECOND_RUN:
        assert by_table[table] == len(once[table]) - len(cleaned["django"][table])


def test_every_session_left_still_loads_through_django(cleaned: dict[str, Any]) -> None:
    loaded = cleaned["sessions_loaded"]
    assert sorted(loaded) == [key for (key,) in cleaned["django"]["django_session"]]
    assert all(isinstance(data.get("visit"), int) for data in loaded.values())


def test_with_a_grace_period_the_rules_short_of_the_age_rule_never_delete_what_cleartokens_keeps(
    pg_server: PgServer, filled: str
) -> None:
    # REFRESH_TOKEN_GRACE_PERIOD_SECONDS keeps a revoked refresh token, and so its access token,
    # past REFRESH_TOKEN_EXPIRE_SECONDS; the access tokens' age rule would delete that access
    # token (docs/rules.md): without it, what the rules leave is a superset of cleartokens'.
    variant = Variant("grace", {"REFRESH_TOKEN_GRACE_PERIOD_SECONDS": DAY}, "1 day", False)
    with (
        copy_of(pg_server, filled, "grace_orm") as orm,
        copy_of(pg_server, filled, "grace_sweep") as swept,
    ):
        django_cleanup(orm, variant.oauth)
        with_rules(swept, variant.rules())
        for _ in range(2):
            assert sweep_once(swept) == "succeeded"
        by_django, left = rows(orm), rows(swept)
        with connect(swept) as conn:
            # refresh tokens never revoked whose access token expired more than a day ago
            dormant = conn.execute(
                "SELECT r.id FROM oauth2_provider_refreshtoken r"
                " JOIN oauth2_provider_accesstoken a ON a.id = r.access_token_id"
                " WHERE r.revoked IS NULL AND a.expires < now() - interval '1 day'"
            ).fetchall()
    for table in ("django_session", "oauth2_provider_grant"):
        assert left[table] == by_django[table], table
    for table in ROWS:
        assert set(by_django[table]) <= set(left[table]), table
    # what is left over is what cleartokens reaches through the access token's expiry (a
    # related-row condition), and what only those refresh tokens kept
    refresh_left = {row[0] for row in left["oauth2_provider_refreshtoken"]}
    refresh_by_django = {row[0] for row in by_django["oauth2_provider_refreshtoken"]}
    assert dormant
    assert refresh_left - refresh_by_django == {row[0] for row in dormant}


def test_without_refresh_token_expiry_the_rules_short_of_the_age_rule_match_every_table(
    pg_server: PgServer, filled: str
) -> None:
    # REFRESH_TOKEN_EXPIRE_SECONDS unset: cleartokens skips the one criterion that reads another
    # table's column, and what is left of it, every other criterion, is matched row for row
    variant = Variant("no expiry", {"REFRESH_TOKEN_EXPIRE_SECONDS": None}, age_rule=False)
    with (
        copy_of(pg_server, filled, "noexp_orm") as orm,
        copy_of(pg_server, filled, "noexp_sweep") as swept,
    ):
        django_cleanup(orm, variant.oauth)
        with_rules(swept, variant.rules())
        for _ in range(2):
            assert sweep_once(swept) == "succeeded"
        by_django, left = rows(orm), rows(swept)
    for table in ROWS:
        assert left[table] == by_django[table], table
