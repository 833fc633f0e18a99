"""Tables of an app that is not Matcha Time, shaped like the systems in the shared seeds, for
tests of the engine on its own.

* ``"ActingWeb"."Attributes"``: ActingWeb's attribute store, a ``bigint`` ``ttl_timestamp`` of
  epoch seconds (NULL: the attribute never expires), in a schema and under a name that need
  quoting;
* ``public.sessions``: a web app's sessions as Prisma declares them, ``"expiresAt"
  TIMESTAMP(3)`` holding UTC wall-clock times.

:func:`seed` writes, relative to the server's ``now()``, rows long expired, one expired a second
ago, one expiring soon (in ``SOON_S`` seconds: near the cutoff, yet far enough that a slow,
loaded machine never sees it expire in the middle of a test), rows long live and (attributes
only) rows that never expire; each row's ``label`` says which, so a test can name the rows it
expects to survive.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg

ATTRIBUTES = '"ActingWeb"."Attributes"'
SESSIONS = "sessions"
TABLES = (ATTRIBUTES, SESSIONS)
ATTRIBUTES_COLUMN = "ttl_timestamp"
SESSIONS_COLUMN = "expiresAt"

# How far past the seed's now() the row labelled "soon" expires.
SOON_S = 60
# Rows seed() writes per label and table.
LONG_EXPIRED = {ATTRIBUTES: 10, SESSIONS: 7}
LONG_LIVE = {ATTRIBUTES: 5, SESSIONS: 3}
NEVER = {ATTRIBUTES: 4, SESSIONS: 0}
# What a cleanup right after seed() deletes and keeps, per table.
GARBAGE = {t: LONG_EXPIRED[t] + 1 for t in TABLES}  # + the one expired a second ago
KEPT = {t: LONG_LIVE[t] + NEVER[t] + 1 for t in TABLES}  # + the one expiring soon
KEPT_LABELS = {
    ATTRIBUTES: Counter({"live": LONG_LIVE[ATTRIBUTES], "never": NEVER[ATTRIBUTES], "soon": 1}),
    SESSIONS: Counter({"live": LONG_LIVE[SESSIONS], "soon": 1}),
}

Connection = psycopg.Connection[Any]


def create(conn: Connection, *, rules: bool = True) -> None:
    """Both tables, each with the index its rule needs, and (``rules``) their rules."""
    conn.execute('CREATE SCHEMA "ActingWeb"')
    conn.execute(
        f"CREATE TABLE {ATTRIBUTES} (id bigserial PRIMARY KEY, bucket text NOT NULL,"
        " label text NOT NULL, ttl_timestamp bigint)"
    )
    conn.execute(f'CREATE INDEX "Attributes_ttl_timestamp_idx" ON {ATTRIBUTES} (ttl_timestamp)')
    conn.execute(
        "CREATE TABLE sessions (id text PRIMARY KEY DEFAULT gen_random_uuid()::text,"
        ' label text NOT NULL, "userId" integer NOT NULL, "expiresAt" TIMESTAMP(3) NOT NULL)'
    )
    conn.execute('CREATE INDEX "sessions_expiresAt_idx" ON sessions ("expiresAt")')
    if rules:
        add_rules(conn)


def add_rules(conn: Connection) -> None:
    conn.execute("SELECT pgsweep.add_rule(%s, %s)", (ATTRIBUTES, ATTRIBUTES_COLUMN))
    conn.execute("SELECT pgsweep.add_rule(%s, %s)", (SESSIONS, SESSIONS_COLUMN))


def seed(conn: Connection) -> None:
    """The rows described above, every time relative to this transaction's ``now()``."""
    seed_attributes(conn)
    seed_sessions(conn)


def seed_attributes(conn: Connection) -> None:
    # Epoch seconds: the one expired a second ago is a whole second before now (floor - 1),
    # the one expiring soon SOON_S whole seconds after it (ceil + SOON_S).
    conn.execute(
        f"INSERT INTO {ATTRIBUTES} (bucket, label, ttl_timestamp)"
        " SELECT 'oauth', l.label, l.ttl FROM (VALUES"
        "  ('expired', floor(extract(epoch FROM now()))::bigint - 86400),"
        "  ('live', ceil(extract(epoch FROM now()))::bigint + 86400),"
        "  ('never', NULL)) AS l (label, ttl),"
        " LATERAL generate_series(1, CASE l.label WHEN 'expired' THEN %s"
        "  WHEN 'live' THEN %s ELSE %s END)",
        (LONG_EXPIRED[ATTRIBUTES], LONG_LIVE[ATTRIBUTES], NEVER[ATTRIBUTES]),
    )
    conn.execute(
        f"INSERT INTO {ATTRIBUTES} (bucket, label, ttl_timestamp) VALUES"
        " ('spa', '1s_ago', floor(extract(epoch FROM now()))::bigint - 1),"
        f" ('spa', 'soon', ceil(extract(epoch FROM now()))::bigint + {SOON_S})"
    )


def seed_sessions(conn: Connection) -> None:
    utc = "(now() AT TIME ZONE 'UTC')"
    conn.execute(
        'INSERT INTO sessions (label, "userId", "expiresAt")'
        " SELECT l.label, g, l.at FROM (VALUES"
        f"  ('expired', {utc} - interval '1 hour', %s),"
        f"  ('live', {utc} + interval '1 hour', %s),"
        f"  ('1s_ago', {utc} - interval '1 second', 1),"
        f"  ('soon', {utc} + interval '{SOON_S} seconds', 1)) AS l (label, at, n),"
        " LATERAL generate_series(1, l.n) g",
        (LONG_EXPIRED[SESSIONS], LONG_LIVE[SESSIONS]),
    )


def labels(conn: Connection, table: str) -> Counter[str]:
    """How many rows of ``table`` carry each label."""
    return Counter(
        {
            str(label): int(n)
            for label, n in conn.execute(
                f"SELECT label, count(*) FROM {table} GROUP BY label"
            ).fetchall()
        }
    )
