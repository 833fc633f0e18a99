"""A scripted tour: every ``pgsweep`` command (and the reference app's ``matcha-time``) with good
and bad input, as an operator runs it.

Each step runs the real entry point (``python -m pgsweep``) as a subprocess, once as a person
would and once with ``--json``, and checks: the documented exit status, no traceback anywhere,
an error as one ``pgsweep …: error: …`` line on stderr (a command-line error adds the usage),
and under ``--json`` only valid JSON on stdout (one document; ``run``: one per line) with ``ok``,
and nothing on stderr. The steps run in order against one database (its state moves with the
tour: empty, behind, head). The transcript is written to ``.reports/tour.txt``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgsweep import errors
from pgsweep.dsn import conninfo
from tests.pg import PgServer, connect

pytestmark = pytest.mark.slow

TRANSCRIPT = Path(__file__).resolve().parents[1] / ".reports" / "tour.txt"
SECRET = "tour-secret-never-printed"
UNREACHABLE = f"postgresql://someone:{SECRET}@127.0.0.1:1/matcha"
JOB = "tour-cleanup"


@dataclass(frozen=True)
class Step:
    argv: tuple[str, ...]
    code: int
    json: bool = True  # also run with --json
    dsn: bool = True  # append --dsn of the tour's database
    app: bool = False  # the reference app's command, matcha-time

    @property
    def program(self) -> str:
        return "matcha-time" if self.app else "pgsweep"


def app(argv: tuple[str, ...], code: int, json: bool = True) -> Step:
    return Step(argv, code, json=json, app=True)


def steps(cron_code: int, password_dsn: str | None) -> list[Step]:
    usage, behind = errors.EXIT_USAGE, errors.EXIT_BEHIND
    tour = [
        # No command, an unknown one, the version.
        Step((), usage, json=False, dsn=False),
        Step(("frobnicate",), usage, dsn=False),
        Step(("--version",), 0, json=False, dsn=False),
        # Connections that cannot work.
        Step(("current", "--dsn", "not a dsn"), usage, dsn=False),
        Step(("current", "--dsn", "postgresql://u@127.0.0.1:abc/x"), usage, dsn=False),
        Step(("status", "--dsn", UNREACHABLE), errors.EXIT_CANNOT_CONNECT, dsn=False),
        Step(("current", "--config", "/nonexistent/pgsweep.toml"), usage),
        # An empty database.
        Step(("current",), 0),
        Step(("upgrade",), behind),  # no engine to upgrade: pgsweep install
        app(("current",), 0),
        app(("upgrade", "0099"), usage),
        app(("upgrade", "--attempts", "0"), usage),
        app(("upgrade", "0005"), 0),
        app(("current",), 0),
        Step(("status",), behind),
        Step(("cleanup",), behind),
        Step(("run", "--every", "1s"), behind),
        Step(("upgrade",), usage),  # the app's database: its chain upgrades its engine
        app(("upgrade", "--lock-timeout", "3000"), 0),
        # At head.
        Step(("current",), 0),
        app(("current",), 0),
        Step(("verify", "--no-cron"), 0),
        Step(("verify", "--no-cron", "--failed-only"), 0),
        Step(("verify", "--no-cron", "--job-name"), usage),
        Step(("status",), 0),
        Step(("cleanup", "--dry-run"), 0),
        Step(("cleanup",), 0),
        Step(("cleanup", "--dry-run", "--now"), usage),
        Step(("cleanup", "--table", "no_such_table"), usage),
        Step(("cleanup", "--table", "users"), usage),  # a table without a rule
        Step(("install",), 0),  # the app's chain installed the engine: nothing to do
        Step(("uninstall",), usage),  # consent, and the app's engine is the chain's to remove
        Step(("run", "--every", "1s", "--max-runs", "2", "--batch-size", "100"), 0),
        Step(("run", "--every", "5", "--max-runs", "0"), usage),
        Step(("run", "--every", "99999999999d"), usage),
        Step(("run", "--every", "soon"), usage),
        Step(("run", "--every", "1s", "--batch-size", "0"), usage),
        Step(("schedule", "--job-name", ""), usage),
        Step(("schedule", "--job-name", JOB, "--cron", "0 0 2 * * *"), usage),
        Step(("schedule", "--job-name", JOB, "--command", "SELEC 1"), usage),
        Step(("schedule", "--job-name", JOB, "--history-days", "0"), cron_code),
        Step(("schedule", "--job-name", JOB, "--history-days", "0", "--procedure"), cron_code),
        Step(("schedule", "--command", "SELECT 1", "--procedure"), usage),
        Step(("unschedule", "--job-name", JOB), 0),  # a job that is not there: not an error
        Step(("unschedule", "--job-name", ""), usage),
        Step(("downgrade", "--yes"), usage),  # the app's engine: its chain steps it back
        app(("downgrade",), usage),
        app(("downgrade", "base-ish"), usage),
        # 0013's, 0012's and 0011's downgrades keep what they have (no consent asked); 0010's
        # drops the engine's run history: refused without consent, then given.
        app(("downgrade", "-1"), 0, json=False),
        app(("downgrade", "-1"), 0, json=False),
        app(("downgrade", "-1"), 0, json=False),
        app(("downgrade", "-1"), usage),
        app(("downgrade", "-1", "--yes"), 0, json=False),
        Step(("verify", "--no-cron"), errors.EXIT_FAILED),
        app(("upgrade",), 0),
        Step(("completion", "bash"), 0, json=False, dsn=False),
        Step(("completion", "fish"), usage, json=False, dsn=False),
    ]
    if password_dsn is not None:
        tour.append(Step(("current", "--dsn", password_dsn), errors.EXIT_AUTHENTICATION, dsn=False))
    return tour


@pytest.fixture(scope="module")
def transcript() -> Iterator[list[str]]:
    lines: list[str] = []
    yield lines
    TRANSCRIPT.parent.mkdir(exist_ok=True)
    TRANSCRIPT.write_text("\n".join(lines) + "\n")


def cron_usable(pg_server: PgServer) -> bool:
    if not pg_server.cron_database:
        return False
    with connect(pg_server.dsn(pg_server.cron_database)) as conn:
        row = conn.execute("SELECT to_regclass('cron.job') IS NOT NULL").fetchone()
    return bool(row and row[0])


def run(argv: list[str], program: str = "pgsweep") -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "PGAPPNAME", "NO_COLOR", "FORCE_COLOR")
        and not k.startswith("PGSWEEP_")
    }
    return subprocess.run(
        [sys.executable, "-m", MODULES[program], *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


MODULES = {"pgsweep": "pgsweep", "matcha-time": "pgsweep.matcha_cli"}


def shown(argv: list[str], dsn: str) -> str:
    return " ".join(
        "'$DSN'" if a == dsn else (f"'{a}'" if (not a or " " in a or "*" in a) else a) for a in argv
    ).replace(SECRET, "***")


def test_every_command_with_good_and_bad_input(
    module_db: str, pg_server: PgServer, transcript: list[str]
) -> None:
    password = conninfo_to_dict(conninfo(module_db)).get("password")
    wrong = None
    if password:
        params = conninfo_to_dict(conninfo(module_db))
        params["password"] = SECRET
        wrong = make_conninfo("", **params)
    cron_code = 0 if cron_usable(pg_server) else errors.EXIT_CRON_UNAVAILABLE
    secrets = [s for s in (SECRET, str(password or "")) if s]
    for step in steps(cron_code, wrong):
        for as_json in (False, True) if step.json else (False,):
            argv = [*step.argv, *(["--dsn", module_db] if step.dsn else [])]
            argv += ["--json"] if as_json else []
            done = run(argv, step.program)
            command = f"{step.program} {shown(argv, module_db)}"
            transcript += [f"$ {command}", done.stdout + done.stderr]
            transcript.append(f"[exit {done.returncode}]\n")
            where = f"{command}\n{done.stdout}{done.stderr}"
            assert done.returncode == step.code, where
            for text in (done.stdout, done.stderr):
                assert "Traceback" not in text, where
                for secret in secrets:
                    assert secret not in text, where
            if as_json:
                check_json(done, step.code, where)
            elif step.code == errors.EXIT_FAILED and not done.stderr:  # verify: red report
                assert done.stdout.splitlines()[-1].endswith(" checks failed"), where
            elif step.code != 0:
                first = done.stderr.splitlines()[0]
                assert re.match(rf"{step.program}( [a-z]+)?: error: ", first), where


def check_json(done: subprocess.CompletedProcess[str], code: int, where: str) -> None:
    assert done.stderr == "", where
    lines = done.stdout.splitlines()
    documents = [json.loads(line) for line in lines]  # every line is JSON
    assert documents, where
    last = documents[-1]
    if code == 0:
        assert last["ok"] is True, where
        if len(documents) > 1:  # run: start, run…, stopped, each with its time
            assert all("at" in d and "event" in d for d in documents), where
        else:
            assert len(lines) == 1, where
    elif "checks" in last:  # verify: red is a report, not an error
        assert (last["ok"], len(lines)) == (False, 1), where
    else:
        assert (last["ok"], last["exit_code"], len(lines)) == (False, code, 1), where
        assert isinstance(last["error"], str), where
