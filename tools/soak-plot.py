#!/usr/bin/env python3
"""Plots tools/soak.sh's CSV as one SVG (no package beyond python3): RSS, open fds, threads, the GC
heap and packets received a second, each against time, one panel each, with min/max labelled.

    tools/soak-plot.py soak.csv soak.svg
"""
import csv
import sys
from xml.sax.saxutils import escape

PANELS = [("rss_kb", "RSS (kB)"), ("fds", "open fds"), ("threads", "threads"),
          ("gc_heap_kb", "GC heap (kB)"), ("rx_pps", "packets received / s")]
W, H, LEFT, RIGHT, TOP, GAP = 900, 150, 90, 20, 30, 40


def number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def main(src, dst):
    rows = list(csv.DictReader(open(src)))
    if not rows:
        sys.exit(f"soak-plot: {src} has no samples")
    t = [number(r["t"]) or 0.0 for r in rows]
    series = {k: [number(r.get(k)) for r in rows] for k, _ in PANELS if k != "rx_pps"}
    rx = [number(r.get("rx_packets")) for r in rows]
    # Packets a second from the cumulative counter (a sample missed leaves a gap).
    series["rx_pps"] = [None] + [(b - a) / max(t2 - t1, 1e-9) if a is not None and b is not None and t2 > t1 else None
                                 for a, b, t1, t2 in zip(rx, rx[1:], t, t[1:])]
    t0, t1 = min(t), max(t) or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{TOP + len(PANELS) * (H + GAP)}" '
           f'font-family="sans-serif" font-size="12">',
           f'<text x="{LEFT}" y="18" font-size="14">vswitchd soak: {len(rows)} samples over {t1 - t0:.0f} s ({escape(src)})</text>']
    for i, (key, label) in enumerate(PANELS):
        y0 = TOP + i * (H + GAP) + 10
        vals = [(x, v) for x, v in zip(t, series[key]) if v is not None]
        out.append(f'<rect x="{LEFT}" y="{y0}" width="{W - LEFT - RIGHT}" height="{H}" fill="none" stroke="#999"/>')
        out.append(f'<text x="{LEFT}" y="{y0 - 4}">{escape(label)}</text>')
        if not vals:
            out.append(f'<text x="{LEFT + 10}" y="{y0 + H / 2}">no data</text>')
            continue
        lo, hi = min(v for _, v in vals), max(v for _, v in vals)
        span = (hi - lo) or 1.0

        def px(x):
            return LEFT + (x - t0) / ((t1 - t0) or 1.0) * (W - LEFT - RIGHT)

        def py(v):
            return y0 + H - (v - lo) / span * (H - 10) - 5
        points = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in vals)
        out.append(f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="1.2"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y0 + 12}" text-anchor="end">{hi:.0f}</text>')
        out.append(f'<text x="{LEFT - 6}" y="{y0 + H}" text-anchor="end">{lo:.0f}</text>')
        out.append(f'<text x="{W - RIGHT}" y="{y0 + H + 14}" text-anchor="end">{t1 - t0:.0f} s</text>')
    out.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: soak-plot.py SOAK.csv OUT.svg")
    main(sys.argv[1], sys.argv[2])
