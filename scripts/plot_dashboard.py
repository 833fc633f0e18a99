#!/usr/bin/env python3
"""Draw the Grafana dashboard's panels from a recorded run of its test, as one SVG.

    PGSWEEP_DASHBOARD_RECORD=docs/dashboard.json \\
        .venv/bin/pytest -q -p no:xdist tests/test_dashboard.py
    python3 scripts/plot_dashboard.py docs/dashboard.json docs/dashboard.svg

Grafana cannot run here, so this is not a screenshot: it lays the panels out as the dashboard's
``gridPos`` does (24 columns), draws every series each panel's queries returned from the
Prometheus that scraped the scenario (range queries, a point a second), and prints the stat
panels' last values. Dashed lines are the series the dashboard draws dashed (its overrides).
Plain SVG written by hand, the standard library only (as scripts/plot_scenario.py).
"""

from __future__ import annotations

import json
import re
import sys
from html import escape
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parent.parent / "grafana" / "pgsweep-dashboard.json"
COLUMN, UNIT_H, MARGIN = 50.0, 30.0, 6.0  # px per grid column and row, gap between panels
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def _nice(top: float) -> float:
    for power in range(-3, 13):
        for step in (1, 2, 5):
            value = step * 10.0**power
            if value >= top:
                return value
    return top


def human(value: float, unit: str) -> str:
    if unit == "bytes":
        for size, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= size:
                return f"{value / size:.3g} {name}"
        return f"{value:.0f} B"
    if unit == "s":
        if abs(value) >= 86400:
            return f"{value / 86400:.3g} d"
        if abs(value) >= 3600:
            return f"{value / 3600:.3g} h"
        return f"{value:.3g} s" if abs(value) >= 1 or value == 0 else f"{value * 1000:.3g} ms"
    if abs(value) >= 1000:
        return f"{value / 1000:.3g}k"
    return f"{value:.3g}"


def legend(template: str, metric: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), template)
    return text.strip() or "value"


def _dashed(panel: dict[str, Any]) -> list[str]:
    patterns = []
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        props = {p["id"] for p in override["properties"]}
        if override["matcher"]["id"] == "byRegexp" and "custom.lineStyle" in props:
            patterns.append(override["matcher"]["options"].strip("/"))
    return patterns


def _box(x: float, y: float, w: float, h: float, title: str) -> list[str]:
    return [
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="3" fill="#fff"'
        ' stroke="#ccc"/>',
        f'<text x="{x + 8:.1f}" y="{y + 16:.1f}" font-size="12" font-weight="bold">'
        f"{escape(title)}</text>",
    ]


def stat(panel: dict[str, Any], recorded: dict[str, Any], x: float, y: float, w: float,
         h: float) -> list[str]:  # fmt: skip
    out = _box(x, y, w, h, panel["title"])
    values = []
    for target in recorded["targets"]:
        for series in target["series"]:
            value = float(series["values"][-1][1])
            name = legend(target["legend"], series["metric"])
            if panel.get("options", {}).get("textMode") == "name":
                values.append(name)
            else:
                mapped = {"0": "NO", "1": "yes"} if "mappings" in json.dumps(panel) else {}
                shown = mapped.get(f"{value:g}", human(value, recorded["unit"]))
                values.append(shown if name == "value" else f"{name}: {shown}")
    size = 22 if len(values) == 1 and len(values[0]) < 12 else 12
    for i, text in enumerate(values):
        out.append(f'<text x="{x + w / 2:.1f}" y="{y + 30 + size + i * (size + 4):.1f}"'
                   f' font-size="{size}" text-anchor="middle">{escape(text)}</text>')  # fmt: skip
    return out


def timeseries(panel: dict[str, Any], recorded: dict[str, Any], start: float, x: float,
               y: float, w: float, h: float) -> list[str]:  # fmt: skip
    out = _box(x, y, w, h, panel["title"])
    lines = [(legend(t["legend"], s["metric"]), [(float(a) - start, float(v)) for a, v in
              s["values"]]) for t in recorded["targets"] for s in t["series"]]  # fmt: skip
    legend_rows = (len(lines) + 1) // 2
    left, right, top = x + 58, x + w - 10, y + 26
    bottom = y + h - 22 - 14 * legend_rows
    t_end = max((p[0] for _, pts in lines for p in pts), default=1.0) or 1.0
    v_top = _nice(max((p[1] for _, pts in lines for p in pts), default=1.0) * 1.05 or 1.0)
    unit = recorded["unit"]
    for k in range(5):
        value = v_top * k / 4
        py = bottom - (bottom - top) * k / 4
        out.append(f'<line x1="{left:.1f}" y1="{py:.1f}" x2="{right:.1f}" y2="{py:.1f}"'
                   ' stroke="#eee"/>')  # fmt: skip
        out.append(f'<text x="{left - 4:.1f}" y="{py + 4:.1f}" font-size="10"'
                   f' text-anchor="end">{escape(human(value, unit))}</text>')  # fmt: skip
    step = 5 if t_end <= 40 else 10
    for t in range(0, int(t_end) + 1, step):
        px = left + (right - left) * t / t_end
        out.append(f'<text x="{px:.1f}" y="{bottom + 12:.1f}" font-size="10"'
                   f' text-anchor="middle">{t} s</text>')  # fmt: skip
    dashed = _dashed(panel)
    for i, (name, points) in enumerate(lines):
        colour = COLOURS[i % len(COLOURS)]
        dash = ' stroke-dasharray="6,4"' if any(re.search(p, name) for p in dashed) else ""
        path = " ".join(f"{left + (right - left) * t / t_end:.1f},"
                        f"{bottom - (bottom - top) * min(v, v_top) / v_top:.1f}"
                        for t, v in points)  # fmt: skip
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8"{dash}'
                   f' points="{path}"/>')  # fmt: skip
        lx = x + 10 + (i % 2) * (w / 2)
        ly = bottom + 28 + (i // 2) * 14
        out.append(f'<line x1="{lx:.1f}" y1="{ly - 4:.1f}" x2="{lx + 14:.1f}" y2="{ly - 4:.1f}"'
                   f' stroke="{colour}" stroke-width="2"{dash}/>')  # fmt: skip
        out.append(f'<text x="{lx + 18:.1f}" y="{ly:.1f}" font-size="10">{escape(name)}</text>')
    return out


def render(record: dict[str, Any], dashboard: dict[str, Any]) -> str:
    by_title = {p["title"]: p for p in record["panels"]}
    width = 24 * COLUMN
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    height = 40 + bottom * UNIT_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}"'
        ' font-family="sans-serif">',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#f4f5f5"/>',
        f'<text x="8" y="22" font-size="15" font-weight="bold">{escape(dashboard["title"])}'
        f" (rendered from the falling-behind scenario's Prometheus data,"
        f" {record['end'] - record['start']:.0f} s; not a Grafana screenshot)</text>",
    ]
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        x, y = grid["x"] * COLUMN + MARGIN / 2, 32 + grid["y"] * UNIT_H + MARGIN / 2
        w, h = grid["w"] * COLUMN - MARGIN, grid["h"] * UNIT_H - MARGIN
        if panel["type"] == "row":
            out.append(f'<text x="{x + 2:.1f}" y="{y + 18:.1f}" font-size="13"'
                       f' fill="#444">{escape(panel["title"])}</text>')  # fmt: skip
        else:
            recorded = {**by_title[panel["title"]],
                        "unit": panel["fieldConfig"]["defaults"].get("unit", "")}  # fmt: skip
            if panel["type"] == "stat":
                out += stat(panel, recorded, x, y, w, h)
            else:
                out += timeseries(panel, recorded, record["start"], x, y, w, h)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: plot_dashboard.py RECORD.json OUT.svg", file=sys.stderr)
        return 2
    record = json.loads(Path(argv[0]).read_text())
    Path(argv[1]).write_text(render(record, json.loads(DASHBOARD.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
