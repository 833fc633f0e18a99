#!/usr/bin/env python3
"""Draw the expiry lag and the backlog of a recorded run of the falling-behind scenario as SVG.

    PGSWEEP_SCENARIO_RECORD=docs/scenario-lag.json \\
        .venv/bin/pytest -q tests/test_scenario_falling_behind.py
    python3 scripts/plot_scenario.py docs/scenario-lag.json docs/scenario-lag.svg

Two panels over the same time axis: the lag (seconds) with its target, and the garbage waiting
(rows); the phases shaded. Plain SVG written by hand (about 100 lines, no plotting library to
install for one small figure); the standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

WIDTH, PANEL, GAP, LEFT, RIGHT, TOP = 640, 150, 40, 60, 20, 30


def _nice(top: float) -> float:
    for power in range(-2, 7):
        for step in (1, 2, 5):
            value = step * 10.0**power
            if value >= top:
                return value
    return top


def _polyline(points: list[tuple[float, float]], colour: str) -> str:
    text = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{text}"/>'


def render(record: dict[str, Any]) -> str:
    samples = record["samples"]
    target = float(record["lag_target_s"])
    t_end = max(s["t"] for s in samples) or 1.0
    plot_w = WIDTH - LEFT - RIGHT
    height = TOP + 2 * PANEL + GAP + 40

    def x(t: float) -> float:
        return LEFT + plot_w * t / t_end

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">A cleanup that falls'
        " behind, then catches up (pgsweep scenario)</text>",
    ]
    # Shade the phase where the writers outpace the cleanup.
    behind = [s["t"] for s in samples if s["phase"] == "behind"]
    if behind:
        out.append(
            f'<rect x="{x(0):.1f}" y="{TOP}" width="{x(max(behind)) - x(0):.1f}"'
            f' height="{2 * PANEL + GAP}" fill="#fbe9e7"/>'
        )
        out.append(
            f'<text x="{x(0) + 4:.1f}" y="{TOP + 12}" fill="#bf360c">writers ~400 rows/s'
            ", cleanup at most ~200</text>"
        )
        out.append(
            f'<text x="{x(max(behind)) + 4:.1f}" y="{TOP + PANEL + GAP + 12}"'
            ' fill="#1b5e20">writers ~20 rows/s: the cleanup catches up</text>'
        )
    panels = [
        ("expiry lag (s)", "lag_s", "#c62828", target),
        ("garbage waiting (rows)", "garbage", "#1565c0", None),
    ]
    for i, (label, key, colour, line) in enumerate(panels):
        y0 = TOP + i * (PANEL + GAP)
        top = _nice(max([float(s[key]) for s in samples] + [line or 0]) * 1.1 or 1)

        def y(v: float, y0: float = y0, top: float = top) -> float:
            return y0 + PANEL - PANEL * v / top

        out.append(
            f'<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL}" fill="none"'
            ' stroke="#999"/>'
        )
        for tick in (0, top / 2, top):
            out.append(
                f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>'
            )
        out.append(
            f'<text x="12" y="{y0 + PANEL / 2:.1f}" transform="rotate(-90 12'
            f' {y0 + PANEL / 2:.1f})" text-anchor="middle">{label}</text>'
        )
        if line is not None:
            out.append(
                f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(line):.1f}" y2="{y(line):.1f}"'
                ' stroke="#555" stroke-dasharray="5,4"/>'
            )
            out.append(
                f'<text x="{LEFT + plot_w - 4}" y="{y(line) - 4:.1f}" text-anchor="end">'
                f"lag target {line:g} s</text>"
            )
        out.append(_polyline([(x(s["t"]), y(float(s[key]))) for s in samples], colour))
    # pgsweep health's verdicts, between the panels.
    colours = {"ok": "#2e7d32", "warning": "#f9a825", "critical": "#c62828", "unknown": "#6a1b9a"}
    mid = TOP + PANEL + GAP / 2
    out.append(f'<text x="{LEFT - 6}" y="{mid + 4:.1f}" text-anchor="end">health</text>')
    for t, verdict in record.get("health", []):
        out.append(
            f'<circle cx="{x(t):.1f}" cy="{mid:.1f}" r="5" fill="{colours.get(verdict, "#000")}">'
            f"<title>{verdict.upper()} at {t:.1f} s</title></circle>"
        )
    base = TOP + 2 * PANEL + GAP
    for k in range(int(t_end) + 1):
        out.append(f'<text x="{x(k):.1f}" y="{base + 14}" text-anchor="middle">{k}</text>')
    out.append(
        f'<text x="{LEFT + plot_w / 2}" y="{base + 30}" text-anchor="middle">seconds since'
        " the writers started</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    record = json.loads(Path(argv[0]).read_text())
    Path(argv[1]).write_text(render(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
