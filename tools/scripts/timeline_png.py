#!/usr/bin/env python3
"""Render a timeline written by `lpu run --trace` as a picture (one row per queue; C2C
transfers of rack runs as arrows from the SEND to the RECV).

Usage: timeline_png.py trace.json out.png [--title TEXT]
For interactive viewing open the JSON in ui.perfetto.dev or chrome://tracing instead.
Needs python3-matplotlib (installed by scripts/setup.sh).
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("png")
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    with open(a.trace) as f:
        ev = json.load(f)["traceEvents"]
    names = {}
    for e in ev:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            names[(e["pid"], e["tid"])] = e["args"]["name"]
    spans = [e for e in ev if e.get("ph") == "X"]
    rows = sorted({(e["pid"], e["tid"]) for e in spans}, key=lambda k: (k[0], names.get(k, "")))
    colours = {"mem": "#4c72b0", "vxm": "#dd8452", "mxm": "#55a868", "sxm": "#c44e52", "icu": "#8172b2",
               "c2c": "#937860", "dma": "#da8bc3"}
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(rows) + 1.2))
    for y, key in enumerate(rows):
        for e in spans:
            if (e["pid"], e["tid"]) != key:
                continue
            ts, dur = e["ts"] * 1000.0, max(e["dur"] * 1000.0, 0.6)  # ns
            ax.barh(y, dur, left=ts, height=0.6, color=colours.get(e.get("cat"), "#999999"), edgecolor="black")
            label = e["args"].get("instruction", e["name"])
            if "repeat" in e["args"]:
                label += f"  x{e['args']['repeat']}"
            ax.text(ts + dur + 0.1, y, label, va="center", fontsize=8)
    # C2C transfers (rack runs): flow events "s" (at the SEND) and "f" (at the RECV) with one id.
    row_of = {key: y for y, key in enumerate(rows)}
    starts = {e["id"]: e for e in ev if e.get("ph") == "s"}
    for e in ev:
        s = starts.get(e.get("id")) if e.get("ph") == "f" else None
        if s and (s["pid"], s["tid"]) in row_of and (e["pid"], e["tid"]) in row_of:
            ax.annotate("", xy=(e["ts"] * 1000.0, row_of[(e["pid"], e["tid"])]),
                        xytext=(s["ts"] * 1000.0, row_of[(s["pid"], s["tid"])]),
                        arrowprops=dict(arrowstyle="->", color="#333333", lw=0.8))
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"chip {p} {names.get((p, t), t)}" for p, t in rows])
    ax.invert_yaxis()
    ax.set_xlabel("time (ns at the chip clock)")
    ax.grid(axis="x", linestyle=":")
    if a.title:
        ax.set_title(a.title)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)


if __name__ == "__main__":
    main()
