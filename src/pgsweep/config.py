"""Where a ``pgsweep`` option's value comes from when the command line does not give it.

Precedence: the command line, then a ``PGSWEEP_*`` environment variable, then the config file,
then the built-in default. The connection itself: ``--dsn``, ``PGSWEEP_DSN``, ``DATABASE_URL``,
the config file's ``dsn``, then libpq's own ``PG*`` variables.

The config file is TOML (read with the standard library's ``tomllib``): ``--config FILE``, else
``$PGSWEEP_CONFIG``, else ``./pgsweep.toml`` when it exists and is not a policy file (one with
``[[rule]]`` or ``[[remove]]`` tables, for ``pgsweep apply``). Top-level keys apply to every
command that has the option; a table named after a command applies to that command only::

    dsn = "postgresql://sweeper@db/matcha"
    lock-timeout = 5000

    [run]
    every = "1h"
    batch-size = 1000

Keys are the long option names (``batch-size`` or ``batch_size``). An unknown key, a value of
the wrong type or a file that is not TOML is a usage error (exit 2) naming the file.

Hand-written rather than a settings library: argparse already knows every option, its type and
its validation, so this module only supplies defaults to it (about 100 lines); a library would
duplicate the option list.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgsweep.errors import UsageError

DEFAULT_FILE = "pgsweep.toml"

# option (long name without dashes, underscores) -> environment variable
ENVIRONMENT = {
    "dsn": "PGSWEEP_DSN",
    "json": "PGSWEEP_JSON",
    "batch_size": "PGSWEEP_BATCH_SIZE",
    "lock_timeout": "PGSWEEP_LOCK_TIMEOUT",
    "attempts": "PGSWEEP_ATTEMPTS",
    "cron_dsn": "PGSWEEP_CRON_DSN",
    "job_name": "PGSWEEP_JOB_NAME",
}
CONFIG_VARIABLE = "PGSWEEP_CONFIG"
# Never taken from the environment or a file: which command runs, and options that choose
# between two mutually exclusive actions (a file's `procedure = true` would silently beat
# a `--command` typed on the command line).
_NOT_CONFIGURABLE = frozenset({"help", "version", "config", "procedure", "revision"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass
class ConfigFile:
    path: Path | None
    common: dict[str, Any] = field(default_factory=dict)
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)

    def value(self, command: str, key: str) -> Any:
        here = self.commands.get(command, {})
        return here[key] if key in here else self.common.get(key)


def config_path(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[Path | None, bool]:
    """The config file to read and whether it was asked for (then it must exist)."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1]), True
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1]), True
    if environ.get(CONFIG_VARIABLE):
        return Path(environ[CONFIG_VARIABLE]), True
    default = Path(DEFAULT_FILE)
    return (default, False) if default.is_file() else (None, False)


def _key(name: str) -> str:
    return name.strip().replace("-", "_")


def load(
    argv: Sequence[str], environ: Mapping[str, str], commands: Sequence[str] | None = None
) -> ConfigFile:
    """The config file's settings; ``commands``, when given, are the section names allowed
    (:func:`check` checks them with the options, when the caller knows them all)."""
    path, required = config_path(argv, environ)
    if path is None:
        return ConfigFile(None)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        if required:
            raise UsageError(f"config file {str(path)!r} does not exist") from None
        return ConfigFile(None)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"config file {str(path)!r} cannot be read: {exc}") from None
    if _is_policy_file(data):
        # docs/rules.md's policy file is also named pgsweep.toml: found by default it is not
        # this file (so `pgsweep apply pgsweep.toml` works beside it); named, it is a mistake.
        if not required:
            return ConfigFile(None)
        raise UsageError(
            f"{str(path)!r} is a policy file ([[rule]] or [[remove]] tables), not a config file"
            f" of options: give it to pgsweep apply {str(path)!r}"
        )
    found = ConfigFile(path)
    for name, value in data.items():
        if isinstance(value, dict):
            if commands is not None and name not in commands:
                raise UsageError(f"config file {str(path)!r}: [{name}] is not a pgsweep command")
            found.commands[name] = {_key(k): v for k, v in value.items()}
        else:
            found.common[_key(name)] = value
    return found


def _is_policy_file(data: Mapping[str, Any]) -> bool:
    """A policy file (pgsweep apply): ``[[rule]]`` or ``[[remove]]``, arrays of tables."""
    return any(
        isinstance(data.get(key), list) and all(isinstance(v, dict) for v in data[key])
        for key in ("rule", "remove")
    )


def truthy(value: str, source: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UsageError(f"{source}: expected true or false, not {value!r}")


def option_keys(parser: argparse.ArgumentParser) -> set[str]:
    """The keys a config file may set for this parser's command."""
    return set(_options(parser))


def check(config: ConfigFile, known: Mapping[str, set[str]]) -> None:
    """A usage error for a section that is no command, or a key no command of it has
    (``known``: command -> its option keys, over every program that reads the file)."""
    where = f"config file {str(config.path)!r}"
    for name, keys in config.commands.items():
        if name not in known:
            raise UsageError(f"{where}: [{name}] is not a pgsweep command")
        for key in keys:
            if key not in known[name]:
                raise UsageError(f"{where}: [{name}] has no option {key!r}")
    every = set().union(*known.values()) if known else set()
    for key in config.common:
        if key not in every:
            raise UsageError(f"{where}: unknown setting {key!r}")


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The parser's configurable options by key (long name, dashes as underscores)."""
    found = {}
    for action in parser._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if not longs:
            continue
        key = _key(longs[0][2:])
        if key not in _NOT_CONFIGURABLE:
            found[key] = action
    return found


def _convert(action: argparse.Action, value: Any, source: str) -> Any:
    if isinstance(action, argparse._StoreTrueAction):
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return truthy(value, source)
        raise UsageError(f"{source}: expected true or false, not {value!r}")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(f"{source}: expected a single value, not {value!r}")
    text = str(value)
    if action.type is None:
        return text
    try:
        return action.type(text)  # type: ignore[operator]
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise UsageError(f"{source}: {exc}") from None


def apply(
    subparsers: Mapping[str, argparse.ArgumentParser],
    config: ConfigFile,
    environ: Mapping[str, str],
    command: str | None,
) -> None:
    """Set each option's default from the environment or the config file (argparse applies
    the command line on top). Only ``command``'s own options are resolved, so a bad
    ``PGSWEEP_BATCH_SIZE`` does not break ``pgsweep status``; :func:`check` checks every key
    of the file against the options of the commands it applies to."""
    if command is None or command not in subparsers:
        return
    parser = subparsers[command]
    defaults: dict[str, Any] = {}
    for key, action in _options(parser).items():
        if key == "dsn":
            continue  # resolved with DATABASE_URL in between: see dsn()
        variable = ENVIRONMENT.get(key)
        if variable and environ.get(variable) is not None:
            defaults[action.dest] = _convert(action, environ[variable], variable)
            continue
        value = config.value(command, key)
        if value is not None:
            where = f"config file {str(config.path)!r}, {key.replace('_', '-')}"
            defaults[action.dest] = _convert(action, value, where)
    parser.set_defaults(**defaults)


def dsn(
    explicit: str | None, config: ConfigFile, command: str, environ: Mapping[str, str] | None
) -> str:
    """``--dsn``, ``PGSWEEP_DSN``, ``DATABASE_URL``, the file's ``dsn``, else ``""`` (libpq then
    reads the PG* variables)."""
    env = os.environ if environ is None else environ
    from_file = config.value(command, "dsn")
    if from_file is not None and not isinstance(from_file, str):
        raise UsageError(f"config file {str(config.path)!r}: dsn must be a string")
    return explicit or env.get(ENVIRONMENT["dsn"]) or env.get("DATABASE_URL") or from_file or ""
