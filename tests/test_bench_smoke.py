"""The benchmark's tiny mode against the test server, so ``make bench`` cannot rot.

Structure and sanity only (both sides deleted the same rows, every scenario produced its
figures); never timings, which mean nothing on tables this small.
"""

from __future__ import annotations

import json

import pytest
from bench.report import Report
from bench.runner import Options, run

from tests.pg import PgServer


@pytest.fixture(scope="module")
def options(pg_server: PgServer) -> Options:
    return Options.for_mode("smoke", pg_server.admin_dsn)


@pytest.fixture(scope="module")
def report(options: Options) -> Report:
    """One tiny run of every scenario (about ten seconds)."""
    return run(options)


def test_the_smoke_mode_runs_every_scenario_and_both_sides_do_the_same_work(
    options: Options, report: Report
) -> None:
    facts = {s.name: s.facts for s in report.scenarios}
    assert list(facts) == [
        "S1 steady state",
        "S2 daily",
        "S3 backlog",
        "S4 insert path",
        "S5 deck progress",
        "partitions",
        "growth",
        "K1 orphans",
        "K2 live view",
        "standby backlog",
    ]
    assert all(s.figures for s in report.scenarios)

    assert facts["S1 steady state"]["rows_deleted"] == {"pgsweep": 0, "plain": 0}
    s2 = facts["S2 daily"]
    assert s2["expected_deleted"] > 0
    for side in ("pgsweep", "plain", "limit"):
        assert set(s2["rows_deleted"][side]) == {s2["expected_deleted"]}, side
    s3 = facts["S3 backlog"]
    assert s3["expected_deleted"] > 0
    for variant, counts in s3["rows_deleted"].items():
        assert set(counts) == {s3["expected_deleted"]}, variant
    assert s3["batches_per_run"] > 0

    s4 = facts["S4 insert path"]
    assert s4["no trigger"]["iterations"] > 0
    assert s4["pgsweep trigger"]["iterations"] > 0
    assert s4["pgsweep trigger"]["errors_by_sqlstate"] == {}

    s5 = facts["S5 deck progress"]
    assert s5["same_progress_rows_on_both_sides"]
    assert set(s5["refreshed"]["pgsweep"]) == set(s5["refreshed"]["plain"]) == {s5["decks"]}

    # Partition retention against DELETE: both sides removed the same rows (the cutoff moves
    # with the clock between the two, by a row or two at this size), pgsweep whole partitions.
    part = facts["partitions"]
    expected = part["expected_deleted"]
    assert expected > 0
    for side in ("pgsweep", "procedure", "plain"):
        assert abs(part[side]["deleted"] - expected) <= 2, (side, part[side], expected)
        assert part[side]["writer_inserts"] > 0
        assert part[side]["writer_errors"] == 0
    assert part["pgsweep"]["partitions_removed"] >= 2

    growth = facts["growth"]
    assert set(growth) == {f"{s}_{rows}" for s in ("S1", "S2") for rows in options.growth_rows}
    assert growth["S2_2000"]["rows_deleted"] == 2 * growth["S2_1000"]["rows_deleted"]

    k1 = facts["K1 orphans"]
    assert k1["expected_deleted"] > 0
    for side in ("pgsweep", "plain"):
        assert set(k1["rows_deleted"][side]) == {k1["expected_deleted"]}, side
    k2 = facts["K2 live view"]
    # The view hides the expired third of the rows the same lookups find in the table.
    assert 0 < k2["rows_found"]["view"][0] < k2["rows_found"]["table"][0] == k2["lookups"]
    standby = facts["standby backlog"]
    for variant in ("replaying_unpaced", "replaying_paced", "stalled_unpaced", "stalled_paced"):
        assert standby[variant]["deleted"] == standby["rows"] // 2, variant
        assert standby[variant]["wal_bytes"] > 0, variant


def test_the_report_renders_as_a_table_markdown_and_json(report: Report) -> None:
    assert "S1 steady state" in report.table()
    assert report.markdown().startswith("| scenario |")
    decoded = json.loads(report.to_json())
    assert decoded["scenarios"][0]["figures"][0]["unit"] == "ms"
    assert decoded["machine"]["postgresql"]
    assert decoded["runs"] == 1
