"""The app's token flows as load, each writer keeping a ledger of the tokens it knows are live.

A writer owns its users (no other writer touches them), so it knows exactly which of their
tokens are live: issued by it, not yet invalidated, redeemed or rotated, and not yet expired.
Whenever it invalidates, redeems or rotates a token its ledger says is live and the database
says the token is not there, that is a violation: something deleted a live token.
:func:`missing_live_tokens` checks the whole ledger at the end.

Each writer runs in its own thread on its own connection; psycopg releases the GIL while it
waits on the server, so eight writers keep the server busy on two cores.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from tests.pg import connect

WITH_USED_AT = ("password_reset_tokens", "email_verification_tokens")
# Most tokens are short-lived, so garbage appears continuously and the cleanup deletes rows at
# the very boundary of "expired"; some live long, so the ledger always has tokens to check.
SHORT_LIFETIMES_S = (1, 2, 3)
LONG_LIFETIME_S = 3600
# A token is only asserted present while it has this much life left, so the writer's and the
# server's view of "now" can never disagree about it.
CLOCK_MARGIN = timedelta(milliseconds=200)


@dataclass(frozen=True)
class Token:
    table: str
    user: str
    expires_at: datetime


@dataclass
class WriterReport:
    ops: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    lost: set[str] = field(default_factory=set)  # hashes of the violations' tokens
    notices: list[str] = field(default_factory=list)
    max_latency_s: float = 0.0
    issued: int = 0


class Writer(threading.Thread):
    """Runs the app's flows for its own users until ``stop`` is set."""

    def __init__(
        self,
        dsn: str,
        name: str,
        users: list[str],
        stop: threading.Event,
        *,
        statement_timeout_ms: int = 30_000,
        seed: int = 0,
        long_share: float = 0.3,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.dsn = dsn
        self.users = users
        self.stop = stop
        self.statement_timeout_ms = statement_timeout_ms
        self.random = random.Random(seed)  # noqa: S311 - load shape, not secrets
        self.long_share = long_share
        self.live: dict[str, Token] = {}  # token_hash -> token, the ledger
        self.report = WriterReport()
        self._serial = 0

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            with connect(self.dsn) as conn:
                conn.add_notice_handler(self._notice)
                conn.execute(f"SET statement_timeout = {int(self.statement_timeout_ms)}")
                conn.execute("SELECT set_config('application_name', %s, false)", (self.name,))
                while not self.stop.is_set():
                    self._one_op(conn)
        except Exception as exc:  # a broken connection ends the writer; it is an error
            self.report.errors.append(f"{type(exc).__name__}: {exc}")

    def _one_op(self, conn: psycopg.Connection[Any]) -> None:
        flow = self.random.choices(("issue", "redeem", "login", "refresh"), weights=(4, 3, 2, 3))[0]
        started = time.monotonic()
        try:
            getattr(self, f"_{flow}")(conn)
            self.report.ops[flow] += 1
        except psycopg.Error as exc:
            self.report.errors.append(f"{flow}: {type(exc).__name__}: {exc}")
            if conn.broken:
                raise
        self.report.max_latency_s = max(self.report.max_latency_s, time.monotonic() - started)

    def _notice(self, diagnostic: psycopg.errors.Diagnostic) -> None:
        if diagnostic.severity_nonlocalized in ("WARNING", "ERROR"):
            self.report.notices.append(str(diagnostic.message_primary))

    def _hash(self) -> str:
        self._serial += 1
        return f"{self.name}-{self._serial}"

    def _lifetime(self) -> str:
        if self.random.random() < self.long_share:
            return f"{LONG_LIFETIME_S} seconds"
        return f"{self.random.choice(SHORT_LIFETIMES_S)} seconds"

    def _pick_live(self, tables: tuple[str, ...]) -> tuple[str, Token] | None:
        candidates = [h for h, t in self.live.items() if t.table in tables]
        if not candidates:
            return None
        chosen = self.random.choice(candidates)
        return chosen, self.live[chosen]

    # --- the app's flows ----------------------------------------------------------------------

    def _issue(self, conn: psycopg.Connection[Any]) -> None:
        """Password reset or verification: invalidate the user's outstanding tokens, insert."""
        table = self.random.choice(WITH_USED_AT)
        user = self.random.choice(self.users)
        token_hash = self._hash()
        with conn.transaction():
            now = conn.execute("SELECT now()").fetchone()
            invalidated = {
                str(r[0])
                for r in conn.execute(
                    f"UPDATE {table} SET used_at = now() WHERE user_id = %s AND used_at IS NULL"
                    " RETURNING token_hash",
                    (user,),
                )
            }
            row = conn.execute(
                f"INSERT INTO {table} (user_id, token_hash, expires_at)"
                " VALUES (%s, %s, now() + %s::interval) RETURNING expires_at",
                (user, token_hash, self._lifetime()),
            ).fetchone()
        assert row is not None
        assert now is not None
        for old in [h for h, t in self.live.items() if t.table == table and t.user == user]:
            # The invalidate must have found every token the ledger holds as live.
            if old not in invalidated and self.live[old].expires_at > now[0] + CLOCK_MARGIN:
                self.report.violations.append(f"issue: live {table} {old} is gone")
                self.report.lost.add(old)
            del self.live[old]
        self.live[token_hash] = Token(table, user, row[0])
        self.report.issued += 1

    def _redeem(self, conn: psycopg.Connection[Any]) -> None:
        picked = self._pick_live(WITH_USED_AT)
        if picked is None:
            return self._issue(conn)
        token_hash, token = picked
        with conn.transaction():
            now = conn.execute("SELECT now()").fetchone()
            done = conn.execute(
                f"UPDATE {token.table} SET used_at = now()"
                " WHERE token_hash = %s AND used_at IS NULL AND expires_at > now()"
                " RETURNING user_id",
                (token_hash,),
            ).fetchone()
        assert now is not None
        del self.live[token_hash]
        if done is None and token.expires_at > now[0] + CLOCK_MARGIN:
            self.report.violations.append(f"redeem: live {token.table} {token_hash} is gone")
            self.report.lost.add(token_hash)
        return None

    def _login(self, conn: psycopg.Connection[Any]) -> None:
        """A new refresh token."""
        user = self.random.choice(self.users)
        token_hash = self._hash()
        row = conn.execute(
            "INSERT INTO refresh_tokens (user_id, token_hash, expires_at, device_info)"
            " VALUES (%s, %s, now() + %s::interval, 'stress') RETURNING expires_at",
            (user, token_hash, self._lifetime()),
        ).fetchone()
        assert row is not None
        self.live[token_hash] = Token("refresh_tokens", user, row[0])
        self.report.issued += 1

    def _refresh(self, conn: psycopg.Connection[Any]) -> None:
        """Rotation: the old refresh token is deleted by the app and a new one issued."""
        picked = self._pick_live(("refresh_tokens",))
        if picked is None:
            return self._login(conn)
        token_hash, token = picked
        new_hash = self._hash()
        with conn.transaction():
            now = conn.execute("SELECT now()").fetchone()
            old = conn.execute(
                "DELETE FROM refresh_tokens WHERE token_hash = %s AND expires_at > now()"
                " RETURNING user_id",
                (token_hash,),
            ).fetchone()
            new = None
            if old is not None:
                new = conn.execute(
                    "INSERT INTO refresh_tokens (user_id, token_hash, expires_at, device_info)"
                    " VALUES (%s, %s, now() + %s::interval, 'stress') RETURNING expires_at",
                    (old[0], new_hash, self._lifetime()),
                ).fetchone()
        assert now is not None
        del self.live[token_hash]
        if new is not None:
            self.live[new_hash] = Token("refresh_tokens", token.user, new[0])
            self.report.issued += 1
        elif token.expires_at > now[0] + CLOCK_MARGIN:
            self.report.violations.append(f"refresh: live refresh token {token_hash} is gone")
            self.report.lost.add(token_hash)
        return None


def add_users(dsn: str, prefix: str, count: int) -> list[str]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "INSERT INTO users (username, email, password_hash)"
            " SELECT %(p)s || g, %(p)s || g || '@example.test', 'h'"
            " FROM generate_series(1, %(n)s) g"
            " RETURNING id",
            {"p": prefix, "n": count},
        ).fetchall()
    return [str(r[0]) for r in rows]


def start_writers(
    dsn: str, count: int, users_each: int, stop: threading.Event, **options: Any
) -> list[Writer]:
    writers = [
        Writer(dsn, f"writer{i}", add_users(dsn, f"w{i}_", users_each), stop, seed=i, **options)
        for i in range(count)
    ]
    for writer in writers:
        writer.start()
    return writers


def missing_live_tokens(dsn: str, writers: list[Writer]) -> list[str]:
    """Every token a stopped writer's ledger holds as live (with margin) must exist, unused.
    Returns the hashes of those that do not."""
    missing = []
    with connect(dsn, autocommit=False) as conn:
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        now = row[0]
        for writer in writers:
            for token_hash, token in writer.live.items():
                if token.expires_at <= now + CLOCK_MARGIN:
                    continue
                used = "used_at IS NULL" if token.table in WITH_USED_AT else "true"
                found = conn.execute(
                    f"SELECT {used} FROM {token.table} WHERE token_hash = %s", (token_hash,)
                ).fetchone()
                if found is None or not found[0]:
                    missing.append(token_hash)
        conn.rollback()
    return missing


def live_in_ledgers(writers: list[Writer], at: datetime) -> int:
    return sum(1 for w in writers for t in w.live.values() if t.expires_at > at + CLOCK_MARGIN)
