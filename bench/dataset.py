"""The same data twice: a pgsweep database at head and a plain one, byte for byte the same rows.

Loading: the pgsweep database is built at revision 0005, the token tables are filled with one
``INSERT … SELECT generate_series`` each (deterministic: every id, hash and timestamp derives
from the row number and the seed, no ``random()``), with their key indexes dropped during the
load and re-added afterwards (both sides get them the same way), then upgraded to head. The
plain database is a file copy of it, rolled back to 0005 and given the plain approach
(``bench/plain.sql``). Both are vacuumed and analyzed alike.

Garbage is interleaved with live rows, as it accrues in a real table. The garbage rows of a
pair are saved in ``bench.garbage_<table>`` on both sides, so a scenario can put exactly the
same rows back after a timed cleanup removed them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.server import BenchServer, connect
from pgsweep import migrate

TOKEN_TABLES = ("password_reset_tokens", "email_verification_tokens", "refresh_tokens")
TABLES_WITH_USED_AT = ("password_reset_tokens", "email_verification_tokens")
PLAIN_SQL = Path(__file__).with_name("plain.sql")

# What each side calls garbage (identical by definition; the two sides differ in how they find
# and delete it). Refresh tokens have no used_at.
GARBAGE = {
    "password_reset_tokens": "expires_at < now() OR used_at IS NOT NULL",
    "email_verification_tokens": "expires_at < now() OR used_at IS NOT NULL",
    "refresh_tokens": "expires_at < now()",
}


@dataclass(frozen=True)
class Layout:
    """Which row numbers of a token table are garbage.

    ``daily``: ``live`` live rows plus 1 % of that expired and, where the table has used_at,
    1 % used (refresh tokens: 1 % expired only). ``backlog``: ``live`` rows, half of them expired.
    """

    kind: str  # "daily" or "backlog"
    live: int

    def total_rows(self, table: str) -> int:
        if self.kind == "backlog":
            return self.live
        extra = self.live // 50 if table in TABLES_WITH_USED_AT else self.live // 100
        return self.live + extra

    def every(self, table: str) -> int:
        """Row g is garbage when g % every == 0 (so garbage is spread evenly over the pages)."""
        if self.kind == "backlog":
            return 2
        return 51 if table in TABLES_WITH_USED_AT else 101

    def garbage_rows(self, table: str) -> int:
        return self.total_rows(table) // self.every(table)


@dataclass(frozen=True)
class Pair:
    """The two databases of one data set."""

    name: str
    layout: Layout
    pgsweep_db: str
    plain_db: str
    users: int


def _token_insert(table: str, layout: Layout) -> sql.Composed:
    """One INSERT … SELECT generate_series for a token table, per the layout.

    Rows are written in the order the app would have created them, so every timestamp rises
    with the row number (``{t}``, 0 to 1 over the table), as in any append-mostly table: live
    rows expire 2 h to 1 day from now (refresh tokens: 2 h to 28 days), so none expires during
    a run. Garbage is spread evenly over the pages (every page holds some, the hardest case for
    an index-driven cleanup): in ``daily``, alternately expired within the last day and used
    (not yet expired) where the table has used_at; in ``backlog``, expired.
    """
    every = layout.every(table)
    lifetime_minutes = 1320 if table in TABLES_WITH_USED_AT else 40320
    used_garbage = layout.kind == "daily" and table in TABLES_WITH_USED_AT
    position = sql.SQL("(g::float8 / {})").format(sql.Literal(layout.total_rows(table)))
    is_garbage = sql.SQL("mod(g, {}) = 0").format(sql.Literal(every))
    is_used = (
        sql.SQL("({} AND mod(g / {}, 2) = 0)").format(is_garbage, sql.Literal(every))
        if used_garbage
        else sql.SQL("false")
    )
    # Within the last day, rising with the row number; never later than a minute ago.
    last_day = sql.SQL("now() - interval '1 day' + {} * interval '1439 minutes'").format(position)
    live = sql.SQL("now() + interval '2 hours' + {} * {} * interval '1 minute'").format(
        position, sql.Literal(lifetime_minutes)
    )
    expires_at = sql.SQL(
        "CASE WHEN {garbage} AND NOT {used} THEN {expired} ELSE {live} END"
    ).format(garbage=is_garbage, used=is_used, expired=last_day, live=live)
    common = {
        "table": sql.Identifier(table),
        "name": sql.Literal(table),
        "expires_at": expires_at,
        "created_at": sql.SQL("now() - interval '2 days' + {} * interval '1 day'").format(position),
        "total": sql.Literal(layout.total_rows(table)),
    }
    if table in TABLES_WITH_USED_AT:
        return sql.SQL(
            "INSERT INTO {table} (id, user_id, token_hash, expires_at, used_at, created_at)"
            " SELECT md5(%(seed)s || {name} || g)::uuid,"
            "        md5(%(seed)s || ':user:' || (1 + mod(g, %(users)s)))::uuid,"
            "        md5(%(seed)s || ':hash:' || {name} || g),"
            "        {expires_at}, CASE WHEN {used} THEN {used_at} END, {created_at}"
            "   FROM generate_series(1, {total}) AS g"
        ).format(used=is_used, used_at=last_day, **common)
    return sql.SQL(
        "INSERT INTO {table} (id, user_id, token_hash, device_info, ip_address, expires_at,"
        "                     created_at, last_used_at)"
        " SELECT md5(%(seed)s || {name} || g)::uuid,"
        "        md5(%(seed)s || ':user:' || (1 + mod(g, %(users)s)))::uuid,"
        "        md5(%(seed)s || ':hash:' || {name} || g),"
        "        'bench device ' || mod(g, 7), '10.0.' || mod(g, 250) || '.' || mod(g, 200),"
        "        {expires_at}, {created_at}, {created_at}"
        "   FROM generate_series(1, {total}) AS g"
    ).format(**common)


def _load_tokens(conn: psycopg.Connection[Any], layout: Layout, users: int, seed: str) -> None:
    for table in TOKEN_TABLES:
        # The key indexes go during the load and come back with the same names and
        # definitions: building a B-tree once is much cheaper than a million random inserts.
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}, DROP CONSTRAINT {}").format(
                sql.Identifier(table),
                sql.Identifier(f"{table}_pkey"),
                sql.Identifier(f"{table}_token_hash_key"),
            )
        )
        if table == "refresh_tokens":
            conn.execute("DROP INDEX idx_refresh_tokens_user_id")
        conn.execute(_token_insert(table, layout), {"seed": seed, "users": users})
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (id), ADD CONSTRAINT {} UNIQUE"
                " (token_hash)"
            ).format(
                sql.Identifier(table),
                sql.Identifier(f"{table}_pkey"),
                sql.Identifier(f"{table}_token_hash_key"),
            )
        )
        if table == "refresh_tokens":
            conn.execute("CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens (user_id)")


def _load_decks(
    conn: psycopg.Connection[Any], seed: str, decks: int, cards_per_deck: int
) -> None:
    """S5's learner (user 1): ``decks`` decks of ``cards_per_deck`` cards, 80 % of the cards
    practiced (a third of those mastered, half due), every deck-progress row stale."""
    conn.execute(
        "INSERT INTO decks (id, title, language_from, language_to)"
        " SELECT md5(%(seed)s || ':deck:' || d)::uuid, 'deck ' || d, 'en', 'ja'"
        "   FROM generate_series(1, %(decks)s) AS d",
        {"seed": seed, "decks": decks},
    )
    conn.execute(
        "INSERT INTO flashcards (id, term, translation, language_from, language_to)"
        " SELECT md5(%(seed)s || ':card:' || c)::uuid, 'term ' || c, 'translation ' || c,"
        "        'en', 'ja'"
        "   FROM generate_series(1, %(cards)s) AS c",
        {"seed": seed, "cards": decks * cards_per_deck},
    )
    conn.execute(
        "INSERT INTO deck_flashcards (deck_id, flashcard_id)"
        " SELECT md5(%(seed)s || ':deck:' || (1 + (c - 1) / %(per)s))::uuid,"
        "        md5(%(seed)s || ':card:' || c)::uuid"
        "   FROM generate_series(1, %(cards)s) AS c",
        {"seed": seed, "cards": decks * cards_per_deck, "per": cards_per_deck},
    )
    conn.execute(
        "INSERT INTO user_card_progress (user_id, flashcard_id, next_review_at, last_review_at,"
        "                                times_correct, times_wrong, mastered_at)"
        " SELECT md5(%(seed)s || ':user:1')::uuid, md5(%(seed)s || ':card:' || c)::uuid,"
        "        now() + (mod(c, 2) * 2 - 1) * interval '1 day',"
        "        now() - mod(c, 30) * interval '1 day',"
        "        mod(c, 9), mod(c, 4), CASE WHEN mod(c, 3) = 0 THEN now() - interval '1 day' END"
        "   FROM generate_series(1, %(cards)s) AS c WHERE mod(c, 5) <> 0",
        {"seed": seed, "cards": decks * cards_per_deck},
    )
    conn.execute(
        "INSERT INTO user_deck_progress (user_id, deck_id, updated_at)"
        " SELECT md5(%(seed)s || ':user:1')::uuid, md5(%(seed)s || ':deck:' || d)::uuid,"
        "        now() - interval '2 hours'"
        "   FROM generate_series(1, %(decks)s) AS d",
        {"seed": seed, "decks": decks},
    )


def _save_garbage(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE SCHEMA bench")
    for table in TOKEN_TABLES:
        conn.execute(
            sql.SQL("CREATE TABLE bench.{} AS SELECT * FROM {} WHERE {}").format(
                sql.Identifier(f"garbage_{table}"), sql.Identifier(table), sql.SQL(GARBAGE[table])
            )
        )


def vacuum_tokens(dsn: str, *, analyze: bool = True) -> None:
    with connect(dsn) as conn:
        for table in TOKEN_TABLES:
            conn.execute(
                sql.SQL("VACUUM {}{}").format(
                    sql.SQL("(ANALYZE) ") if analyze else sql.SQL(""), sql.Identifier(table)
                )
            )


def restore_garbage(dsn: str) -> None:
    """Put the pair's saved garbage rows back (after a timed cleanup deleted them), then vacuum:
    before, so they refill the space they left; after, so no run pays for another's dead rows
    or hint bits. Triggers are off for the insert, or they would clean up at once."""
    vacuum_tokens(dsn, analyze=False)
    with connect(dsn) as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for table in TOKEN_TABLES:
            conn.execute(
                sql.SQL("INSERT INTO {} SELECT * FROM bench.{}").format(
                    sql.Identifier(table), sql.Identifier(f"garbage_{table}")
                )
            )
    vacuum_tokens(dsn)


def build_pair(
    server: BenchServer,
    name: str,
    layout: Layout,
    seed: str,
    users: int,
    deck_shape: tuple[int, int] | None = None,
) -> Pair:
    """Load ``layout`` into ``bench_<name>_pgsweep`` at head and copy it to ``bench_<name>_plain``
    with the plain approach instead of pgsweep's. Token row g belongs to user 1 + g % users."""
    pgsweep_db = f"bench_{name}_pgsweep"
    plain_db = f"bench_{name}_plain"
    dsn = server.create_database(pgsweep_db)
    migrate.upgrade(dsn, "0005")
    with connect(dsn) as conn:
        # Superuser only: load without firing foreign-key checks row by row (the rows are
        # consistent by construction).
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO users (id, username, email, password_hash)"
            " SELECT md5(%(seed)s || ':user:' || u)::uuid, 'user' || u,"
            "        'user' || u || '@example.test', 'hash'"
            "   FROM generate_series(1, %(users)s) AS u",
            {"seed": seed, "users": users},
        )
        _load_tokens(conn, layout, users, seed)
        if deck_shape is not None:
            _load_decks(conn, seed, *deck_shape)
    migrate.upgrade(dsn, "head")
    with connect(dsn) as conn:
        _save_garbage(conn)
        for table in TOKEN_TABLES:
            # Every scenario vacuums both sides itself at the same points.
            conn.execute(
                sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = off)").format(
                    sql.Identifier(table)
                )
            )
    with connect(dsn) as conn:
        conn.execute("VACUUM (FREEZE, ANALYZE)")
    plain_dsn = server.create_database(plain_db, template=pgsweep_db)
    migrate.downgrade(plain_dsn, "0005")
    with connect(plain_dsn) as conn:
        conn.execute(PLAIN_SQL.read_text())
    with connect(plain_dsn) as conn:
        conn.execute("VACUUM (FREEZE, ANALYZE)")
    return Pair(name, layout, pgsweep_db, plain_db, users)
