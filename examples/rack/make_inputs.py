#!/usr/bin/env python3
"""Writes the input data of the rack examples into examples/rack/data (fixed seed, no numpy).

Run: python3 examples/rack/make_inputs.py   (the outputs are checked in)
"""
import os
import random
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def save_npy(name, descr, fmt, shape, values):
    dims = ", ".join("%d" % d for d in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    pad = 64 - (10 + len(header) + 1) % 64
    header += " " * pad + "\n"
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))


rng = random.Random(5)
os.makedirs(HERE, exist_ok=True)
# All-reduce over 8 chips: X[c] is 8 vectors of 80 int32.
for c in range(8):
    save_npy("allreduce_x%d.npy" % c, "<i4", "i", (8, 80), [rng.randint(-1000, 1000) for _ in range(8 * 80)])
# Pipeline over 8 chips: weights in {-1, 0, 1} (sparse), 16 activation vectors of 320 int8.
for c in range(8):
    save_npy("pipeline_w%d.npy" % c, "|i1", "b", (320, 320),
             [rng.choice((-1, 0, 0, 0, 0, 0, 0, 1)) for _ in range(320 * 320)])
save_npy("pipeline_x.npy", "|i1", "b", (16, 320), [rng.randint(-20, 20) for _ in range(16 * 320)])
