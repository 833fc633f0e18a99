"""``pgsweep run``: sweeps on its interval, logs each run's counts, rides out a server restart,
and stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pgsweep import migrate
from pgsweep_testing.localpg import LocalCluster
from tests.pg import connect

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app_db() -> Iterator[tuple[LocalCluster, str]]:
    # Its own server: the test restarts it.
    with LocalCluster(preload_cron=False) as cluster:
        with connect(cluster.dsn()) as admin:
            admin.execute("CREATE DATABASE matcha")
        dsn = cluster.dsn("matcha")
        migrate.upgrade(dsn, "head")
        with connect(dsn) as conn:
            conn.execute(
                "INSERT INTO users (username, email, password_hash) VALUES ('a', 'a@x', 'h')"
            )
        yield cluster, dsn


class Runner:
    """``python -m pgsweep run --json`` in the background, its events on a queue."""

    def __init__(self, dsn: str, every: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pgsweep", "run", "--every", every, "--json", "--dsn", dsn],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))

    def wait_for(self, wanted: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(event)
            if wanted(event):
                return event
        raise AssertionError(f"no such event within {timeout} s; saw {self.seen}")

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)


def add_expired_refresh_tokens(dsn: str, n: int, tag: str) -> None:
    with connect(dsn) as conn:
        conn.execute("SET session_replication_role = replica")  # not the insert trigger: run
        conn.execute(
            "INSERT INTO refresh_tokens (user_id, token_hash, expires_at)"
            " SELECT (SELECT id FROM users LIMIT 1), %s || g, now() - interval '1 minute'"
            " FROM generate_series(1, %s) g",
            (tag, n),
        )


def swept(n: int) -> Any:
    return lambda e: e["event"] == "run" and e["deleted"].get("refresh_tokens") == n


def test_run_logs_counts_survives_a_restart_and_stops_on_sigterm(
    app_db: tuple[LocalCluster, str],
) -> None:
    cluster, dsn = app_db
    runner = Runner(dsn, "1s")
    try:
        runner.wait_for(lambda e: e["event"] == "run")
        add_expired_refresh_tokens(dsn, 5, "before")
        first = runner.wait_for(swept(5))
        assert first["total"] == 5
        assert set(first["deleted"]) == {
            "password_reset_tokens",
            "email_verification_tokens",
            "refresh_tokens",
        }

        cluster.restart()  # drops the runner's connection
        outage = runner.wait_for(lambda e: e["event"] == "outage")
        assert outage["retry_in_s"] >= 1
        add_expired_refresh_tokens(dsn, 3, "after")
        runner.wait_for(swept(3))
    finally:
        code = runner.stop(signal.SIGTERM)
    assert code == 0, runner.process.stderr.read() if runner.process.stderr else ""
    runner.wait_for(lambda e: e["event"] == "stopped", timeout=5)
    assert any(e["event"] == "signal" and e["signal"] == "SIGTERM" for e in runner.seen)


def test_sigint_stops_a_waiting_runner_at_once(app_db: tuple[LocalCluster, str]) -> None:
    _, dsn = app_db
    runner = Runner(dsn, "1h")
    runner.wait_for(lambda e: e["event"] == "run")
    started = time.monotonic()
    assert runner.stop(signal.SIGINT) == 0
    assert time.monotonic() - started < 5
    stopped = runner.wait_for(lambda e: e["event"] == "stopped", timeout=5)
    assert stopped["runs"] == 1
