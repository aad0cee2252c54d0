#!/usr/bin/env python3
"""Compare, cycle by cycle, the signals that two waveforms share (same dotted path and width):
the model's VCD (lpu run --wave) against the RTL's (lpu run --rtl --wave x.vcd, or lpu_lockstep
--wave), or two model runs. Both use 1 ns per cycle (docs/waveforms.md); each file is sampled at
c ns for cycle c (the RTL's values change on the clock edge half a cycle earlier).

    tools/scripts/vcd_compare.py model.vcd rtl.vcd [--cycles N] [--values]

Stream register values (sv[p].dir[d].st[s].value) are compared only where the RTL's valid bit
is 1, and only with --values (data from DMA or links differ unless both runs were given the
same inputs); *_d data buses likewise. Prints the first differences and a summary; exit status
1 when something differs. Reads FST too when fst2vcd (gtkwave) is installed.
"""
import argparse
import bisect
import subprocess
import sys


def parse(path):
    if path.endswith(".fst"):
        text = subprocess.run(["fst2vcd", path], check=True, capture_output=True, text=True).stdout.splitlines()
    else:
        text = open(path)
    ids, scopes, changes, scale = {}, [], {}, 1
    t, defs, in_timescale = 0, True, False
    for line in text:
        tok = line.split()
        if not tok:
            continue
        if defs:
            if tok[0] == "$timescale" or in_timescale:
                words = [w for w in tok if w not in ("$timescale", "$end")]
                in_timescale = "$end" not in tok
                if words:
                    unit = "".join(words)
                    num = int("".join(ch for ch in unit if ch.isdigit()) or 1)
                    scale = num * {"s": 10**12, "ms": 10**9, "us": 10**6, "ns": 10**3, "ps": 1, "fs": 1}[unit.lstrip("0123456789")]
            elif tok[0] == "$scope":
                scopes.append(tok[2])
            elif tok[0] == "$upscope":
                scopes.pop()
            elif tok[0] == "$var":
                width = int(tok[2])
                ids.setdefault(tok[3], []).append((".".join(scopes + [tok[4]]), width))
            elif tok[0] == "$enddefinitions":
                defs = False
            continue
        c = tok[0][0]
        if c == "#":
            t = int(tok[0][1:]) * scale  # in ps
        elif c in "bBrR":
            changes.setdefault(tok[1], []).append((t, tok[0][1:]))
        elif c in "01xXzZ":
            changes.setdefault(tok[0][1:], []).append((t, c))
    sig = {}
    for i, names in ids.items():
        ch = changes.get(i, [])
        for n, w in names:
            sig[n] = (w, [x[0] for x in ch], [x[1] for x in ch])
    return sig


def value(sig, t):
    w, times, vals = sig
    k = bisect.bisect_right(times, t) - 1
    if k < 0:
        return None
    v = vals[k].lower()
    return "x" if ("x" in v or "z" in v) else int(v, 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--cycles", type=int, default=0, help="cycles to compare (default: to the end of the shorter file)")
    ap.add_argument("--values", action="store_true", help="compare stream register values and data buses too")
    ap.add_argument("--show", type=int, default=20, help="differences to print")
    o = ap.parse_args()
    a, b = parse(o.a), parse(o.b)
    common = sorted(n for n in set(a) & set(b) if a[n][0] == b[n][0])
    if not common:
        print("no signals in common (same dotted path and width)")
        return 1
    end = min(max((s[1][-1] for s in x.values() if s[1]), default=0) for x in (a, b))
    cycles = o.cycles or end // 1000 + 1
    bad, checked, per = 0, 0, {}
    for n in common:
        data = n.endswith(".value") or n.endswith("_d")
        if data and not o.values:
            continue
        valid = n[: -len("value")] + "valid" if n.endswith(".value") else None
        for c in range(cycles):
            t = c * 1000
            if valid and valid in b and value(b[valid], t) != 1:
                continue
            x, y = value(a[n], t), value(b[n], t)
            checked += 1
            if x != y:
                bad += 1
                per[n.split(".")[-1]] = per.get(n.split(".")[-1], 0) + 1
                if bad <= o.show:
                    fx = hex(x) if isinstance(x, int) else x
                    fy = hex(y) if isinstance(y, int) else y
                    print(f"cycle {c}: {n}: {fx} vs {fy}")
    print(f"{len(common)} signals in common, {checked} signal-cycles compared over {cycles} cycles, "
          f"{bad} differences" + (f" {per}" if per else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
