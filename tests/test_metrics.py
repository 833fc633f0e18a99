"""``pgsweep metrics`` and ``pgsweep serve``: the exposition parses, and a real Prometheus
server scraping ``pgsweep serve`` stores the series."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli import pgsweep
from tests.prometheus_server import free_port, prometheus


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


def test_a_prometheus_server_scraping_pgsweep_serve_has_the_series(fresh_db: str) -> None:
    # Prometheus first: it takes a few seconds to scrape a new target, pgsweep to start.
    port = free_port()
    with prometheus([f"127.0.0.1:{port}"]) as server, serving(fresh_db, port) as target:
        up = server.wait_for('up{job="pgsweep"} == 1')
        assert up[0]["metric"]["instance"] == target
        assert server.wait_for("pgsweep_up")[0]["value"][1] == "0"
