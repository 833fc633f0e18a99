"""An operator's day, as a new user lives it: interrupting a cleanup, watching its progress,
reading status and metrics side by side (tests/test_operator_day.py)."""

from __future__ import annotations

import itertools
import os
import pty
import re
import signal
import subprocess
import sys
import time

import pytest

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
        [*PGSWEEP, "cleanup", "--batch-size", "50", "--yes", "--dsn", dsn],
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
    done = pgsweep_process("cleanup", "--yes", "--dsn", fresh_db, env=env())
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


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def attributes_table(dsn: str) -> None:
    """The quick start's table: epoch seconds in ttl_timestamp, some expired, some NULL."""
    with connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE attributes (id bigint PRIMARY KEY, ttl_timestamp bigint);"
            "CREATE INDEX ON attributes (ttl_timestamp);"
            "INSERT INTO attributes SELECT i, CASE WHEN i % 3 = 0 THEN NULL"
            " ELSE extract(epoch FROM now())::bigint + (i % 2) * 7200 - 3600 END"
            " FROM generate_series(1, 900) i;"
            "SELECT pgsweep.add_rule('attributes', 'ttl_timestamp');"
            "ANALYZE attributes"
        )


@pytest.mark.parametrize("width", [80, 120])
def test_status_on_a_terminal_wraps_between_words_and_keeps_identifiers_whole(
    fresh_db: str, width: int
) -> None:
    two_tables(fresh_db)
    attributes_table(fresh_db)
    code, shown = on_a_terminal(
        "status",
        "--dsn",
        fresh_db,
        environment=env(COLUMNS=str(width), LINES="50", TERM="xterm-256color"),
    )
    assert code == 0, shown
    # What the terminal shows: a carriage return starts the line again (a spinner's frames).
    lines = [
        ANSI.sub("", line.rstrip("\r").split("\r")[-1]).rstrip() for line in shown.split("\n")
    ]
    text = "\n".join(lines)
    assert "table / rule" in text  # still a table on a terminal
    for line in lines:
        assert len(line) <= width, (width, line)
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", text)
    for name in ("ttl_timestamp", "expires_at", "attributes", "sessions", "tokens"):
        assert name in words, (name, text)
    for piece in ("ttl_timesta", "timestamp", "expires_", "sessi"):
        assert piece not in words, (piece, text)  # no identifier split across lines
    # No sentence one word per line: never two lines in a row of a single word (one such line,
    # the last word of a sentence, is ordinary wrapping).
    single = [len(line.split()) == 1 and not line.strip().startswith("─") for line in lines]
    assert not any(a and b for a, b in itertools.pairwise(single)), text
    # Readable: a rule takes a few lines, not one a word.
    assert len(lines) < 40, text
    assert "of target 1h 0m" in text, text


def test_metrics_and_status_read_live_rows_alike_and_no_age_is_negative(fresh_db: str) -> None:
    two_tables(fresh_db)
    with connect(fresh_db) as conn:
        # Every row expires later: the oldest value of the column lies in the future.
        conn.execute(
            "CREATE TABLE invites (id bigint PRIMARY KEY, expires_at timestamptz NOT NULL);"
            "CREATE INDEX ON invites (expires_at);"
            "INSERT INTO invites SELECT i, now() + interval '3 days' FROM generate_series(1, 40) i;"
            "SELECT pgsweep.add_rule('invites', 'expires_at')"
        )
        row = conn.execute(
            "SELECT extract(epoch FROM oldest_row_age) FROM pgsweep.rule_status"
            " WHERE table_name = 'public.invites'"
        ).fetchone()
    assert row is not None
    assert row[0] < 0  # the view's own reading; the metric must not pass it on
    scraped = pgsweep_process("metrics", "--dsn", fresh_db, env=env())
    assert scraped.code == 0, scraped
    samples = {}
    for line in scraped.out.splitlines():
        found = re.match(r'^(\w+)\{rule="([^"]+)",table="([^"]+)"\} (\S+)$', line)
        if found:
            name, rule, table, value = found.groups()
            samples[(name, table.removeprefix("public."), rule)] = float(value)
    ages = [v for (name, _, _), v in samples.items() if name == "pgsweep_oldest_row_age_seconds"]
    assert len(ages) == 3
    assert min(ages) >= 0, ages
    assert samples[("pgsweep_oldest_row_age_seconds", "invites", "expires_at")] == 0
    shown = pgsweep_process("status", "--json", "--dsn", fresh_db, env=env())
    status_alive = {
        (t["table"], r["column"]): r["rows_alive"]
        for t in shown.json()["tables"]
        for r in t["rules"]
    }
    metric_alive = {
        (table, rule): int(v)
        for (name, table, rule), v in samples.items()
        if name == "pgsweep_rows_alive"
    }
    assert status_alive == metric_alive
    assert status_alive == {
        ("invites", "expires_at"): 40,
        ("sessions", "expires_at"): 500,
        ("tokens", "expires_at"): 100,
    }
    human = pgsweep_process("status", "--dsn", fresh_db, env=env())
    assert re.search(
        r"^  expires_at\s+200, oldest .*, 100 alive, 50 never expire$", human.out, re.M
    ), human.out
    by_table = {t["table"]: t for t in shown.json()["tables"]}
    assert by_table["invites"]["rules"][0]["oldest_row_age_s"] == 0


def test_ctrl_c_in_run_says_what_committed_and_that_starting_again_is_safe(
    fresh_db: str,
) -> None:
    two_tables(fresh_db, garbage=100)
    process = subprocess.Popen(
        [*PGSWEEP, "run", "--every", "1h", "--dsn", fresh_db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # a state to reach: the first run reported
        lines.append(line)
        if " run 1: " in line:
            break
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    said = "".join(lines) + rest
    assert "SIGINT received: every batch before it committed" in said, said
    assert "starting pgsweep run again is safe" in said
    assert said.splitlines()[-1].endswith("stopped after 1 run")
