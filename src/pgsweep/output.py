"""How the ``pgsweep`` command prints: JSON for machines, plain lines on a pipe, rich on a terminal.

One :class:`Output` per command invocation, shared by every command handler, so that a new
command only builds its rows and never decides by itself where or how they go:

* ``--json``: one JSON document on stdout (``run``: one per line), ``"ok"`` in each;
* stdout not a terminal (a pipe, a file, a test's capture): plain lines, no colour, no table
  borders, no wrapping — stable for scripts and tests;
* stdout a terminal: rich tables and colour (rich honours ``NO_COLOR``, and also ``FORCE_COLOR``
  and ``TTY_COMPATIBLE`` for a terminal it cannot detect);
* progress and spinners only on stderr, and only when stderr is a terminal;
* errors as one line on stderr (``--json``: ``{"ok": false, "error", "exit_code"}`` on stdout).

A reader that goes away (``pgsweep verify | head -1``) is not an error: the first write that
meets a closed pipe points stdout at /dev/null, remembers it, and calls :attr:`on_closed` (the
``run`` loop stops on it); the command still ends with its own exit status.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.status import Status
from rich.table import Table
from rich.text import Text

# verify's statuses and the colour each one gets on a terminal.
STATUS_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


@dataclass(frozen=True)
class Column:
    header: str
    numeric: bool = False  # right-aligned


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``0 runs`` (the count with thousands separators)."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


def format_bytes(n: int) -> str:
    """A size in pg_size_pretty's units (1024-based, ``kB``/``MB``/``GB``/``TB``), one decimal,
    rounded to nearest (1.9 MB stays 1.9 MB). Hand-written rather than rich.filesize, whose
    units are 1000-based and would disagree with what an operator reads in psql."""
    if n < 1024:
        return plural(n, "byte")
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def iso_now() -> str:
    """Now in UTC as ISO 8601 (``2026-12-01T12:00:00.123456+00:00``)."""
    return dt.datetime.now(dt.UTC).isoformat()


def json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class Output:
    """The printing layer of one command invocation (see the module docstring)."""

    def __init__(
        self, *, json_mode: bool, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.json = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.console = Console(file=self.stdout, highlight=False)
        self.err_console = Console(file=self.stderr, highlight=False)
        self.closed = False  # stdout's reader went away
        self.on_closed: Callable[[], None] | None = None
        self.logs_on_stderr = False  # --log-format json: stderr is the event log's, not a bar's

    @property
    def terminal(self) -> bool:
        return not self.json and self.console.is_terminal

    # --- writing ---------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.stdout.write(text)
            self.stdout.flush()
        except BrokenPipeError:
            self.reader_gone()

    def reader_gone(self) -> None:
        self.closed = True
        try:
            # Python flushes stdout once more at exit; point it at /dev/null so that last
            # flush cannot raise BrokenPipeError again (the documented recipe).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass  # not a real file descriptor (a test's capture): nothing to flush at exit
        if self.on_closed is not None:
            self.on_closed()

    def emit(self, document: dict[str, Any]) -> None:
        """One JSON document (one line) on stdout."""
        self._write(json.dumps(document, default=json_default) + "\n")

    def result(self, document: dict[str, Any]) -> None:
        """A success document: ``{"ok": true, …}`` unless the document says otherwise."""
        self.emit({"ok": True, **document})

    def line(self, text: str = "", style: str | None = None) -> None:
        """One line of human output: styled on a terminal, plain otherwise."""
        if self.terminal and not self.closed:
            try:
                self.console.print(text, style=style, markup=False, soft_wrap=True)
            except BrokenPipeError:
                self.reader_gone()
        else:
            self._write(text + "\n")

    def paragraph(self, text: str, *, indent: int = 0, style: str | None = None) -> None:
        """A sentence for a person: on a terminal wrapped at its width between words (never
        inside one, so an identifier stays whole), the lines after the first indented by
        ``indent`` more; anywhere else the one plain line."""
        if not self.terminal or self.closed:
            self._write(text + "\n")
            return
        lead = text[: len(text) - len(text.lstrip())]
        width = max(self.console.width - len(lead) - indent, 20)
        lines = Text(text.strip(), style=style or "").wrap(
            self.console, width, overflow="fold", no_wrap=False
        )
        try:
            for i, line in enumerate(lines):
                pad = lead if i == 0 else lead + " " * indent
                line.rstrip()
                self.console.print(Text(pad) + line, soft_wrap=True, highlight=False)
        except BrokenPipeError:
            self.reader_gone()

    def table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str]],
        *,
        plain: Sequence[str],
        title: str | None = None,
        whole: Sequence[bool] | None = None,
        caption: str | None = None,
        styles: Sequence[str | None] | None = None,
    ) -> None:
        """A rich table on a terminal; the ``plain`` lines anywhere else."""
        if not self.terminal:
            for text in plain:
                self._write(text + "\n")
            return
        if not rows:
            return  # no header over nothing (verify --failed-only on a green database)
        table = Table(
            title=title,
            caption=Text(caption) if caption else None,
            box=box.SIMPLE_HEAD,
            title_justify="left",
            caption_justify="left",
        )
        for i, column in enumerate(columns):
            # A column marked whole (identifiers, numbers) is never broken inside a value; the
            # others wrap between words.
            keep = bool(whole[i]) if whole else False
            table.add_column(
                column.header,
                justify="right" if column.numeric else "left",
                overflow="ignore" if keep else "fold",
                no_wrap=keep,
            )
        for i, row in enumerate(rows):
            # Text, not str: a cell is data (an index definition, a message with [brackets]),
            # never rich markup.
            table.add_row(*(Text(cell) for cell in row), style=styles[i] if styles else None)
        try:
            self.console.print(table)
        except BrokenPipeError:
            self.reader_gone()

    def error(self, prog: str, message: str, code: int, *, usage: str | None = None) -> int:
        """Report a failure and return its exit status."""
        if self.json:
            self.emit({"ok": False, "error": message, "exit_code": code})
        else:
            self.stderr.write(f"{prog}: error: {message}\n")
            if usage:
                self.stderr.write(usage if usage.endswith("\n") else usage + "\n")
            self.stderr.flush()
        return code

    def note(self, text: str) -> None:
        """A line for a person on stderr (never in the way of stdout's data)."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    # --- progress (stderr, terminal only) ------------------------------------------------------

    @property
    def live(self) -> bool:
        """Whether progress may be shown: stderr is a terminal and JSON was not asked for
        (neither as output nor as the log on stderr)."""
        return not self.json and not self.logs_on_stderr and self.err_console.is_terminal

    def activity(self) -> Activity:
        """A spinner line on stderr to show, update and hide (a no-op off a terminal)."""
        return Activity(self.err_console if self.live else None)

    @contextmanager
    def busy(self, what: str) -> Iterator[Activity]:
        """A spinner on stderr while ``what`` runs; the caller may update its text."""
        activity = self.activity()
        activity.show(what)
        try:
            yield activity
        finally:
            activity.hide()

    @contextmanager
    def progress(self, what: str, total: int | None = None) -> Iterator[Advance]:
        """A progress bar on stderr: ``what`` (the table being worked on, updated by ``advance``),
        the bar, ``done/total`` with thousands separators, the rate in rows per second, the
        elapsed time and the ETA. Without a total (nothing counted) the bar pulses instead of
        claiming to be full. Off a terminal ``advance`` does nothing."""
        if not self.live:
            yield Advance(None, None)
            return
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            _CountColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.err_console,
            transient=True,
        ) as bar:
            yield Advance(bar, bar.add_task(what, total=total))


class Advance:
    """``advance(n, what)``: n more done, now on ``what`` (a library's progress callback)."""

    def __init__(self, bar: Progress | None, task: Any) -> None:
        self._bar = bar
        self._task = task

    def __call__(self, n: int, what: str | None = None) -> None:
        if self._bar is None:
            return
        if what is None:
            self._bar.advance(self._task, n)
        else:
            self._bar.update(self._task, advance=n, description=what)


class _CountColumn(ProgressColumn):
    """``12,000/20,000 rows`` (rich's MofNCompleteColumn prints ``12000/20000``; every number a
    person reads here has thousands separators)."""

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else f"{task.total:,.0f}"
        return Text(f"{task.completed:,.0f}/{total} rows")


class _RateColumn(ProgressColumn):
    """Rows per second, as rich measures it over the last seconds."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s")


class Activity:
    """One transient spinner line on stderr: what pgsweep is doing right now (a terminal only).
    Hidden before anything is printed on stdout, so the two never interleave."""

    def __init__(self, console: Console | None) -> None:
        self._status: Status | None = None if console is None else console.status("")
        self._shown = False

    def show(self, text: str) -> None:
        if self._status is None:
            return
        self._status.update(text)
        if not self._shown:
            self._status.start()
            self._shown = True

    def hide(self) -> None:
        if self._status is not None and self._shown:
            self._status.stop()
            self._shown = False
