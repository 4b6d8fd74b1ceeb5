"""Draws validation (and training) loss against steps for runs' metrics.jsonl files, one
colour per run, as an SVG. Standard library only.

    python3 scripts/plot_loss_curves.py OUT.svg "TITLE" LABEL=RUN_DIR [LABEL=RUN_DIR ...]
"""
import json
import sys

COLOURS = ["#1971c2", "#d9480f", "#2f9e44", "#ae3ec9"]
W, H, L, R, T, B = 640, 360, 60, 150, 40, 40


def curves(run_dir):
    rows = [json.loads(line) for line in open(f"{run_dir}/metrics.jsonl")]
    return [(r["step"], r["val_loss"]) for r in rows if isinstance(r.get("val_loss"), float)], \
           [(r["step"], r["train_loss"]) for r in rows]


def main(out, title, runs):
    series = [(label, *curves(d)) for label, d in (r.split("=", 1) for r in runs)]
    points = [p for _, v, t in series for p in v + t]
    x0, x1 = 0, max(x for x, _ in points)
    y0, y1 = min(y for _, y in points), max(y for _, y in points)
    y0, y1 = y0 - 0.05 * (y1 - y0), y1 + 0.05 * (y1 - y0)
    sx = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)
    sy = lambda y: H - B - (y - y0) / (y1 - y0) * (H - T - B)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<text x="{L}" y="22" font-size="14">{title}</text>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="#333"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="#333"/>']
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        svg.append(f'<text x="{L - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
        x = x0 + (x1 - x0) * i / 4
        svg.append(f'<text x="{sx(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:.0f}</text>')
    svg.append(f'<text x="{(L + W - R) / 2}" y="{H - 6}" text-anchor="middle">step</text>')
    for k, (label, val, train) in enumerate(series):
        c = COLOURS[k % len(COLOURS)]
        for data, dash, name in ((val, "", "validation"), (train, ' stroke-dasharray="4 3"', "train")):
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in data)
            svg.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="1.6"{dash}/>')
        ly = T + 18 * k
        svg.append(f'<line x1="{W - R + 10}" y1="{ly}" x2="{W - R + 30}" y2="{ly}" stroke="{c}" stroke-width="2"/>')
        svg.append(f'<text x="{W - R + 34}" y="{ly + 4}">{label}: {val[-1][1]:.4f}</text>')
    svg.append(f'<text x="{W - R + 10}" y="{T + 18 * len(series) + 8}" fill="#555">solid: validation</text>')
    svg.append(f'<text x="{W - R + 10}" y="{T + 18 * len(series) + 24}" fill="#555">dashed: train</text>')
    svg.append("</svg>")
    open(out, "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
