#!/usr/bin/env python3
"""Draws the load tool's results as SVG, with no dependencies beyond Python 3.

    scripts/plot_results.py [docs/results/load.json] [out dir, default: next to the JSON]

Writes latency-percentiles.svg (delivery latency p50..max per transport, log scale) and
fanout-p95.svg (broadcast p95 against client count per transport, with the 500 ms limit).
`make results` runs it after the load tool.
"""
import json
import math
import os
import sys
from xml.sax.saxutils import escape

COLOURS = {"ajax": "#d55e00", "longpoll": "#0072b2", "sse": "#009e73", "websocket": "#7b3294"}
DASHES = {"ajax": "", "longpoll": "6 3", "sse": "2 3", "websocket": "10 3 2 3"}
W, H, L, R, T, B = 720, 420, 70, 150, 40, 50


def log_scale(lo, hi):
    lo, hi = math.log10(lo), math.log10(hi)
    return lambda v: T + (H - T - B) * (1 - (math.log10(max(v, 10 ** lo)) - lo) / (hi - lo))


def frame(title, xlabel, ylabel, yticks, y):
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="13">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="22" font-size="16" font-weight="bold">{escape(title)}</text>',
           f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">{escape(xlabel)}</text>',
           f'<text x="16" y="{(T + H - B) / 2}" transform="rotate(-90 16 {(T + H - B) / 2})" '
           f'text-anchor="middle">{escape(ylabel)}</text>']
    for v, label in yticks:
        yy = y(v)
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{yy + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H - B}" stroke="#333"/>')
    out.append(f'<line x1="{L}" x2="{W - R}" y1="{H - B}" y2="{H - B}" stroke="#333"/>')
    return out


def legend(out, names):
    for i, name in enumerate(names):
        yy = T + 10 + 22 * i
        out.append(f'<line x1="{W - R + 14}" x2="{W - R + 44}" y1="{yy}" y2="{yy}" stroke="{COLOURS.get(name, "#333")}" '
                   f'stroke-width="3" stroke-dasharray="{DASHES.get(name, "")}"/>')
        out.append(f'<text x="{W - R + 50}" y="{yy + 4}">{escape(name)}</text>')


def line(out, name, pts):
    d = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(pts))
    c = COLOURS.get(name, "#333")
    out.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="2.5" stroke-dasharray="{DASHES.get(name, "")}"/>')
    for x, y in pts:
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{c}"/>')


TICKS_MS = [(0.1, "0.1 ms"), (1, "1 ms"), (10, "10 ms"), (100, "100 ms"), (1000, "1 s"), (10000, "10 s")]


def latency_svg(data):
    rows = [r for r in data.get("latency", []) if r.get("scheduled_to_received", {}).get("count")]
    keys = [("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"), ("p999_ms", "p99.9"), ("max_ms", "max")]
    vals = [r["scheduled_to_received"][k] for r in rows for k, _ in keys]
    lo = 10 ** math.floor(math.log10(max(min(vals), 0.1))) if vals else 0.1
    hi = 10 ** math.ceil(math.log10(max(vals))) if vals else 1000
    y = log_scale(lo, hi)
    out = frame("Click → event delivery latency per transport", "percentile",
                "latency (log scale)", [t for t in TICKS_MS if lo <= t[0] <= hi], y)
    xs = [L + 30 + i * (W - R - L - 60) / (len(keys) - 1) for i in range(len(keys))]
    for x, (_, label) in zip(xs, keys):
        out.append(f'<text x="{x:.1f}" y="{H - B + 18}" text-anchor="middle">{label}</text>')
    for r in rows:
        line(out, r["transport"], [(x, y(r["scheduled_to_received"][k])) for x, (k, _) in zip(xs, keys)])
    legend(out, [r["transport"] for r in rows])
    out.append("</svg>")
    return "\n".join(out)


def fanout_svg(data):
    runs = data.get("fanout", [])
    pts = [(s["clients"], s["broadcast"]["p95_ms"]) for run in runs for s in run.get("steps", []) if s.get("broadcast", {}).get("count")]
    if not pts:
        return None
    cmax = max(c for c, _ in pts)
    vmax = max(max(v for _, v in pts), 500)
    y = log_scale(1, 10 ** math.ceil(math.log10(vmax)))
    x = lambda c: L + 20 + (W - R - L - 40) * (math.log10(c) - 3) / max(math.log10(cmax) - 3, 0.5)
    out = frame("Fan-out: broadcast p95 against connected clients", "clients (log scale)",
                "broadcast p95 (log scale)", [t for t in TICKS_MS if 1 <= t[0] <= 10 ** math.ceil(math.log10(vmax))], y)
    for c in sorted({c for c, _ in pts}):
        out.append(f'<text x="{x(c):.1f}" y="{H - B + 18}" text-anchor="middle">{c:,}</text>')
    ly = y(500)
    out.append(f'<line x1="{L}" x2="{W - R}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="#c00" stroke-dasharray="4 4"/>')
    out.append(f'<text x="{L + 6}" y="{ly - 6:.1f}" fill="#c00">500 ms limit</text>')
    for run in runs:
        steps = [s for s in run.get("steps", []) if s.get("broadcast", {}).get("count")]
        if steps:
            line(out, run["transport"], [(x(s["clients"]), y(s["broadcast"]["p95_ms"])) for s in steps])
    legend(out, [run["transport"] for run in runs])
    out.append("</svg>")
    return "\n".join(out)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "docs/results/load.json"
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(src)
    data = json.load(open(src))
    written = []
    for name, svg in [("latency-percentiles.svg", latency_svg(data)), ("fanout-p95.svg", fanout_svg(data))]:
        if svg:
            path = os.path.join(out_dir, name)
            with open(path, "w") as f:
                f.write(svg)
            written.append(path)
    print("plot_results: wrote " + ", ".join(written))


if __name__ == "__main__":
    main()
