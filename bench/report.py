"""What a benchmark run found, as figures with their baseline, ratio and target, and how to print
them (a plain-text table, or JSON)."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measured value of pgsweep next to the plain approach's.

    ``ratio`` is oriented so that bigger means better for pgsweep unless ``ratio_label`` says
    otherwise (e.g. "x plain" for a time pgsweep may spend more of, up to a target).
    """

    scenario: str
    measure: str
    pgsweep: float
    baseline: float | None
    unit: str
    ratio: float | None = None
    ratio_label: str = ""
    target: str = ""
    met: bool | None = None
    baseline_name: str = "plain"


@dataclass
class ScenarioResult:
    name: str
    figures: list[Figure] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    machine: dict[str, str]
    command: str
    runs: int
    scenarios: list[ScenarioResult] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)

    @staticmethod
    def from_json(text: str) -> Report:
        """A report saved with ``--json``, to print again (as Markdown for docs/performance.md)."""
        data = json.loads(text)
        scenarios = [
            ScenarioResult(s["name"], [Figure(**f) for f in s["figures"]], s["facts"])
            for s in data["scenarios"]
        ]
        return Report(data["machine"], data["command"], data["runs"], scenarios)

    def table(self) -> str:
        header = ("scenario", "measure", "pgsweep", "baseline", "ratio", "target", "met")
        rows: list[tuple[str, ...]] = []
        for scenario in self.scenarios:
            for f in scenario.figures:
                baseline = "" if f.baseline is None else _value(f.baseline, f.unit)
                if f.baseline is not None and f.baseline_name != "plain":
                    baseline += f" ({f.baseline_name})"
                rows.append(
                    (
                        f.scenario,
                        f.measure,
                        _value(f.pgsweep, f.unit),
                        baseline,
                        "" if f.ratio is None else f"{_num(f.ratio)}{f.ratio_label}",
                        f.target,
                        {None: "", True: "yes", False: "NO"}[f.met],
                    )
                )
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
        lines.append("-+-".join("-" * w for w in widths))
        lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(lines)

    def markdown(self) -> str:
        """The same table as Markdown, for docs/performance.md."""
        lines = ["| scenario | measure | pgsweep | plain / baseline | ratio | target | met |"]
        lines.append("|---|---|---:|---:|---:|---|---|")
        for scenario in self.scenarios:
            for f in scenario.figures:
                baseline = "" if f.baseline is None else _value(f.baseline, f.unit)
                if f.baseline is not None and f.baseline_name != "plain":
                    baseline += f" ({f.baseline_name})"
                ratio = "" if f.ratio is None else f"{_num(f.ratio)}{f.ratio_label}"
                met = {None: "", True: "yes", False: "**no**"}[f.met]
                lines.append(
                    f"| {f.scenario} | {f.measure} | {_value(f.pgsweep, f.unit)} | {baseline}"
                    f" | {ratio} | {f.target} | {met} |"
                )
        return "\n".join(lines)


    def growth_markdown(self) -> str:
        """S1 and S2 per table size: pgsweep's cost against the rows it deletes."""
        growth = next((s for s in self.scenarios if s.name == "growth"), None)
        if growth is None:
            return ""
        lines = [
            "| live rows per table | S1 pgsweep | S1 plain | S2 rows deleted | S2 pgsweep"
            " | S2 plain | pgsweep per 1,000 rows deleted |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        sizes = sorted({int(key.split("_", 1)[1]) for key in growth.facts})
        for rows in sizes:
            s1 = growth.facts.get(f"S1_{rows}", {})
            s2 = growth.facts.get(f"S2_{rows}", {})
            deleted = int(s2.get("rows_deleted", 0))
            per_1000 = s2["pgsweep_ms"] / deleted * 1000 if deleted else None
            lines.append(
                f"| {rows:,} | {_ms(s1.get('pgsweep_ms'))} | {_ms(s1.get('plain_ms'))}"
                f" | {deleted:,} | {_ms(s2.get('pgsweep_ms'))} | {_ms(s2.get('plain_ms'))}"
                f" | {_ms(per_1000)} |"
            )
        return "\n".join(lines)


def _value(value: float, unit: str) -> str:
    """A measured value with its unit; a bare count (no unit) as a whole number."""
    return f"{value:,.0f}" if not unit else f"{_num(value)} {unit}"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{_num(value)} ms"


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 of [1, 2, 3, 4] is 2; max is percentile 1.0)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"
