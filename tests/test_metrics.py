"""``pgsweep metrics`` and ``pgsweep serve``: the exposition parses; a real Prometheus server
scraping ``pgsweep serve`` is in tests/test_scenario_falling_behind.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli import pgsweep


@contextmanager
def serving(dsn: str, port: int = 0) -> Iterator[str]:
    """``pgsweep serve --port PORT`` as its own process; yields host:port once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pgsweep", "serve", "--dsn", dsn, "--port", str(port), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        start = json.loads(process.stdout.readline() or "{}")
        assert start.get("event") == "start", process.stderr and process.stderr.read()
        yield f"127.0.0.1:{start['port']}"
    finally:
        process.terminate()
        out, _err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert json.loads(out.splitlines()[-1])["event"] == "stopped"


def test_without_the_engine_the_exposition_says_the_database_is_unreadable(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = pgsweep(capsys, "metrics", "--dsn", fresh_db)
    assert shown.code == 0
    families = {f.name: f for f in text_string_to_metric_families(shown.out)}
    assert [s.value for s in families["pgsweep_up"].samples] == [0]
    as_json = pgsweep(capsys, "metrics", "--dsn", fresh_db, "--json").json()
    assert as_json["ok"] is False
    assert "pgsweep" in as_json["error"]


def test_serve_on_a_port_in_use_is_a_usage_error(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        shown = pgsweep(capsys, "serve", "--dsn", fresh_db, "--port", port)
    assert shown.code == 2
    assert f"cannot listen on 127.0.0.1 port {port}" in shown.err
