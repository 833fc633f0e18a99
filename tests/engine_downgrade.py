"""Step a database's engine back to an older release, newest release first, with each release's
own ``downgrade.sql`` (as an operator would), for tests of an older release's downgrade."""

from __future__ import annotations

import subprocess

from pgsweep import engine


def run_downgrade(dsn: str, release: str) -> subprocess.CompletedProcess[str]:
    """``psql -f engine/releases/<release>/downgrade.sql``: from ``release`` to the one before."""
    return subprocess.run(
        ["psql", "-X", "-q", "-d", dsn, "-f", str(engine.release_file(release, "downgrade.sql"))],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def downgrade_to(dsn: str, release: str) -> None:
    """Every release newer than ``release`` downgraded, newest first; each must succeed."""
    newer = [r for r in engine.releases() if engine._version_key(r) > engine._version_key(release)]
    for step in reversed(newer):
        done = run_downgrade(dsn, step)
        assert done.returncode == 0, done.stderr
