#!/usr/bin/env python3
"""Write rtl/lpu_mini.gtkw, the GTKWave layout of an RTL waveform (lpu_lockstep --wave,
RtlChip::set_wave): clock and cycle, errors, every queue (pc, issue, opcode, word), SRAM write
ports, MXM, links and DMA, and the stream registers of every position (collapsed groups).
Run from the repository root after changing the floorplan:  python3 rtl/gen_gtkw.py
"""
import tomllib

p = tomllib.load(open("configs/mini.toml", "rb"))
N = p["mem"]["slices_per_hemisphere"]
MQ = p["mem"]["queues_per_slice"]
S = p["stream"]["per_direction"]
queues = []
for h in "we":
    for i in range(N):
        for q in range(MQ):
            queues.append(f"mem.{h}.{i}" + (f".{q}" if q else ""))
queues += [f"vxm.{q}" for q in range(p["vxm"]["queues"])]
queues += [f"sxm.{h}.{q}" for h in "we" for q in range(p["sxm"]["queues_per_hemisphere"])]
queues += [f"mxm.e.0.{q}" for q in range(p["mxm"]["queues_per_plane"])]
positions = ["sxm.w"] + [f"mem.w.{i}" for i in reversed(range(N))] + ["vxm"] + \
            [f"mem.e.{i}" for i in range(N)] + ["sxm.e", "mxm.e.0"]
T = "TOP.lpu_mini."
BIN, HEX, DEC, COMMENT = "@28", "@22", "@24", "@200"
GROUP_OPEN, GROUP_CLOSED, GROUP_END, GROUP_CLOSED_END = "@800200", "@c00200", "@1000200", "@1401200"

out = ["[*]", "[*] GTKWave save file for the RTL of the mini chip (rtl/gen_gtkw.py; docs/rtl.md)",
       "[*] one cycle = 1 ns; values shown in the low clock phase are those of the cycle",
       "[timestart] 0", "[size] 1800 1000", "[pos] -1 -1", "*-14.000000 0 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1",
       "[treeopen] TOP.", "[treeopen] TOP.lpu_mini.", "[sst_width] 260", "[signals_width] 320",
       "[sst_expanded] 1", "[sst_vpaned_height] 300"]


def sig(fmt, name):
    out.extend([fmt, T + name])


def group(name, body, closed=False):
    out.extend([GROUP_CLOSED if closed else GROUP_OPEN, "-" + name])
    body()
    out.extend([GROUP_CLOSED_END if closed else GROUP_END, "-" + name])


def chip():
    sig(BIN, "clk")
    sig(BIN, "go")
    sig(DEC, "obs_cycle[47:0]")
    sig(BIN, "quiescent")
    sig(BIN, "err_v")
    sig(DEC, "err_code[7:0]")
    sig(DEC, "err_src[7:0]")
    sig(HEX, "err_info[31:0]")


group("chip", chip)


def queue(i, name):
    h, k = divmod(i, 16)
    base = f"qv[{h}].q[{k}].g."
    out.extend([COMMENT, "-" + name])
    sig(DEC, base + "pc[15:0]")
    sig(BIN, base + "issue")
    sig(DEC, base + "issue_pc[15:0]")
    sig(HEX, base + "opcode[7:0]")
    sig(HEX, base + "word[63:0]")


group("queues: pc (next word), issue, index and opcode of the issued word, the word (operands stepped)",
      lambda: [queue(i, n) for i, n in enumerate(queues)])


def sram():
    sig(BIN, "obs_sram_we[7:0]")
    sig(BIN, "obs_sram_mask[15:0]")
    sig(HEX, "obs_sram_row[127:0]")
    sig(HEX, "obs_sram_d[2047:0]")


group("SRAM write ports (committed at the end of the cycle; slice index = mem.w.0..3, mem.e.0..3)", sram)


def mxm():
    sig(BIN, "obs_wb_v[3:0]")
    sig(HEX, "obs_wb_row[19:0]")
    sig(HEX, "obs_wb_d[1023:0]")
    sig(BIN, "u_mxm.has_act")
    sig(HEX, "u_mxm.at[3:0]")
    sig(DEC, "u_mxm.pcnt[2:0]")
    sig(BIN, "u_mxm.mm_go")
    sig(DEC, "u_mxm.mm_idx[3:0]")
    sig(BIN, "u_mxm.mp_v[2:0]")
    sig(BIN, "obs_acc_we")
    sig(DEC, "obs_acc_idx[7:0]")
    sig(HEX, "obs_acc_d[1023:0]")


group("MXM: weight bus (LWM rows into staging at the end of the cycle; port i = mem.e.i), weights, accumulate "
      "pipeline, accumulator writes", mxm)


def io():
    sig(BIN, "tx_v[3:0]")
    sig(HEX, "tx_d[1023:0]")
    sig(BIN, "rx_v[3:0]")
    sig(BIN, "dmaout_v[3:0]")
    sig(HEX, "dmaout_d[1023:0]")


group("C2C links and host DMA", io)

for pi, pname in enumerate(positions):
    def body(pi=pi):
        for d, dn in enumerate("ew"):
            for s in range(S):
                base = f"sv[{pi}].dir[{d}].st[{s}]."
                out.extend([COMMENT, f"-s{s}{dn}"])
                sig(BIN, base + "valid")
                sig(HEX, base + "value[255:0]")
    group(f"streams at position {pi} ({pname})", body, closed=pname not in ("vxm", "mxm.e.0"))

open("rtl/lpu_mini.gtkw", "w").write("\n".join(out) + "\n")
