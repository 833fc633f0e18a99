"""``python -m bench``: run the benchmark and print the table (or ``--json``)."""

from __future__ import annotations

import argparse
import os
import sys

from bench import app_load
from bench.report import Report
from bench.runner import MODES, Options, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="pgsweep against the plain approach, side by side on one PostgreSQL.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="mode", const="quick",
                      help="small tables (20k rows), 3 runs, 3 s of S4: a couple of minutes")
    mode.add_argument("--smoke", action="store_const", dest="mode", const="smoke",
                      help="tiny tables, 1 run: checks the machinery, not performance")
    parser.set_defaults(mode="full")
    parser.add_argument("--scenario", default="all",
                        help="comma-separated subset of S1,S2,S3,S4,S5,growth,partitions,K,"
                             "standby,A1"
                             " (default: all)")
    parser.add_argument("--standby-rows", type=int, metavar="N",
                        help="rows of the standby backlog, half expired (default: 5,000,000;"
                             " --quick 200,000)")
    parser.add_argument("--app-backlog", type=int, metavar="N",
                        help="A1: expired rows swept under the app's load (default: 5,000,000;"
                             " --quick 200,000)")
    parser.add_argument("--app-seconds", type=float, metavar="S",
                        help="A1: seconds of pgbench per phase (default: 60; --quick 10)")
    parser.add_argument("--app-rate", type=int, metavar="TPS",
                        help="A1: the app's transactions per second, all clients (default: 1000)")
    parser.add_argument("--app-rounds", type=int, metavar="N",
                        help="A1: rounds of the three phases, pooled (default: 3; --quick 1)")
    parser.add_argument("--runs", type=int, help="timed runs per measurement (after a warm-up)")
    parser.add_argument("--rows", type=int,
                        help="rows of the partitions scenario (default: 10M; --quick 200k)")
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"),
                        help="a server to run on as superuser (default: $DATABASE_URL, else a "
                             "throwaway local cluster)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table as Markdown (for docs/performance.md)")
    parser.add_argument("--render", metavar="FILE",
                        help="measure nothing: print the report saved in FILE by --json")
    args = parser.parse_args(argv)
    if args.render:
        with open(args.render) as saved:
            report = Report.from_json(saved.read())
    else:
        options = Options.for_mode(
            args.mode, args.dsn, args.scenario, args.runs, args.rows, args.standby_rows,
            {"backlog": args.app_backlog, "seconds": args.app_seconds, "rate": args.app_rate,
             "rounds": args.app_rounds},
        )
        report = run(options, progress=sys.stderr)  # progress on stderr, results on stdout
    if args.json:
        print(report.to_json())
    elif args.markdown:
        print(report.markdown())
        print()
        print(report.growth_markdown())
        for scenario in report.scenarios:
            if scenario.name == "A1 app under pgbench":
                print()
                print(app_load.markdown(scenario))
    else:
        print(report.table())
    return 0


if __name__ == "__main__":
    assert set(MODES) == {"full", "quick", "smoke"}
    sys.exit(main())
