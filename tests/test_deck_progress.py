"""refresh_deck_progress and refresh_stale_deck_progress compute the right figures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.pg import connect
from tests.tokens import add_user


@pytest.fixture
def conn(head_db: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(head_db, autocommit=False) as connection:
        yield connection
        connection.rollback()


def add_deck(conn: psycopg.Connection[Any], title: str, cards: int) -> tuple[str, list[str]]:
    deck = conn.execute(
        "INSERT INTO decks (title, language_from, language_to)"
        " VALUES (%s, 'en', 'ja') RETURNING id",
        (title,),
    ).fetchone()
    assert deck is not None
    ids = [
        str(r[0])
        for r in conn.execute(
            "INSERT INTO flashcards (term, translation, language_from, language_to)"
            " SELECT %s || g, 't' || g, 'en', 'ja' FROM generate_series(1, %s) g RETURNING id",
            (title, cards),
        ).fetchall()
    ]
    for card in ids:
        conn.execute("INSERT INTO deck_flashcards VALUES (%s, %s)", (deck[0], card))
    return str(deck[0]), ids


def progress(conn: psycopg.Connection[Any], user: str, deck: str) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT total_cards, mastered_cards, cards_due_today, total_practices, last_practiced_at"
        " FROM user_deck_progress WHERE user_id = %s AND deck_id = %s",
        (user, deck),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_refresh_deck_progress_counts_cards_mastery_due_and_practice(
    conn: psycopg.Connection[Any],
) -> None:
    ann, bob = add_user(conn, "ann"), add_user(conn, "bob")
    deck, (c1, c2, _c3) = add_deck(conn, "basics", 3)
    conn.execute(
        "INSERT INTO user_card_progress (user_id, flashcard_id, next_review_at, last_review_at,"
        " times_correct, times_wrong, mastered_at) VALUES"
        " (%(ann)s, %(c1)s, now() - interval '1 hour', now() - interval '2 days', 4, 1, now()),"
        " (%(ann)s, %(c2)s, now() + interval '1 day', now() - interval '1 day', 2, 3, NULL),"
        " (%(bob)s, %(c1)s, now() - interval '1 hour', now(), 50, 50, now())",
        {"ann": ann, "bob": bob, "c1": c1, "c2": c2},
    )
    conn.execute("SELECT refresh_deck_progress(%s, %s)", (ann, deck))
    last = conn.execute("SELECT now() - interval '1 day'").fetchone()
    assert last is not None
    assert progress(conn, ann, deck) == (3, 1, 1, 10, last[0])


def test_an_empty_deck_or_an_unpractised_user_gets_zeros(conn: psycopg.Connection[Any]) -> None:
    ann = add_user(conn, "ann")
    empty, _ = add_deck(conn, "empty", 0)
    fresh, _ = add_deck(conn, "fresh", 2)
    conn.execute("SELECT refresh_deck_progress(%s, %s)", (ann, empty))
    conn.execute("SELECT refresh_deck_progress(%s, %s)", (ann, fresh))
    assert progress(conn, ann, empty) == (0, 0, 0, 0, None)
    assert progress(conn, ann, fresh) == (2, 0, 0, 0, None)


def test_refresh_stale_refreshes_exactly_the_users_stale_rows(
    conn: psycopg.Connection[Any],
) -> None:
    ann, bob = add_user(conn, "ann"), add_user(conn, "bob")
    decks = [add_deck(conn, f"d{i}", 2)[0] for i in range(4)]
    ages = ["2 hours", None, "10 minutes", "61 minutes"]  # stale, never set, fresh, stale
    for deck, age in zip(decks, ages, strict=True):
        conn.execute(
            "INSERT INTO user_deck_progress (user_id, deck_id, updated_at)"
            " VALUES (%s, %s, now() - %s::interval)",
            (ann, deck, age),
        )
        conn.execute(
            "INSERT INTO user_deck_progress (user_id, deck_id, updated_at)"
            " VALUES (%s, %s, now() - interval '1 day')",
            (bob, deck),
        )
    refreshed = conn.execute("SELECT refresh_stale_deck_progress(%s)", (ann,)).fetchone()
    assert refreshed == (3,)
    totals = conn.execute(
        "SELECT deck_id, total_cards FROM user_deck_progress WHERE user_id = %s", (ann,)
    ).fetchall()
    assert {str(d): t for d, t in totals} == {decks[0]: 2, decks[1]: 2, decks[2]: 0, decks[3]: 2}
    bobs = conn.execute(
        "SELECT count(*) FROM user_deck_progress WHERE user_id = %s AND total_cards = 0", (bob,)
    ).fetchone()
    assert bobs == (4,)  # another user's rows are not touched
    assert conn.execute("SELECT refresh_stale_deck_progress(%s)", (ann,)).fetchone() == (0,)


@pytest.mark.parametrize(
    "call",
    [
        "SELECT refresh_deck_progress(NULL, uuid_generate_v4())",
        "SELECT refresh_deck_progress(uuid_generate_v4(), NULL)",
        "SELECT refresh_stale_deck_progress(NULL)",
    ],
)
def test_null_arguments_are_refused_with_a_clear_error(
    conn: psycopg.Connection[Any], call: str
) -> None:
    with pytest.raises(psycopg.errors.NullValueNotAllowed, match="may not be null"):
        conn.execute(call)


def test_unknown_ids_are_a_foreign_key_error_and_unknown_user_refreshes_nothing(
    conn: psycopg.Connection[Any],
) -> None:
    ann = add_user(conn, "ann")
    nobody = conn.execute("SELECT refresh_stale_deck_progress(uuid_generate_v4())").fetchone()
    assert nobody == (0,)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("SELECT refresh_deck_progress(%s, uuid_generate_v4())", (ann,))
