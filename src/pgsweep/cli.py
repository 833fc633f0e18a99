"""Command-line entry point (placeholder until the real sub-commands land)."""

import sys

USAGE = "usage: pgsweep <command> [options]\n"


def main(argv: list[str] | None = None) -> int:
    """Print usage and return 2, the conventional exit status for a usage error."""
    del argv  # no sub-commands yet
    sys.stderr.write(USAGE)
    return 2
