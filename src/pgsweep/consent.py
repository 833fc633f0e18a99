"""Consent before destruction: a downgrade whose down scripts destroy data, an uninstall, and a
cleanup of more than :data:`pgsweep.cleanup.CONSENT_ROWS` rows run only when told.

On a terminal the operator sees what would happen and answers y/N; anywhere else (a pipe, CI,
cron) the command refuses unless ``--yes`` was given, and says how to proceed.
"""

from __future__ import annotations

import sys
from typing import TextIO

from pgsweep.deploy import DowngradePlan
from pgsweep.errors import PgsweepError, UsageError


class NotConfirmed(PgsweepError):
    """The operator answered no at the prompt: nothing was changed (exit 1)."""


def preview(plan: DowngradePlan) -> str:
    """What the downgrade runs, newest first, and what each destructive step destroys."""
    target = plan.target or "base"
    lines = [f"downgrade {plan.before or 'base'} -> {target} runs, in this order:"]
    for step in plan.steps:
        mark = f"   DESTROYS {step.destroys}" if step.destroys else ""
        lines.append(f"  {step.revision}  {step.down_sql}{mark}")
    lines.append(
        "The data named above cannot be brought back by an upgrade."
        f" The SQL itself: pgsweep downgrade {_range(plan)} --sql"
    )
    return "\n".join(lines) + "\n"


def require(
    plan: DowngradePlan,
    *,
    yes: bool,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
) -> None:
    """Return when the downgrade may run; raise when it may not (nothing has run yet)."""
    if yes or not plan.destroying:
        return
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    target = plan.target or "base"
    if not stdin.isatty():
        what = "; ".join(f"{s.revision}: {s.destroys}" for s in plan.destroying)
        raise UsageError(
            f"downgrade to {target} destroys data ({what}); nothing was changed."
            f" Re-run with --yes to confirm (see the SQL first:"
            f" pgsweep downgrade {_range(plan)} --sql)"
        )
    stderr.write(preview(plan))
    stderr.write("Proceed? [y/N] ")
    stderr.flush()
    answer = stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise NotConfirmed(f"downgrade to {target} not confirmed; nothing was changed")


def confirm(
    what: str,
    *,
    yes: bool,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
) -> None:
    """Return when ``what`` (a sentence: what will be destroyed) may happen; raise otherwise."""
    if yes:
        return
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    if not stdin.isatty():
        raise UsageError(f"{what}; nothing was changed. Re-run with --yes to confirm")
    stderr.write(f"{what}.\nProceed? [y/N] ")
    stderr.flush()
    if stdin.readline().strip().lower() not in ("y", "yes"):
        raise NotConfirmed("not confirmed; nothing was changed")


def _range(plan: DowngradePlan) -> str:
    return f"{plan.before or 'base'}:{plan.target or 'base'}"
