"""The built wheel carries the migrations and SQL files: installed into a fresh virtual
environment, its ``matcha-time upgrade`` migrates a database with no checkout in sight."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from pgsweep import migrate
from pgsweep.paths import data_root

ROOT = data_root()


def run(
    *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False, env=env
    )


@pytest.mark.slow
def test_an_installed_wheel_upgrades_a_database(fresh_db: str, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = run(
        sys.executable,
        "-m",
        "build",
        "--wheel",
        "--no-isolation",
        "--outdir",
        str(dist),
        str(ROOT),
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = dist.glob("pgsweep-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for wanted in (
        "pgsweep/_data/alembic.ini",
        "pgsweep/_data/migrations/env.py",
        "pgsweep/_data/sql/0007_scheduled_cleanup.sql",
        "pgsweep/_data/rollback/0007_scheduled_cleanup_down.sql",
        "pgsweep/_data/sql/0008_single_pass_purge.sql",
        "pgsweep/_data/rollback/0008_single_pass_purge_down.sql",
        "pgsweep/_data/sql/0009_standalone_engine.sql",
        "pgsweep/_data/engine/releases/1.0/install.sql",
        "pgsweep/_data/engine/releases/1.0/uninstall.sql",
        "pgsweep/_data/engine/src/procedures/sweep.sql",
        "pgsweep/engine_manifest.json",
        "pgsweep/matcha_manifest.json",
    ):
        assert wanted in names
    # Test support (the throwaway cluster, the demo) is not part of what an operator installs.
    shipped = [n for n in names if not n.startswith("pgsweep-")]  # minus the dist-info
    assert all(n.startswith("pgsweep/") for n in shipped), shipped
    for unwanted in ("pgsweep/localpg.py", "pgsweep/demo.py"):
        assert unwanted not in names
    assert not [n for n in names if "pgsweep_testing" in n]

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # --no-deps, with the dependencies lent by the test's own environment (a path entry, not a
    # site dir: the checkout's editable install there is not activated): what is under test is
    # the wheel's own content, and the suite stays offline and fast.
    installed = run(
        str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel), cwd=tmp_path
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    (site,) = (env_dir / "lib").glob("python*/site-packages")
    lent = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "zz_test_dependencies.pth").write_text("\n".join(lent) + "\n")

    # Run from a directory with no checkout, with the DSN from the environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))}
    env["DATABASE_URL"] = fresh_db
    pgsweep = str(env_dir / "bin" / "pgsweep")
    matcha_time = str(env_dir / "bin" / "matcha-time")
    upgraded = run(matcha_time, "upgrade", cwd=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    current = run(matcha_time, "current", "--json", cwd=tmp_path, env=env)
    assert current.returncode == 0, current.stderr
    assert f'"revision": "{migrate.head()}"' in current.stdout
    where = run(
        str(python), "-c", "import pgsweep.paths as p; print(p.data_root())", cwd=tmp_path, env=env
    )
    assert "site-packages/pgsweep/_data" in where.stdout
    verified = run(pgsweep, "verify", "--no-cron", cwd=tmp_path, env=env)
    assert verified.returncode == 0, verified.stdout[-3000:]
