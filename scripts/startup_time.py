"""How long ``pgsweep`` takes to start: each command N times, min/median/max wall time.

    .venv/bin/python scripts/startup_time.py            # 20 runs of each command
    .venv/bin/python scripts/startup_time.py -n 50 --json

A benchmark, not a test: the figures depend on the machine and its load (docs/performance.md,
"Startup", records them with the machine they came from).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

COMMANDS = (
    ("pgsweep", "--version"),
    ("pgsweep", "--help"),
    ("pgsweep", "status", "--help"),
    ("matcha-time", "--help"),
)
MODULE = {"pgsweep": "pgsweep", "matcha-time": "pgsweep.matcha_cli"}


def measure(argv: tuple[str, ...], runs: int) -> list[float]:
    command = [sys.executable, "-m", MODULE[argv[0]], *argv[1:]]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20, help="runs per command (default 20)")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args()
    results = []
    for argv in COMMANDS:
        times = measure(argv, args.n)
        results.append(
            {
                "command": " ".join(argv),
                "runs": args.n,
                "min_s": round(min(times), 3),
                "median_s": round(statistics.median(times), 3),
                "max_s": round(max(times), 3),
            }
        )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"{r['command']:<24} min {r['min_s']:.3f} s  median {r['median_s']:.3f} s"
                f"  max {r['max_s']:.3f} s  ({r['runs']} runs)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
