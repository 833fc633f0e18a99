"""The observability scenario (docs/observability.md, "A cleanup that falls behind"): writers make
garbage faster than a throttled cleanup removes it; the expiry lag grows past its target;
``pgsweep health`` and ``pgsweep verify`` turn red; the lag alert fires in ``promtool test
rules`` on the recorded lag; a real Prometheus server scraping ``pgsweep serve`` has the series;
then the writers slow down, the cleanup catches up, and everything turns green; and the run
history holds every run with its exact counts.

Real time, small scale (seconds): a writer thread inserts rows that expire as they are written;
the cleanup is ``CALL pgsweep.sweep('events', 10, '50 ms')`` in a loop (10 rows a batch, a
pause after each), which removes at most ~200 rows a second; the writer makes ~400 a second,
then ~20. Nothing is asserted about time itself: the test waits for each state (with a generous
limit) and checks what it recorded. ``PGSWEEP_SCENARIO_RECORD=file.json`` keeps the recording
(scripts/plot_scenario.py draws docs/scenario-lag.svg from it).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pgsweep import engine, health, verify
from pgsweep.cli import main
from tests.pg import connect
from tests.prometheus_server import free_port, prometheus
from tests.test_alert_rules import PROMETHEUS_DIR
from tests.test_metrics import serving

RECORD = os.environ.get("PGSWEEP_SCENARIO_RECORD")
LAG_TARGET_S = 1.0
FAST_RATE, SLOW_RATE = 400, 20  # rows the writer inserts a second
WRITE_EVERY_S = 0.05
SWEEP = "CALL pgsweep.sweep('events', 10, '50 milliseconds')"
SAMPLE_EVERY_S = 0.1
WAIT_LIMIT_S = 60


@dataclass
class Sample:
    t: float  # seconds since the writers started
    phase: str  # "behind" (fast writers) or "catching up" (slow writers)
    lag_s: float
    garbage: int
    lag_ok: bool


@dataclass
class Recording:
    samples: list[Sample]
    health: list[tuple[float, str]]  # (t, verdict)
    runs: list[int]  # rows each CALL deleted, in order


class Writer(threading.Thread):
    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.rate = FAST_RATE
        self.written = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        # By the clock, not by the loop: ``rate`` rows a second however slow an insert is.
        try:
            with connect(self.dsn) as conn:
                due, last = 0.0, time.monotonic()
                while not self.stop.is_set():
                    now = time.monotonic()
                    due += self.rate * (now - last)
                    last = now
                    if int(due) > 0:
                        conn.execute(
                            "INSERT INTO events (expires_at)"
                            " SELECT clock_timestamp() FROM generate_series(1, %s)",
                            (int(due),),
                        )
                        self.written += int(due)
                        due -= int(due)
                    self.stop.wait(WRITE_EVERY_S)
        except BaseException as exc:  # reported by the test
            self.error = exc


class Cleanup(threading.Thread):
    """Runs the throttled sweep again and again; after ``stop``, one last run."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.deleted: list[int] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connect(self.dsn) as conn:
                # Throttled: fixed batches of 10 and pauses of 50 ms (pacing would grow the
                # batch until the sweep keeps up, which is not the falling behind to show).
                conn.execute("SET pgsweep.pacing = off")
                while True:
                    last = self.stop.is_set()
                    row = conn.execute(SWEEP).fetchone()
                    assert row is not None
                    self.deleted.append(int(row[0]))
                    if last:
                        return
                    self.stop.wait(0.1)
        except BaseException as exc:
            self.error = exc


def wait_until(
    what: str, done: Callable[[], bool], threads: tuple[Writer, Cleanup]
) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not done():
        for thread in threads:
            assert thread.error is None, repr(thread.error)
        assert time.monotonic() < deadline, f"never reached: {what}"


def test_a_cleanup_that_falls_behind_turns_red_then_green_with_every_run_recorded(
    fresh_db: str, tmp_path: Path
) -> None:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(
            "CREATE TABLE events (id bigserial PRIMARY KEY, expires_at timestamptz NOT NULL);"
            "CREATE INDEX events_expires_at_idx ON events (expires_at)"
        )
        conn.execute("SELECT pgsweep.add_rule('events', 'expires_at')")
        conn.execute(
            "SELECT pgsweep.set_lag_target('events', 'expires_at', make_interval(secs => %s))",
            (LAG_TARGET_S,),
        )
    port = free_port()
    with prometheus([f"127.0.0.1:{port}"]) as server, serving(fresh_db, port):
        server.wait_for('pgsweep_up{job="pgsweep"} == 1')  # scraped before anything happens
        recording, verdicts = run_scenario(fresh_db)

        # Prometheus saw the lag pass its target, and counts every deleted row.
        total = sum(recording.runs)
        server.wait_for(f'pgsweep_rows_deleted_total{{table="public.events"}} == {total}')
        over = server.wait_for(
            "max_over_time(pgsweep_expiry_lag_seconds[5m])"
            " > on (table, rule) pgsweep_expiry_lag_target_seconds"
        )
        assert over[0]["metric"]["rule"] == "expires_at"
        assert server.wait_for("pgsweep_garbage_rows == 0")
        assert server.wait_for(f"pgsweep_runs_total == {len(recording.runs)}")
        if RECORD:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as answer:
                verdicts["scrape"] = answer.read().decode()
            verdicts["health_end_text"] = command_output("health", "--dsn", fresh_db)

    if RECORD:
        with connect(fresh_db) as conn:
            history = conn.execute(
                "SELECT run_id, invoked_by, status, rows_deleted, batches, pauses,"
                " round(extract(epoch FROM duration)::numeric, 3)::float8 AS seconds"
                " FROM pgsweep.runs ORDER BY run_id"
            ).fetchall()
        Path(RECORD).write_text(
            json.dumps(
                {"lag_target_s": LAG_TARGET_S, "samples": [asdict(s) for s in recording.samples],
                 "health": recording.health, "runs": recording.runs,
                 "run_history": [list(r) for r in history],
                 "health_behind": verdicts["health_behind_text"],
                 "health_end": verdicts["health_end_text"], "scrape": verdicts["scrape"]},
                indent=1,
            )
        )  # fmt: skip

    # health and verify: red while behind, green at the end.
    assert verdicts["health_behind"].status == health.CRITICAL
    rules = next(c for c in verdicts["health_behind"].checks if c.name == "rules")
    assert "over its target" in rules.summary
    assert verdicts["verify_behind"] is False
    assert verdicts["health_end"].status == health.OK
    assert verdicts["verify_end"] is True
    assert recording.samples[-1].garbage == 0

    # The lag alert fires on the lag as recorded, and is quiet once it is back under target.
    assert_the_lag_alert_fires_on(recording.samples, tmp_path)

    # The run history: every CALL is one run with its exact count; the counter adds them up.
    with connect(fresh_db) as conn:
        runs = conn.execute(
            "SELECT r.rows_deleted, r.status, r.invoked_by, rr.rows_deleted, rr.batches"
            " FROM pgsweep.run r JOIN pgsweep.run_rule rr USING (run_id)"
            " WHERE rr.table_name = 'public.events' ORDER BY r.run_id"
        ).fetchall()
        counter = conn.execute(
            "SELECT rows_deleted_total, runs_total, failures_total FROM pgsweep.rule_counters"
            " WHERE table_name = 'public.events'"
        ).fetchone()
        left = conn.execute("SELECT count(*) FROM events").fetchone()
    assert [r[0] for r in runs] == recording.runs
    assert [r[3] for r in runs] == recording.runs
    assert {(r[1], r[2]) for r in runs} == {("succeeded", "procedure")}
    assert all(batches >= 1 for *_, batches in runs)
    assert counter == (sum(recording.runs), len(recording.runs), 0)
    assert left == (0,)
    assert sum(recording.runs) == verdicts["written"]


def run_scenario(dsn: str) -> tuple[Recording, dict[str, Any]]:
    writer, cleanup = Writer(dsn), Cleanup(dsn)
    samples: list[Sample] = []
    verdicts: dict[str, Any] = {}
    healths: list[tuple[float, str]] = []
    started = time.monotonic()
    monitor = connect(dsn)

    def sample(phase: str) -> Sample:
        row = monitor.execute(
            "SELECT extract(epoch FROM expiry_lag), garbage, lag_ok FROM pgsweep.rule_status"
        ).fetchone()
        assert row is not None
        s = Sample(round(time.monotonic() - started, 3), phase, round(float(row[0]), 3),
                   int(row[1]), bool(row[2]))  # fmt: skip
        samples.append(s)
        return s

    def check_health() -> health.Health:
        report = health.health(dsn)
        healths.append((round(time.monotonic() - started, 3), report.status))
        return report

    def lag_check_passes() -> bool:
        report = verify.verify(dsn, check_cron=False)
        return all(c.ok for c in report.checks if c.name.startswith("lag "))

    writer.start()
    cleanup.start()
    try:
        # Behind: until the lag is over its target and health says CRITICAL (health is asked
        # every half second all along, for the record).
        last_health = [0.0]

        def now_and_then() -> health.Health | None:
            if time.monotonic() - last_health[0] < 0.5:
                return None
            last_health[0] = time.monotonic()
            return check_health()

        def behind() -> bool:
            time.sleep(SAMPLE_EVERY_S)
            s = sample("behind")
            report = now_and_then()
            if not s.lag_ok and report is not None and report.status == health.CRITICAL:
                verdicts["health_behind"] = report
                if RECORD:
                    verdicts["health_behind_text"] = command_output("health", "--dsn", dsn)
                return True
            return False

        wait_until("the lag over its target, health CRITICAL", behind, (writer, cleanup))
        verdicts["verify_behind"] = lag_check_passes()

        # Catching up: slow writers, until the lag is back under target and health is OK.
        writer.rate = SLOW_RATE

        def caught_up() -> bool:
            time.sleep(SAMPLE_EVERY_S)
            s = sample("catching up")
            if s.lag_ok and s.garbage < 50:
                return check_health().status == health.OK
            now_and_then()
            return False

        wait_until("the lag back under target, health OK", caught_up, (writer, cleanup))
        writer.stop.set()
        writer.join(10)
        cleanup.stop.set()
        cleanup.join(WAIT_LIMIT_S)
        assert writer.error is None, writer.error
        assert cleanup.error is None, cleanup.error
        sample("caught up")
        verdicts["health_end"] = check_health()
        verdicts["verify_end"] = lag_check_passes()
        verdicts["written"] = writer.written
    finally:
        writer.stop.set()
        cleanup.stop.set()
        monitor.close()
    return Recording(samples, healths, cleanup.deleted), verdicts


def command_output(*argv: str) -> str:
    """What ``pgsweep ARGV`` prints (in this process, for the recording)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(list(argv))
    return printed.getvalue()


STEP_S = 0.1


def resample(samples: list[Sample]) -> list[Sample]:
    """The recording at even STEP_S steps: at each, the last sample taken at or before it."""
    steps, i = [], 0
    for k in range(int(samples[-1].t / STEP_S) + 1):
        while i + 1 < len(samples) and samples[i + 1].t <= k * STEP_S:
            i += 1
        steps.append(samples[i])
    return steps


def humanize_duration(v: float) -> str:
    """Prometheus' humanizeDuration for 0 < v < 60 (the lags this scenario records)."""
    return f"{v:.4g}s" if v >= 1 else f"{v * 1000:.4g}ms"


def assert_the_lag_alert_fires_on(recorded: list[Sample], tmp: Path) -> None:
    """Feed the recorded lag to ``promtool test rules``, one value every STEP_S seconds of the
    scenario (the last sample at or before it) standing for one minute: the alert must fire 10
    values into the first stretch over target (its ``for: 10m``) and be quiet at the end."""
    samples = resample(recorded)
    over = [s.lag_s > LAG_TARGET_S for s in samples]
    first = over.index(True)
    stretch = next((i for i in range(first, len(over)) if not over[i]), len(over)) - first
    assert stretch > 10, f"only {stretch} steps over target: the alert could not fire"
    fires_at = first + 10
    lag = " ".join(f"{s.lag_s:g}" for s in samples)
    test = {
        "rule_files": [str(PROMETHEUS_DIR / "pgsweep-alerts.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'pgsweep_expiry_lag_seconds{table="public.events",'
                               ' rule="expires_at"}', "values": lag},
                    {"series": 'pgsweep_expiry_lag_target_seconds{table="public.events",'
                               ' rule="expires_at"}',
                     "values": f"{LAG_TARGET_S:g}x{len(samples) - 1}"},
                ],
                "alert_rule_test": [
                    {"eval_time": f"{first + 9}m", "alertname": "PgsweepExpiryLagOverTarget",
                     "exp_alerts": []},
                    {"eval_time": f"{fires_at}m", "alertname": "PgsweepExpiryLagOverTarget",
                     "exp_alerts": [{
                         "exp_labels": {"severity": "warning", "table": "public.events",
                                        "rule": "expires_at"},
                         "exp_annotations": {
                             "summary": "public.events.expires_at is falling behind",
                             "description": (
                                 "Expired rows have waited"
                                 f" {humanize_duration(samples[fires_at].lag_s)} for the"
                                 " cleanup, longer than the rule's target: the cleanup runs too"
                                 " rarely or too slowly for the rate garbage is made"
                                 " (pgsweep status)."),
                         },
                     }]},
                    {"eval_time": f"{len(samples) - 1}m",
                     "alertname": "PgsweepExpiryLagOverTarget", "exp_alerts": []},
                ],
            }
        ],
    }  # fmt: skip
    path = tmp / "scenario-alerts.test.yml"
    path.write_text(json.dumps(test))  # JSON is YAML
    done = subprocess.run(
        ["promtool", "test", "rules", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

