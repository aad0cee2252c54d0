#!/usr/bin/python3
"""Plot one column of an lpu sweep's CSV against another (docs/sweep.md).

    sweep_plot.py --csv DIR/sweep.csv --x COL --y COL [--series COL] [--param COL ...] --out FILE.png|.svg

Rows whose status is not "ok" are left out. One line per value of --series; swept parameters
(--param) other than X and SERIES that take several values also split the lines, so that a
line never mixes points of different settings. X is numeric when every value parses as a
number, else categorical (in order of appearance). Uses matplotlib (Debian: python3-matplotlib).
"""
import argparse
import csv
import sys


def number(s):
    try:
        return float(s)
    except ValueError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--x", required=True)
    ap.add_argument("--y", required=True)
    ap.add_argument("--series", default="")
    ap.add_argument("--param", action="append", default=[], help="a swept parameter column (repeatable)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="")
    ap.add_argument("--logx", action="store_true")
    ap.add_argument("--logy", action="store_true")
    a = ap.parse_args()

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("sweep_plot.py: matplotlib is missing (apt-get install python3-matplotlib; scripts/setup.sh installs it)")

    with open(a.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    cols = rows[0].keys() if rows else []
    for c in [a.x, a.y] + ([a.series] if a.series else []):
        if rows and c not in cols:
            sys.exit(f"sweep_plot.py: no column '{c}' in {a.csv}")
    rows = [r for r in rows if r.get("status") == "ok" and r[a.y] != ""]
    if not rows:
        sys.exit(f"sweep_plot.py: no successful run with a value of {a.y} in {a.csv}")

    # Lines: SERIES plus every other swept parameter that varies.
    split = [a.series] if a.series else []
    for p in a.param:
        if p not in (a.x, a.series) and len({r[p] for r in rows}) > 1:
            split.append(p)
    numeric_x = all(number(r[a.x]) is not None for r in rows)
    cats = []
    for r in rows:
        if r[a.x] not in cats:
            cats.append(r[a.x])

    lines = {}
    for r in rows:
        key = tuple(r[c] for c in split)
        x = number(r[a.x]) if numeric_x else cats.index(r[a.x])
        lines.setdefault(key, []).append((x, float(r[a.y])))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, pts in lines.items():
        pts.sort()
        label = ", ".join(f"{c}={v}" for c, v in zip(split, key)) if split else None
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    if not numeric_x:
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats)
    if a.logx:
        ax.set_xscale("log")
    if a.logy:
        ax.set_yscale("log")
    ax.set_xlabel(a.x)
    ax.set_ylabel(a.y)
    ax.set_title(a.title or f"{a.y} vs {a.x}", fontsize="medium")
    ax.grid(True, alpha=0.3)
    if split:
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)


if __name__ == "__main__":
    main()
