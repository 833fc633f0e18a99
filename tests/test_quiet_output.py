"""Quiet where nothing needs saying: ``matcha-time upgrade`` prints each NOTICE once and none of the
"already exists, skipping" of statements re-run by a later revision; a ``pytest -q`` run of a
test that shows an operator's view stays a line of dots."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.cli import matcha_time_process
from tests.test_operator_day import env

ROOT = Path(__file__).resolve().parent.parent


def test_upgrade_prints_each_notice_once_and_no_already_exists(fresh_db: str) -> None:
    done = matcha_time_process("upgrade", "--dsn", fresh_db, env=env())
    assert done.code == 0, done
    notices = [line.strip() for line in done.out.splitlines() if "NOTICE:" in line]
    assert len(notices) == len(set(notices)), notices
    assert not [n for n in notices if "already exists, skipping" in n], notices
    # What is worth saying still is.
    assert any("pg_cron" in n for n in notices), done.out


def test_no_test_prints_past_the_capture_but_through_show_operator() -> None:
    for path in sorted((ROOT / "tests").glob("*.py")):
        if path.name in ("cli.py", "test_quiet_output.py"):
            continue
        assert "capsys.disabled" not in path.read_text(), path.name


def test_a_quiet_run_of_a_test_that_shows_an_operators_view_prints_only_dots(
    tmp_path: Path,
) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "import pytest\n"
        "from tests.cli import show_operator\n"
        "def test_probe(capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config):\n"
        "    show_operator(capsys, pytestconfig, 'PASS  engine: shown')\n"
    )
    quiet = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "PASS  engine" not in quiet.stdout
    assert re.search(r"1 passed", quiet.stdout)
    shown = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(probe)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert "PASS  engine: shown" in shown.stdout, shown.stdout
