"""`make demo` keeps working: the demo runs against a given DATABASE_URL and reports."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.pg import connect


def test_the_demo_upgrades_loads_cleans_and_reports(fresh_db: str) -> None:
    env = {**os.environ, "DATABASE_URL": fresh_db}
    done = subprocess.run(
        [sys.executable, "-m", "pgsweep.demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "total_cleaned=" in done.stdout
    assert "NO INDEX" not in done.stdout
    assert "***" in done.stdout  # the password is masked where the DSN is shown
    with connect(fresh_db) as conn:
        garbage = conn.execute(
            "SELECT count(*) FROM password_reset_tokens"
            " WHERE expires_at < now() - interval '1 minute' OR used_at IS NOT NULL"
        ).fetchone()
    assert garbage == (0,)
