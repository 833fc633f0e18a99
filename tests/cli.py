"""Run ``pgsweep`` (or the app's ``matcha-time``) in-process (fast) or as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from pgsweep.cli import main
from pgsweep.matcha_cli import main as matcha_main


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def pgsweep(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    capsys.readouterr()  # drop anything printed before
    code = main(list(argv))
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def pgsweep_process(*argv: str, env: dict[str, str] | None = None) -> Outcome:
    done = subprocess.run(
        [sys.executable, "-m", "pgsweep", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def matcha_time(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    """The reference app's command, ``matcha-time`` (its Alembic chain), in-process."""
    capsys.readouterr()
    code = matcha_main(list(argv))
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def matcha_time_process(*argv: str, env: dict[str, str] | None = None) -> Outcome:
    done = subprocess.run(
        [sys.executable, "-m", "pgsweep.matcha_cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def show_operator(capsys: pytest.CaptureFixture[str], config: pytest.Config, text: str) -> None:
    """Show what an operator would see on the terminal, only when asked (``pytest -s``): a
    quiet ``-q`` run stays a line of dots."""
    if config.getoption("capture") == "no":
        with capsys.disabled():
            print("\n" + text)
