"""`make demo` keeps working: the demo runs the pgsweep commands against a given DATABASE_URL."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.pg import connect


def test_the_demo_runs_the_operator_commands_and_cleans_up(fresh_db: str) -> None:
    env = {**os.environ, "DATABASE_URL": fresh_db}
    done = subprocess.run(
        [sys.executable, "-m", "pgsweep_testing.demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for command in (
        "upgrade",
        "current",
        "status",
        "cleanup --dry-run",
        "verify --no-cron",
        "cleanup",
    ):
        assert f"\n$ pgsweep {command}\n" in out
    assert "all checks pass" in out
    assert "FAIL" not in out
    # What the dry run announced is what the cleanup deleted.
    would = next(line for line in out.splitlines() if line.startswith("total") and "would" in line)
    deleted = next(
        line for line in out.splitlines() if line.startswith("total") and "deleted" in line
    )
    assert would.split()[-1] == deleted.split()[-1] != "0"
    assert "***" in out  # the password is masked where the DSN is shown
    assert "Done." in out
    with connect(fresh_db) as conn:
        garbage = conn.execute(
            "SELECT count(*) FROM password_reset_tokens"
            " WHERE expires_at < now() - interval '1 minute' OR used_at IS NOT NULL"
        ).fetchone()
    assert garbage == (0,)
