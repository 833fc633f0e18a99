"""Which data sets to build for which scenarios, in what order, and the report they make."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, replace
from typing import Any, TextIO

from bench import app_load, kinds, partitions, scenarios
from bench.app_load import LoadSettings
from bench.dataset import Layout, Pair, build_pair
from bench.report import Report, ScenarioResult
from bench.scenarios import Settings
from bench.server import BenchServer, bench_server
from bench.standby import standby_backlog
from pgsweep.runner import SWEEP_BATCH_SIZE

SCENARIOS = ("S1", "S2", "S3", "S4", "S5", "growth", "partitions", "K", "standby", "A1")
# Rows of the partition-retention scenario per mode (--rows overrides): the 10M in full.
PARTITION_ROWS = {"full": 10_000_000, "quick": 200_000, "smoke": 20_000}
# A1 (the app under pgbench) per mode: expired rows, seconds per phase, the app's rate (tps),
# its clients, the warm-up before the cleanup starts, the rounds pooled. --app-* override.
APP_LOAD = {
    "full": LoadSettings(backlog=5_000_000, seconds=60, rate=1000, clients=4, warmup_s=5,
                         rounds=3),
    "quick": LoadSettings(backlog=200_000, seconds=10, rate=1000, clients=4, warmup_s=2),
    "smoke": LoadSettings(backlog=5_000, seconds=2, rate=100, clients=2, warmup_s=0.5),
}
S1_TARGET = 100.0  # x faster than plain, at the main size
S2_TARGET = 4.0
PGSWEEP_BATCH_SIZE = SWEEP_BATCH_SIZE  # pgsweep.sweep()'s default, driven the same way


@dataclass(frozen=True)
class Options:
    mode: str
    dsn: str | None
    scenarios: tuple[str, ...]
    main_rows: int  # live rows per token table in S1, S2, S4
    growth_rows: tuple[int, ...]
    backlog_rows: int  # rows per token table in S3, half expired
    decks: int
    cards_per_deck: int
    settings: Settings
    partition_rows: int = 0  # 0: PARTITION_ROWS[mode]
    standby_rows: int = 5_000_000  # rows of the standby backlog, half expired
    app_load: LoadSettings = APP_LOAD["full"]

    @staticmethod
    def for_mode(
        mode: str,
        dsn: str | None,
        scenario_list: str = "all",
        runs: int | None = None,
        rows: int | None = None,
        standby_rows: int | None = None,
        app_load: dict[str, Any] | None = None,
    ) -> Options:
        options = MODES[mode]
        chosen = SCENARIOS if scenario_list == "all" else tuple(
            s.strip() for s in scenario_list.split(",") if s.strip()
        )
        if mode == "smoke" and scenario_list == "all":
            # A1's three timed pgbench phases take ~10 s even tiny: not part of the smoke test.
            chosen = tuple(s for s in chosen if s != "A1")
        unknown = set(chosen) - set(SCENARIOS)
        if unknown:
            raise SystemExit(f"unknown scenario(s) {sorted(unknown)}; choose from {SCENARIOS}")
        settings = options.settings if runs is None else replace(options.settings, runs=runs)
        partition_rows = rows or PARTITION_ROWS[mode]
        return replace(
            options, dsn=dsn, scenarios=chosen, settings=settings, partition_rows=partition_rows,
            standby_rows=standby_rows or options.standby_rows,
            app_load=replace(APP_LOAD[mode], **{k: v for k, v in (app_load or {}).items()
                                                if v is not None}),
        )


MODES = {
    "full": Options(
        "full", None, SCENARIOS, 1_000_000, (100_000, 1_000_000, 5_000_000), 1_000_000, 200, 500,
        Settings(runs=5, warmup=1, seed="pgsweep-bench", s4_clients=8, s4_seconds=30.0,
                 s4_warmup_seconds=2.0),
    ),
    "quick": Options(
        "quick", None, SCENARIOS, 20_000, (5_000, 20_000, 100_000), 20_000, 20, 100,
        Settings(runs=3, warmup=1, seed="pgsweep-bench", s4_clients=8, s4_seconds=3.0,
                 s4_warmup_seconds=0.5),
        standby_rows=200_000,
    ),
    "smoke": Options(
        "smoke", None, SCENARIOS, 2_000, (1_000, 2_000), 2_000, 3, 10,
        Settings(runs=1, warmup=0, seed="pgsweep-bench", s4_clients=2, s4_seconds=0.3,
                 s4_warmup_seconds=0.0),
        standby_rows=20_000,
    ),
}


def machine(server: BenchServer) -> dict[str, str]:
    memory = ""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        memory = "unknown"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "postgresql": server.version(),
        "server": server.description,
    }


def _log(progress: TextIO | None, message: str) -> None:
    if progress is not None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=progress, flush=True)


def run(options: Options, progress: TextIO | None = None) -> Report:
    settings = options.settings
    wanted = set(options.scenarios)
    with bench_server(options.dsn) as server:
        report = Report(
            machine(server),
            f"python -m bench{'' if options.mode == 'full' else ' --' + options.mode}",
            settings.runs,
        )
        results: dict[tuple[str, int], ScenarioResult] = {}

        def s1_s2(pair: Pair, main: bool) -> None:
            rows = pair.layout.live
            if (main and "S1" in wanted) or "growth" in wanted:
                _log(progress, f"S1 steady state at {rows:,} rows")
                results["S1", rows] = scenarios.steady_state(
                    server, pair, settings, "S1 steady state" if main else "growth S1",
                    S1_TARGET if main else None,
                )
            if (main and "S2" in wanted) or "growth" in wanted:
                _log(progress, f"S2 daily at {rows:,} rows")
                results["S2", rows] = scenarios.daily(
                    server, pair, settings, "S2 daily" if main else "growth S2",
                    S2_TARGET if main else None, with_limit=main,
                )

        if wanted & {"S1", "S2", "S4", "S5", "growth"}:
            _log(progress, f"loading {options.main_rows:,} rows per token table, twice")
            # As many users as live tokens: like the app (which invalidates a user's outstanding
            # token before issuing one), each user holds about one token per table, so S4's
            # flow marks one row used per iteration.
            main_pair = build_pair(
                server, "main", Layout("daily", options.main_rows), settings.seed,
                users=options.main_rows, deck_shape=(options.decks, options.cards_per_deck),
            )
            s1_s2(main_pair, main=True)
            if "S5" in wanted:
                _log(progress, "S5 deck progress")
                results["S5", 0] = scenarios.deck_progress(
                    server, main_pair, settings, options.decks, options.cards_per_deck
                )
            if "S4" in wanted:
                _log(progress, f"S4 insert path, {settings.s4_seconds:g} s per variant")
                results["S4", 0] = scenarios.insert_path(server, main_pair, settings)
            for name in (main_pair.pgsweep_db, main_pair.plain_db):
                server.drop_database(name)
        if "S3" in wanted:
            _log(progress, f"loading the backlog: {options.backlog_rows:,} rows per table, twice")
            backlog_pair = build_pair(
                server, "backlog", Layout("backlog", options.backlog_rows), settings.seed,
                users=max(100, options.backlog_rows // 10),
            )
            _log(progress, "S3 backlog")
            results["S3", 0] = scenarios.backlog(server, backlog_pair, settings, PGSWEEP_BATCH_SIZE)
            for name in (backlog_pair.pgsweep_db, backlog_pair.plain_db):
                server.drop_database(name)
        if "growth" in wanted:
            for rows in options.growth_rows:
                if rows == options.main_rows:
                    continue
                _log(progress, f"growth: loading {rows:,} rows per token table, twice")
                pair = build_pair(
                    server, f"g{rows}", Layout("daily", rows), settings.seed,
                    users=max(100, rows // 10),
                )
                s1_s2(pair, main=False)
                for name in (pair.pgsweep_db, pair.plain_db):
                    server.drop_database(name)

        if "partitions" in wanted:
            rows = options.partition_rows or PARTITION_ROWS[options.mode]
            _log(progress, f"partition retention against DELETE: {rows:,} rows, twice")
            results["partitions", 0] = partitions.partition_retention(server, rows)
        if "K" in wanted:
            _log(progress, f"K1 orphans and K2 live view at {options.main_rows:,} rows")
            kind_results = kinds.kinds(server, settings, options.main_rows, PGSWEEP_BATCH_SIZE)

        order = ["S1", "S2", "S3", "S4", "S5", "partitions"]
        for key in order:
            for (name, rows), result in sorted(results.items(), key=lambda kv: kv[0][1]):
                if name == key and (rows in (0, options.main_rows)) and key in wanted:
                    report.scenarios.append(result)
        if "growth" in wanted:
            report.scenarios += _growth(results, options)
        if "K" in wanted:
            report.scenarios += kind_results
        if "standby" in wanted:
            rows = options.standby_rows
            _log(progress, f"standby backlog: {rows:,} rows, half expired, with a standby")
            # The smoke mode checks the machinery: short idle and stall windows.
            windows = (0.2, 0.3) if options.mode == "smoke" else ()
            report.scenarios.append(standby_backlog(rows, *windows))
        if "A1" in wanted:
            load = options.app_load
            _log(progress, f"A1 the app under pgbench: a {load.backlog:,}-row backlog,"
                           f" {load.seconds:g} s per phase, idle / sweep / plain DELETE")
            report.scenarios.append(app_load.app_under_load(server, load))
        _log(progress, "done")
    return report


def _growth(
    results: dict[tuple[str, int], ScenarioResult], options: Options
) -> list[ScenarioResult]:
    """S1 and S2 at every growth size, relabelled as one curve; the main size reuses S1/S2."""
    curve = ScenarioResult("growth")
    for name in ("S1", "S2"):
        for rows in sorted(options.growth_rows):
            result = results.get((name, rows))
            if result is None:
                continue
            figure = result.figures[0]
            curve.figures.append(
                replace(figure, scenario=f"growth {name}", target="", met=None)
            )
            curve.facts[f"{name}_{rows}"] = {
                "pgsweep_ms": figure.pgsweep,
                "plain_ms": figure.baseline,
                "rows_deleted": result.facts.get("expected_deleted", 0),
            }
    return [curve]
