"""docs/cli.md is the command reference: everything ``pgsweep --help`` shows must be in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pgsweep import cli, config, matcha_cli

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
COMMON = {"--dsn", "--json", "--config", "--help", "-h"}


def section(title: str) -> str:
    text = REFERENCE.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


PROGRAMS = {"pgsweep": cli.PGSWEEP, "matcha-time": matcha_cli.MATCHA_TIME}


def help_text(*argv: str, program: str = "pgsweep") -> str:
    parser, subparsers = cli._build(PROGRAMS[program])
    return (subparsers[argv[0]] if argv else parser).format_help()


@pytest.mark.parametrize(
    ("program", "command"),
    [(name, c.name) for name, program in PROGRAMS.items() for c in program.commands],
)
def test_every_option_of_a_commands_help_is_in_its_section_of_the_reference(
    program: str, command: str
) -> None:
    shown = help_text(command, program=program)
    own = section(f"{program} {command}")
    common = section("COMMON OPTIONS")
    options = set(re.findall(r"(?<![\w@-])--?[a-z][a-z-]*", shown.split("examples:")[0]))
    assert options, shown
    for option in options:
        where = common if option in COMMON else own
        assert f"`{option}" in where, (command, option)
    _, subparsers = cli._build(PROGRAMS[program])
    for action in subparsers[command]._actions:
        if not action.option_strings:  # a positional argument: REV, shell
            assert f"`{action.metavar or action.dest}`" in own, (command, action.dest)


def test_the_top_level_help_lists_nothing_the_reference_lacks() -> None:
    shown = help_text()
    synopsis = section("SYNOPSIS")
    for command in cli.COMMANDS:
        assert command.name in shown
        assert f"`{command.name}`" in synopsis
    assert "--version" in shown
    assert "`--version`" in section("COMMON OPTIONS")


def test_every_environment_variable_and_exit_status_is_in_the_reference() -> None:
    environment = section("ENVIRONMENT")
    for names, _ in cli.ENVIRONMENT_HELP:
        for name in re.findall(r"[A-Z][A-Z_]+", names):
            assert f"`{name}`" in environment, name
    for name in config.ENVIRONMENT.values():
        assert f"`{name}`" in environment, name
    exits = section("EXIT STATUS")
    for code, _ in cli.EXIT_CODES:
        assert f"\n| {code} |" in exits, code
