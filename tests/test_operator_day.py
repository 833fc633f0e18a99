"""An operator's day, as a new user lives it: interrupting a cleanup, watching its progress,
reading status and metrics side by side (tests/test_operator_day.py)."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time

from pgsweep import engine
from tests.cli import pgsweep_process
from tests.pg import connect

PGSWEEP = [sys.executable, "-m", "pgsweep"]


def env(**extra: str) -> dict[str, str]:
    kept = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "PGAPPNAME", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")
        and not k.startswith("PGSWEEP_")
    }
    return {**kept, **extra}


def two_tables(dsn: str, garbage: int = 3000) -> None:
    """sessions: ``garbage`` expired rows and 500 live; tokens: 200 expired, 100 live, 50 NULL."""
    engine.install(dsn)
    with connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE sessions (id bigint PRIMARY KEY, expires_at timestamptz NOT NULL);"
            "CREATE INDEX ON sessions (expires_at);"
            "CREATE TABLE tokens (id bigint PRIMARY KEY, expires_at timestamptz);"
            "CREATE INDEX ON tokens (expires_at);"
            "SELECT pgsweep.add_rule('sessions', 'expires_at');"
            "SELECT pgsweep.add_rule('tokens', 'expires_at');"
        )
        conn.execute(
            "INSERT INTO sessions SELECT i, now() - interval '1 day' - i * interval '1 second'"
            " FROM generate_series(1, %s::int) i",
            (garbage,),
        )
        conn.execute(
            "INSERT INTO sessions SELECT i, now() + interval '1 day'"
            " FROM generate_series(%s::int, %s::int) i",
            (garbage + 1, garbage + 500),
        )
        conn.execute(
            "INSERT INTO tokens SELECT i, CASE WHEN i <= 200 THEN now() - interval '1 hour'"
            " WHEN i <= 300 THEN now() + interval '2 days' END FROM generate_series(1, 350) i"
        )
        conn.execute("ANALYZE sessions; ANALYZE tokens")


def deleted_so_far(dsn: str) -> int:
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(rows_deleted), 0) FROM pgsweep.run_rule"
            " WHERE table_name = 'public.sessions'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def interrupted_cleanup(dsn: str) -> subprocess.CompletedProcess[str]:
    """A cleanup slowed to 100 rows a second, Ctrl-C once it has committed some batches."""
    slow = "-c pgsweep.max_rows_per_second=100 -c pgsweep.batch_min=50 -c pgsweep.batch_max=50"
    process = subprocess.Popen(
        [*PGSWEEP, "cleanup", "--batch-size", "50", "--dsn", dsn],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(PGOPTIONS=slow),
    )
    deadline = time.monotonic() + 60
    while deleted_so_far(dsn) < 100:  # a state to reach: two batches committed
        assert time.monotonic() < deadline, "the cleanup committed nothing"
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_after_ctrl_c_a_later_successful_cleanup_clears_every_rules_last_error(
    fresh_db: str,
) -> None:
    two_tables(fresh_db)
    stopped = interrupted_cleanup(fresh_db)
    assert stopped.returncode == 130, stopped
    # What was committed, and that running again is safe.
    committed = deleted_so_far(fresh_db)
    assert f"{committed:,} rows" in stopped.stderr, stopped.stderr
    assert "batches" in stopped.stderr
    assert "safe" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    done = pgsweep_process("cleanup", "--dsn", fresh_db, env=env())
    assert done.code == 0, done
    # The next run may find the interrupted rule with nothing left (the app deleted it).
    with connect(fresh_db) as conn:
        conn.execute("INSERT INTO sessions VALUES (-1, now() - interval '1 hour')")
        conn.execute("DELETE FROM sessions WHERE id = -1")
    again = pgsweep_process("cleanup", "--dsn", fresh_db, env=env())
    assert again.code == 0, again
    shown = pgsweep_process("status", "--json", "--dsn", fresh_db, env=env())
    assert shown.code == 0, shown
    rules = [r for t in shown.json()["tables"] for r in t["rules"]]
    assert len(rules) == 2
    for rule in rules:
        assert rule["last_error"] is None, rule
        assert rule["last_run_status"] == "succeeded", rule
    text = pgsweep_process("status", "--dsn", fresh_db, env=env())
    assert "interrupted" not in text.out, text.out


def on_a_terminal(*argv: str, environment: dict[str, str]) -> tuple[int, str]:
    """Run pgsweep with stdout and stderr on one pseudo-terminal; its status and what it showed
    (every frame a live display drew, the ones it erased too)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*PGSWEEP, *argv], stdout=follower, stderr=follower, env=environment, text=False
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's last writer has gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=120), b"".join(chunks).decode()


def test_the_cleanups_progress_shows_the_counted_total_the_table_and_a_rate(
    fresh_db: str,
) -> None:
    two_tables(fresh_db)
    slow = "-c pgsweep.max_rows_per_second=2000 -c pgsweep.batch_min=100 -c pgsweep.batch_max=100"
    code, shown = on_a_terminal(
        "cleanup",
        "--yes",
        "--batch-size",
        "100",
        "--dsn",
        fresh_db,
        environment=env(COLUMNS="120", LINES="40", TERM="xterm-256color", PGOPTIONS=slow),
    )
    assert code == 0, shown
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    assert "/3,200 rows" in frames, frames  # the total the count found, never "?"
    assert "/? rows" not in frames
    assert "deleting from sessions" in frames
    assert re.search(r"[\d,]+ rows/s", frames), frames
    assert "ETA" in frames
    # The summary prints every number one way.
    assert re.search(r"sessions\s+3,000", frames), frames
    assert "3000" not in frames.replace("3,000", "")


def test_plain_output_prints_thousands_with_separators(fresh_db: str) -> None:
    two_tables(fresh_db, garbage=12000)
    done = pgsweep_process("cleanup", "--dry-run", "--dsn", fresh_db, env=env())
    assert done.code == 0, done
    assert re.search(r"^sessions\s+would delete\s+12,000\s", done.out, re.M), done.out
    assert "12000" not in done.out
    shown = pgsweep_process("status", "--dsn", fresh_db, env=env())
    assert "12000" not in shown.out, shown.out
    raw = pgsweep_process("cleanup", "--dry-run", "--json", "--dsn", fresh_db, env=env())
    assert raw.json()["would_delete"] == 12200
