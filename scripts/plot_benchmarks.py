"""Draws docs/benchmarks.svg from the output of scripts/benchmarks.sh: Ember's speed over
PyTorch's per benchmark (bars) against the performance targets (ticks), and peak memory; then
prints each target of the product and bf16 issues with the ratio this run measured.
Standard library only.

    python3 scripts/plot_benchmarks.py .build/benchmarks.txt docs/benchmarks.svg
"""
import re
import statistics
import sys

TARGETS = {("seednet", 1): 5.0, ("mlp", 1): 2.0, ("cnn", 1): 1.5, ("gpt", 1): 1.2, ("lstm", 1): 1.0, ("mlp", 2): 3.0}
# bf16 autocast against PyTorch's, on a CPU with AMX; without AMX, against Ember's own float32.
BF16_AMX = {"gpt": 2.0, "lstm": 1.5, "cnn": 1.5}
BF16_OWN = {"gpt": 1.3, "lstm": 1.3}


def parse(path):
    """Rows keyed by (model, world) for float32 and (model, world, "bf16") for bf16 autocast."""
    ember, torch, scaling, units = {}, {}, {}, None
    for line in open(path):
        m = re.match(r"^scaling(-\w+)? mlp .*ratio=([\d.]+)", line)
        if m:
            scaling.setdefault(m.group(1) or "", []).append(float(m.group(2)))
            continue
        m = re.match(r"^(seednet|mlp|cnn|gpt|lstm) world=(\d+) .*samples_per_s=(\d+).*peak_rss_mb=([\d.]+)", line)
        if not m:
            continue  # headers, "pinned"/"forced"/"memory" reference rows, loader and allreduce lines
        key = (m.group(1), int(m.group(2))) + (("bf16",) if "precision=bf16" in line else ())
        (ember if "products=" in line else torch)[key] = (float(m.group(3)), float(m.group(4)))
        u = re.search(r"bf16_units=(\w+)", line)
        units = u.group(1) if u and "products=" in line else units
    return ember, torch, scaling, units


def targets(ember, torch, scaling, units):
    """(what, measured ratio, target) for every target this run measured."""
    rows = []
    for (model, world), goal in TARGETS.items():
        # seednet's (per-op overhead) belongs to an earlier round; the product issue names the rest.
        if model != "seednet" and world == 1 and (model, 1) in ember and (model, 1) in torch:
            rows.append((f"{model} fp32 ÷ PyTorch fp32", ember[(model, 1)][0] / torch[(model, 1)][0], goal))
    if scaling.get(""):
        rows.append(("mlp 2 ranks ÷ 1 (median of the rounds)", statistics.median(scaling[""]), 1.8))
    if ("gpt", 2) in ember and ("gpt", 1) in ember:
        rows.append(("gpt 2 ranks ÷ 1", ember[("gpt", 2)][0] / ember[("gpt", 1)][0], 1.8))
    bf16 = lambda m: ember.get((m, 1, "bf16"), (None,))[0]
    if units == "amx":
        for model, goal in BF16_AMX.items():
            if bf16(model) and (model, 1, "bf16") in torch:
                rows.append((f"{model} bf16 ÷ PyTorch bf16 (AMX)", bf16(model) / torch[(model, 1, "bf16")][0], goal))
    else:
        for model, goal in BF16_OWN.items():
            if bf16(model) and (model, 1) in ember:
                rows.append((f"{model} bf16 ÷ own fp32 ({units or 'no bf16 units'})", bf16(model) / ember[(model, 1)][0], goal))
    if bf16("mlp") and ("mlp", 1) in ember:
        rows.append(("mlp bf16 ÷ own fp32", bf16("mlp") / ember[("mlp", 1)][0], 1.0))
    return rows


def bars(rows, x0, y0, width, scale_max, colour, label_fmt):
    """Horizontal bars with a value label; returns SVG elements."""
    out = []
    for i, (name, value, target) in enumerate(rows):
        y = y0 + i * 34
        w = width * min(value, scale_max) / scale_max
        out.append(f'<text x="{x0 - 8}" y="{y + 17}" text-anchor="end">{name}</text>')
        out.append(f'<rect x="{x0}" y="{y + 4}" width="{w:.1f}" height="20" fill="{colour}"/>')
        out.append(f'<text x="{x0 + w + 6:.1f}" y="{y + 19}">{label_fmt(value)}</text>')
        if target:
            tx = x0 + width * target / scale_max
            out.append(f'<line x1="{tx:.1f}" y1="{y}" x2="{tx:.1f}" y2="{y + 28}" stroke="#c0392b" stroke-width="2"/>')
    return out


def main(src, dst):
    ember, torch, scaling, units = parse(src)
    speed = []
    for key in [("seednet", 1), ("mlp", 1), ("cnn", 1), ("gpt", 1), ("lstm", 1), ("mlp", 2), ("cnn", 2)]:
        if key in ember and key in torch:
            name = f"{key[0]}, {key[1]} rank{'s' if key[1] > 1 else ''}"
            speed.append((name, ember[key][0] / torch[key][0], TARGETS.get(key)))
    # Ember's two ranks against its one, medians of the alternating rounds.
    labels = {"": "", "-unsharded": ", unsharded", "-mpi": ", unsharded, MPI only"}
    for variant, ratios in scaling.items():
        speed.append((f"Ember mlp 2÷1 ranks{labels.get(variant, variant)}", statistics.median(ratios), 1.7))
    if not scaling and ("mlp", 2) in ember and ("mlp", 1) in ember:
        speed.append(("mlp 2 ranks ÷ 1 (Ember)", ember[("mlp", 2)][0] / ember[("mlp", 1)][0], 1.7))
    memory = [(f"{k[0]}, {k[1]} rank{'s' if k[1] > 1 else ''}", torch[k][1] / ember[k][1], 3.0)
              for k in sorted(ember) if k in torch]
    x0, width = 300, 350
    top = 60
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="720" height="{top + 34 * (len(speed) + len(memory)) + 74}" '
           'font-family="sans-serif" font-size="13">',
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="20" y="28" font-size="16" font-weight="bold">Ember ÷ PyTorch, same machine, one run (samples/s)</text>',
           '<text x="20" y="46" fill="#555">red ticks: targets of the performance issue; "2÷1 ranks": Ember against itself, median of the rounds</text>']
    svg += bars(speed, x0, top, width, max(6.5, max((s[1] for s in speed), default=1) * 1.1), "#2e86c1", lambda v: f"{v:.2f}×")
    y = top + 34 * len(speed) + 40
    svg.append(f'<text x="20" y="{y}" font-size="16" font-weight="bold">PyTorch peak memory ÷ Ember peak memory</text>')
    svg += bars(memory, x0, y + 14, width, max((m[1] for m in memory), default=1) * 1.1, "#27ae60", lambda v: f"{v:.0f}×")
    svg.append("</svg>")
    open(dst, "w").write("\n".join(svg) + "\n")
    for what, ratio, goal in targets(ember, torch, scaling, units):
        print(f"target {what}: {ratio:.2f}× (≥ {goal}×) {'holds' if ratio >= goal else 'MISSED'}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
