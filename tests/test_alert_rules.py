"""The example alert rules of prometheus/ are valid and fire when they should (promtool)."""

from __future__ import annotations

import subprocess
from pathlib import Path

PROMETHEUS_DIR = Path(__file__).resolve().parent.parent / "prometheus"


def promtool(*argv: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *argv], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_example_alert_rules_are_valid() -> None:
    done = promtool("check", "rules", "pgsweep-alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_the_example_alert_rules_fire_and_clear_as_their_tests_expect() -> None:
    done = promtool("test", "rules", "pgsweep-alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
