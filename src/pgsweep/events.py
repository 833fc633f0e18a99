"""The events of a sweep, for ``--log-format json`` (docs/observability.md#structured-logs).

``pgsweep cleanup`` and every run of ``pgsweep run`` drive the same loop
(:func:`pgsweep.cleanup.sweep`), which says what happened as :class:`Event` values read from the
engine's step results (never from NOTICE text); one vocabulary, :data:`NAMES`, for both. A sink
is any callable taking an event: :class:`JsonLines` writes each as one JSON object per line.

Written by hand rather than through :mod:`logging` with a JSON formatter: the document is a
small fixed set of fields, and a logging handler would add a second configuration (levels,
propagation, the root logger an embedding application owns) for no gain.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

# event: when it is said (its level)
NAMES = {
    "run_start": "a run began: its id in pgsweep.runs, the rules it will work (info)",
    "partition": "a partition past the cutoff went whole: its rows (info)",
    "partition_left": "a partition stayed attached, was put back, or is hidden: why (warning)",
    "batch": "one batch committed: its number in the rule, its rows, the rule's so far (info)",
    "pause": "the run waits before the rule's next batch: why, for how long (info)",
    "stop": "the run stops here (pgsweep.max_run_time and the like): why (warning)",
    "rule_done": "a rule is done for this run: its rows, batches, partitions (info)",
    "rule_skipped": "a rule did not run: why (warning)",
    "rule_failed": "a rule's step failed and was undone: the error, its SQLSTATE (error)",
    "rule_left": "a stopped run did not reach or finish the rule (warning)",
    "run_end": "the run ended: its status, rows, seconds (info; error when it failed)",
    "outage": "pgsweep run lost the database: the error, the retry (error)",
}
_LEVELS = {
    "partition_left": "warning",
    "stop": "warning",
    "rule_skipped": "warning",
    "rule_left": "warning",
    "rule_failed": "error",
    "outage": "error",
}


@dataclass(frozen=True)
class Event:
    """One thing a sweep did. ``rule`` is ``table.column`` (the table as regclass prints it);
    ``rows`` what this event counts (a batch's rows, a rule's, a run's); ``extra`` the fields
    particular to the event."""

    event: str
    rule: str | None = None
    rows: int | None = None
    batch: int | None = None
    reason: str | None = None
    error: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event not in NAMES:
            raise ValueError(f"unknown event {self.event!r}")

    @property
    def level(self) -> str:
        if self.event == "run_end" and self.extra.get("status") == "failed":
            return "error"
        return _LEVELS.get(self.event, "info")


EventSink = Callable[[Event], None]


def rule_name(table: str, column: str) -> str:
    return f"{table}.{column}"


def document(event: Event, at: dt.datetime | None = None) -> dict[str, object]:
    """The event as its JSON object: time (ISO 8601, UTC), level, event, then its fields that
    are set."""
    when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    out: dict[str, object] = {
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": event.level,
        "event": event.event,
    }
    for key in ("rule", "rows", "batch", "reason", "error"):
        value = getattr(event, key)
        if value is not None:
            out[key] = value
    out.update({k: v for k, v in event.extra.items() if v is not None})
    return out


class JsonLines:
    """A sink writing each event as one line of JSON to ``stream``, flushed at once (a log
    collector reads it as it comes)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(document(event), default=str) + "\n")
        self.stream.flush()
