"""Docs that cannot drift: the README and docs/ name the newest engine release and the chain's
head as the repository has them (computed here, never written down in this test), and every
``pgsweep …`` command example in them parses with the CLI's own parser (no database)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from pgsweep import cli, engine, migrate

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
NEWEST = engine.latest()
HEAD = migrate.head()

# Fences whose lines are shell commands (the rest are SQL, TOML, output…).
_SHELL_FENCE = re.compile(r"^```(sh|bash|shell|console|)\s*$")
# A synopsis (``pgsweep verify [--no-cron]``, ``pgsweep COMMAND``) or placeholders the docs
# write in an example's place of a real value: not an example to parse.
_PLACEHOLDER = re.compile(r"[<>…\[]|\.\.\.|\b[A-Z][A-Z_]+\b(?!=)|: error:")


def _shell_lines(text: str) -> list[str]:
    """The lines of the text's shell fences, a continued line (``\\``) joined to the next."""
    lines: list[str] = []
    fence: bool | None = None  # None: outside a fence; True: a shell fence; False: another
    pending = ""
    for raw in text.splitlines():
        if raw.startswith("```"):
            fence = None if fence is not None else bool(_SHELL_FENCE.match(raw))
            continue
        if fence:
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            lines.append(line)
    return lines


def _inline_commands(text: str) -> list[str]:
    """``pgsweep …`` in backticks in the prose (outside the fences)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.findall(r"`(pgsweep [^`]+)`", prose)


def _argv(command: str) -> list[str] | None:
    """The arguments of one ``pgsweep`` invocation in a shell line (None: not one to parse)."""
    command = command.removeprefix("$ ")
    command = re.sub(r"^(\w+=\S*\s+)+", "", command)  # VAR=value pgsweep …
    if not command.startswith("pgsweep ") or _PLACEHOLDER.search(command):
        return None
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return None
    argv: list[str] = []
    for word in words[1:]:
        if word in {"|", "||", "&&", ";", ">", ">>", "2>&1", "&"} or word.startswith((">", "2>")):
            break
        argv.append(word)
    if not argv or {"-h", "--help", "--version"} & set(argv):
        return None
    return argv


def _examples() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in [README, *DOCS]:
        text = path.read_text()
        for line in _shell_lines(text) + _inline_commands(text):
            for part in re.split(r"\s*(?:&&|;|\|\|?)\s*", line):
                if _argv(part) is not None:
                    found.append((path.name, part))
    return found


EXAMPLES = _examples()


def test_the_docs_hold_command_examples_to_check() -> None:
    assert len(EXAMPLES) > 40, EXAMPLES
    assert {name for name, _ in EXAMPLES} >= {"README.md", "cli.md", "scheduling.md"}


@pytest.mark.parametrize(("doc", "command"), EXAMPLES, ids=[f"{d}:{c}" for d, c in EXAMPLES])
def test_every_command_example_in_the_docs_parses(doc: str, command: str) -> None:
    argv = _argv(command)
    assert argv is not None
    parser, subparsers = cli._build()
    if len(argv) == 1 or argv[1:] == ["--json"]:
        # The prose naming a command (`pgsweep run`), not an invocation: the command exists.
        assert argv[0] in subparsers, f"{doc}: no command {argv[0]!r}"
        return
    try:
        parser.parse_args(argv)
    except (cli.CommandLineError, argparse.ArgumentError, SystemExit) as error:
        pytest.fail(f"{doc}: {command!r} does not parse: {error}")


def test_the_parser_check_refuses_a_wrong_example() -> None:
    parser, _ = cli._build()
    with pytest.raises(cli.CommandLineError):
        parser.parse_args(["cleanup", "--no-such-option"])


def test_the_readme_installs_the_newest_release_and_names_the_chain_head() -> None:
    text = README.read_text()
    releases = set(re.findall(r"engine/releases/(\d+\.\d+)/install\.sql", text))
    assert releases == {NEWEST}, releases
    ranges = re.findall(r"0001[\N{EN DASH}-](\d{4})", text)
    assert ranges, "the README names no range of the chain's revisions"
    assert set(ranges) == {HEAD}, ranges


def test_the_engine_guide_installs_and_removes_the_newest_release() -> None:
    text = (ROOT / "docs" / "engine.md").read_text()
    named = set(re.findall(r"-f engine/releases/(\d+\.\d+)/\w+\.sql", text))
    assert named == {NEWEST}, named


def test_the_app_guide_lists_every_revision_up_to_the_head() -> None:
    text = (ROOT / "docs" / "matcha.md").read_text()
    assert re.search(rf"^\| {HEAD}_\w+ \|", text, re.M), HEAD


def test_the_changelog_opens_with_the_newest_release_and_the_head() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    first = re.search(r"^## (Engine .+)$", text, re.M)  # an "Unreleased" section may come first
    assert first is not None
    assert f"Engine {NEWEST}" in first.group(1), first
    assert f"chain {HEAD}" in first.group(1), first


def test_every_range_of_the_whole_chain_in_the_docs_ends_at_the_head() -> None:
    for path in [README, *DOCS]:
        for end in re.findall(r"chain[^.;:]{0,30}?\b0001[\N{EN DASH}-](\d{4})\b", path.read_text()):
            assert end == HEAD, (path.name, end)
