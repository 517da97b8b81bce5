#!/usr/bin/env python3
"""Draws `clickgame-load --peer` results as one SVG, with no dependencies beyond Python 3.

    scripts/plot_compare.py [docs/results/compare-peers/compare.json] [out.svg]

Three panels — time to the last recipient (p95), server CPU per delivered event, RSS per idle
connection — each with a bar per server and transport, and the ratio peer ÷ clickgame written
above each pair (above 1: clickgame is faster, cheaper or smaller). `make compare-peers` runs
it; the default output is compare.svg next to the JSON.
"""
import json
import os
import sys
from xml.sax.saxutils import escape

PANELS = [
    ("time to last recipient p95", "ms", "p95 time to last recipient (ms)"),
    ("server CPU per delivered event", "µs", "server CPU per delivered event (µs)"),
    ("RSS per idle connection", "KiB", "RSS per idle connection (KiB)"),
]
COLOURS = {"clickgame": "#7b3294", "peer": "#e08214"}
PW, H, T, B, GAP = 270, 360, 70, 60, 30


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "docs/results/compare-peers/compare.json"
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(src), "compare.svg")
    with open(src) as f:
        report = json.load(f)
    comp = report["comparison"]
    peer = comp["peer"]
    rows = comp["rows"]
    transports = sorted({r["transport"] for r in rows}, key=lambda t: (t != "websocket", t))
    width = 20 + len(PANELS) * (PW + GAP)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H}" '
           f'viewBox="0 0 {width} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{H}" fill="white"/>',
           f'<text x="20" y="22" font-size="15" font-weight="bold">clickgame vs {escape(peer)}: '
           f'{comp["fanout_clients"]} spectators, {comp["idle_clients"]} idle connections '
           f'(median of {comp["repeat"]})</text>']
    # Legend.
    for i, (key, label) in enumerate([("clickgame", "clickgame"), ("peer", peer)]):
        x = 20 + i * 140
        svg.append(f'<rect x="{x}" y="32" width="14" height="14" fill="{COLOURS[key]}"/>')
        svg.append(f'<text x="{x + 20}" y="44">{escape(label)}</text>')
    for p, (figure, unit, title) in enumerate(PANELS):
        x0 = 20 + p * (PW + GAP)
        values = {}
        for r in rows:
            if r["figure"] == figure:
                values[r["transport"]] = r
        top = max([v for r in values.values() for v in (r["clickgame"], r["peer"]) if v] or [1])
        scale = (H - T - B - 40) / top
        base = H - B
        svg.append(f'<text x="{x0 + PW / 2}" y="{T + 8}" text-anchor="middle" font-weight="bold">'
                   f'{escape(title)}</text>')
        svg.append(f'<line x1="{x0}" x2="{x0 + PW}" y1="{base}" y2="{base}" stroke="#333"/>')
        group = PW / max(len(transports), 1)
        for g, t in enumerate(transports):
            r = values.get(t)
            if not r:
                continue
            gx = x0 + g * group + group / 2
            for k, key in enumerate(["clickgame", "peer"]):
                v = r[key]
                if v is None:
                    continue
                h = v * scale
                bx = gx - 34 + k * 36
                svg.append(f'<rect x="{bx:.1f}" y="{base - h:.1f}" width="32" height="{h:.1f}" '
                           f'fill="{COLOURS[key]}"/>')
                svg.append(f'<text x="{bx + 16:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" '
                           f'font-size="11">{v:.1f}</text>')
            svg.append(f'<text x="{gx:.1f}" y="{base + 16}" text-anchor="middle">{escape(t)}</text>')
            if r["ratio"] is not None:
                colour = "#1a7f37" if r.get("met") else ("#b00020" if r.get("met") is False else "#333")
                svg.append(f'<text x="{gx:.1f}" y="{base + 34}" text-anchor="middle" fill="{colour}">'
                           f'{escape(peer)} ÷ cg = {r["ratio"]:.2f}×</text>')
                if r.get("target"):
                    svg.append(f'<text x="{gx:.1f}" y="{base + 50}" text-anchor="middle" '
                               f'font-size="10" fill="#555">wants {escape(r["target"].replace(", and clickgame", ", cg"))}</text>')
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
