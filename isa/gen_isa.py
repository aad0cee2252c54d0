#!/usr/bin/env python3
"""Generate the C++ table, the SystemVerilog package and docs/isa.md from isa/isa.toml.

Usage: gen_isa.py ISA_TOML SEMANTICS_MD --cpp OUT.hpp --sv OUT.sv --md OUT.md
Fails (exit 1) with a message on any inconsistency: duplicate opcode or mnemonic, operand
fields that overflow the operand area, unknown kinds, types or latency classes.
Output carries no timestamp so that builds are reproducible.
"""
import argparse
import json
import sys
import tomllib

# The addr operand kind: bits [23:20] the base register, [19:0] the row offset (isa.toml [kinds];
# C++: lpu::isa::kAddrOffsetBits). REPEAT steps the offset only.
ADDR_OFFSET_BITS = 20

BANNER = "generated from isa/isa.toml by isa/gen_isa.py; do not edit. Regenerate: cmake --build build --target lpu_isa_gen"


def fail(msg):
    print(f"gen_isa.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def load(path):
    with open(path, "rb") as f:
        isa = tomllib.load(f)
    fmt = isa["format"]
    dtypes = isa["dtypes"]
    kinds = isa["kinds"]
    classes = list(isa["latency_classes"].keys())
    units = ["icu", "mem", "vxm", "mxm", "sxm", "c2c", "dma"]
    seen_ops, seen_names = {}, {}
    dtype_names = sorted(dtypes, key=lambda n: dtypes[n]["code"])
    type_sets = {
        "all": dtype_names,
        "int": [n for n in dtype_names if not dtypes[n]["float"]],
        "float": [n for n in dtype_names if dtypes[n]["float"]],
        "mxm": ["i8", "e4m3", "e5m2", "f16", "bf16"],
    }
    if kinds["addr"]["width"] != ADDR_OFFSET_BITS + 4:
        fail(f"kind addr must be {ADDR_OFFSET_BITS + 4} bits: a 4-bit base register and a {ADDR_OFFSET_BITS}-bit offset")
    for ins in isa["instr"]:
        m = ins["mnemonic"]
        if m in seen_names:
            fail(f"duplicate mnemonic {m}")
        seen_names[m] = True
        op = ins["opcode"]
        if op in seen_ops:
            fail(f"opcode {op:#x} of {m} already used by {seen_ops[op]}")
        if op >= (1 << fmt["opcode_width"]):
            fail(f"opcode {op:#x} of {m} does not fit {fmt['opcode_width']} bits")
        seen_ops[op] = m
        if ins["unit"] not in units:
            fail(f"{m}: unknown unit {ins['unit']}")
        if ins["latency"] not in classes:
            fail(f"{m}: unknown latency class {ins['latency']}")
        for key in ("types", "types2"):
            t = ins.get(key)
            if t is None:
                ins[key] = []
            elif isinstance(t, str):
                if t not in type_sets:
                    fail(f"{m}: unknown type set {t}")
                ins[key] = type_sets[t]
            else:
                for n in t:
                    if n not in dtypes:
                        fail(f"{m}: unknown type {n}")
        lsb = 0
        ops = []
        names = set()
        for name, kind in ins["operands"]:
            if kind not in kinds:
                fail(f"{m}: operand {name} has unknown kind {kind}")
            if name in names:
                fail(f"{m}: duplicate operand {name}")
            names.add(name)
            w = kinds[kind]["width"]
            ops.append({"name": name, "kind": kind, "lsb": lsb, "width": w})
            lsb += w
        if lsb > fmt["operand_bits"]:
            fail(f"{m}: operands need {lsb} bits, only {fmt['operand_bits']} available")
        if len(ops) > 5:
            fail(f"{m}: more than 5 operands")
        for key in ("reads", "writes"):
            for n in ins.get(key, []):
                if n not in names:
                    fail(f"{m}: {key} names unknown operand {n}")
        for n, how in ins.get("step", {}).items():
            if n not in names:
                fail(f"{m}: step names unknown operand {n}")
            if how not in ("stride", "1", "wrap"):
                fail(f"{m}: step of {n} must be 'stride', '1' or 'wrap'")
            if how == "wrap":
                if len([o for o in ops if o["kind"] == "wstep"]) != 1 or len([o for o in ops if o["kind"] == "wrap"]) != 1:
                    fail(f"{m}: a 'wrap' step needs one wstep operand (the step) and one wrap operand (the modulus)")
        ins["ops"] = ops
    return isa, dtype_names, classes, units


def cpp(isa, dtype_names, classes, units):
    fmt, dtypes, kinds = isa["format"], isa["dtypes"], isa["kinds"]
    kind_names = list(kinds.keys())
    o = []
    w = o.append
    w(f"// {BANNER}")
    w("#pragma once")
    w("#include <array>")
    w("#include <cstdint>")
    w("#include <string_view>")
    w("")
    w("namespace lpu::isa {")
    w("")
    w(f"inline constexpr int kWordBits = {fmt['word_bits']};")
    w(f"inline constexpr int kOpcodeLsb = {fmt['opcode_lsb']};")
    w(f"inline constexpr int kOpcodeWidth = {fmt['opcode_width']};")
    w(f"inline constexpr int kDtypeLsb = {fmt['dtype_lsb']};")
    w(f"inline constexpr int kDtype2Lsb = {fmt['dtype2_lsb']};")
    w(f"inline constexpr int kDtypeWidth = {fmt['dtype_width']};")
    w(f"inline constexpr int kOperandBits = {fmt['operand_bits']};")
    w("")
    w("enum class Unit : std::uint8_t { " + ", ".join(u.capitalize() for u in units) + " };")
    w("inline constexpr std::array<std::string_view, %d> kUnitNames = {%s};" % (
        len(units), ", ".join(f'"{u}"' for u in units)))
    w("")
    w("enum class Dtype : std::uint8_t { " + ", ".join(
        f"{n.capitalize()} = {dtypes[n]['code']}" for n in dtype_names) + " };")
    w(f"inline constexpr int kNumDtypes = {len(dtype_names)};")
    w("struct DtypeInfo { std::string_view name; std::uint8_t bytes; bool is_float; };")
    w("inline constexpr std::array<DtypeInfo, kNumDtypes> kDtypes = {{")
    for n in dtype_names:
        w(f'    {{"{n}", {dtypes[n]["bytes"]}, {"true" if dtypes[n]["float"] else "false"}}},')
    w("}};")
    w("")
    w("enum class LatClass : std::uint8_t { " + ", ".join(
        "".join(p.capitalize() for p in c.split("_")) for c in classes) + " };")
    w(f"inline constexpr int kNumLatClasses = {len(classes)};")
    w("inline constexpr std::array<std::string_view, kNumLatClasses> kLatClassNames = {%s};" %
      ", ".join(f'"{c}"' for c in classes))
    w("// What each class times (isa.toml [latency_classes]); docs/presets.md lists them.")
    w("inline constexpr std::array<std::string_view, kNumLatClasses> kLatClassDocs = {%s};" %
      ", ".join(json.dumps(isa["latency_classes"][c]) for c in classes))
    w("")
    w("enum class Kind : std::uint8_t { " + ", ".join(k.capitalize() for k in kind_names) + " };")
    w("enum class Syntax : std::uint8_t { Stream, Addr, Simm, Reg, Uimm, Imm32 };")
    w("struct KindInfo { std::string_view name; std::uint8_t width; Syntax syntax; };")
    w(f"inline constexpr std::array<KindInfo, {len(kind_names)}> kKinds = {{{{")
    for k in kind_names:
        syn = kinds[k]["syntax"].capitalize()
        w(f'    {{"{k}", {kinds[k]["width"]}, Syntax::{syn}}},')
    w("}};")
    w("")
    w("enum class Step : std::uint8_t { None, Stride, One, Wrap };")
    w("struct OperandInfo {")
    w("  std::string_view name;")
    w("  Kind kind;")
    w("  std::uint8_t lsb;")
    w("  std::uint8_t width;")
    w("  Step step;")
    w("  bool reads;   // a stream this instruction consumes at issue")
    w("  bool writes;  // a stream this instruction produces at issue + latency")
    w("};")
    w("")
    names = [i["mnemonic"] for i in isa["instr"]]
    w("enum class Op : std::uint8_t { " + ", ".join(n.capitalize() for n in names) + " };")
    w(f"inline constexpr int kNumOps = {len(names)};")
    w("")
    w("struct InstrInfo {")
    w("  Op op;")
    w("  std::string_view mnemonic;")
    w("  Unit unit;")
    w("  std::uint8_t opcode;")
    w("  LatClass latency;")
    w("  std::uint16_t types;   // bit d set: suffix Dtype(d) allowed; 0: no suffix")
    w("  std::uint16_t types2;  // second suffix (CVT)")
    w("  std::uint8_t occupancy;")
    w("  std::uint8_t num_operands;")
    w("  std::array<OperandInfo, 5> operands;")
    w("  std::string_view doc;")
    w("};")
    w("")
    w("inline constexpr std::array<InstrInfo, kNumOps> kInstrs = {{")
    for ins in isa["instr"]:
        tm = sum(1 << dtypes[t]["code"] for t in ins["types"])
        tm2 = sum(1 << dtypes[t]["code"] for t in ins["types2"])
        lat = "".join(p.capitalize() for p in ins["latency"].split("_"))
        opers = []
        for op in ins["ops"]:
            st = ins.get("step", {}).get(op["name"])
            step = {"stride": "Step::Stride", "1": "Step::One", "wrap": "Step::Wrap", None: "Step::None"}[st]
            rd = "true" if op["name"] in ins.get("reads", []) else "false"
            wr = "true" if op["name"] in ins.get("writes", []) else "false"
            opers.append(f'OperandInfo{{"{op["name"]}", Kind::{op["kind"].capitalize()}, '
                         f'{op["lsb"]}, {op["width"]}, {step}, {rd}, {wr}}}')
        while len(opers) < 5:
            opers.append("OperandInfo{}")
        doc = ins["doc"].replace("\\", "\\\\").replace('"', '\\"')
        w(f'    InstrInfo{{Op::{ins["mnemonic"].capitalize()}, "{ins["mnemonic"]}", '
          f'Unit::{ins["unit"].capitalize()}, {ins["opcode"]:#04x}, LatClass::{lat}, '
          f'{tm:#06x}, {tm2:#06x}, {ins.get("occupancy", 1)}, {len(ins["ops"])},')
        w("              {" + ", ".join(opers) + "},")
        w(f'              "{doc}"}},')
    w("}};")
    w("")
    w("// Which units each queue kind accepts (ICU instructions go to every queue).")
    w("enum class QueueKind : std::uint8_t { " + ", ".join(
        q.capitalize() for q in isa["queues"]) + " };")
    w("inline constexpr std::array<std::string_view, %d> kQueueKindNames = {%s};" % (
        len(isa["queues"]), ", ".join(f'"{q}"' for q in isa["queues"])))
    w("constexpr bool queue_accepts(QueueKind q, Unit u) {")
    w("  switch (q) {")
    for q, us in isa["queues"].items():
        cond = " || ".join(f"u == Unit::{u.capitalize()}" for u in us)
        w(f"    case QueueKind::{q.capitalize()}: return {cond};")
    w("  }")
    w("  return false;")
    w("}")
    w("")
    w("}  // namespace lpu::isa")
    return "\n".join(o) + "\n"


def sv(isa, dtype_names, classes):
    fmt, dtypes = isa["format"], isa["dtypes"]
    o = []
    w = o.append
    w(f"// {BANNER}")
    w("package lpu_isa_pkg;")
    w(f"  localparam int WORD_BITS = {fmt['word_bits']};")
    w(f"  localparam int OPCODE_LSB = {fmt['opcode_lsb']};")
    w(f"  localparam int DTYPE_LSB = {fmt['dtype_lsb']};")
    w(f"  localparam int DTYPE2_LSB = {fmt['dtype2_lsb']};")
    w("")
    w("  typedef enum logic [%d:0] {" % (fmt["opcode_width"] - 1))
    lines = [f"    OP_{i['mnemonic']} = {fmt['opcode_width']}'h{i['opcode']:02x}" for i in isa["instr"]]
    w(",\n".join(lines))
    w("  } opcode_e;")
    w("")
    w("  typedef enum logic [%d:0] {" % (fmt["dtype_width"] - 1))
    w(",\n".join(f"    DT_{n.upper()} = {fmt['dtype_width']}'d{dtypes[n]['code']}" for n in dtype_names))
    w("  } dtype_e;")
    w("")
    w("  // Operand fields: <MNEMONIC>_<OPERAND>_LSB / _W")
    for ins in isa["instr"]:
        for op in ins["ops"]:
            key = f"{ins['mnemonic']}_{op['name'].upper()}"
            w(f"  localparam int {key}_LSB = {op['lsb']};")
            w(f"  localparam int {key}_W = {op['width']};")
    w("")
    w(f"  localparam int ADDR_OFFSET_W = {ADDR_OFFSET_BITS};  // addr operand: [23:20] base register, [19:0] row offset")
    w("")
    w("  // REPEAT stepping (isa.toml `step`): instance k+1 of a REPEATed instruction from instance k.")
    w("  // An addr operand steps its row offset (modulo 2^ADDR_OFFSET_W; the base register is kept),")
    w("  // any other operand its whole field; \"stride\" adds the sign-extended stride operand, \"1\" one,")
    w("  // \"wrap\" the wstep operand modulo the wrap operand (the assembler guarantees field < wrap and")
    w("  // wstep <= wrap, so one conditional subtraction suffices).")
    w(f"  function automatic logic [WORD_BITS-1:0] step_word(logic [WORD_BITS-1:0] w);")
    w(f"    logic [WORD_BITS-1:0] r;")
    w("    r = w;")
    w(f"    case (w[OPCODE_LSB +: {fmt['opcode_width']}])")
    for ins in isa["instr"]:
        steps = ins.get("step", {})
        if not steps:
            continue
        m = ins["mnemonic"]
        stmts = []
        for op in ins["ops"]:
            how = steps.get(op["name"])
            if how is None:
                continue
            key = f"{m}_{op['name'].upper()}"
            width = "ADDR_OFFSET_W" if op["kind"] == "addr" else f"{key}_W"
            if how == "wrap":
                ws = [o for o in ins["ops"] if o["kind"] == "wstep"][0]
                wk = f"{m}_{ws['name'].upper()}"
                wm = [o for o in ins["ops"] if o["kind"] == "wrap"][0]
                n = f"int'(w[{m}_{wm['name'].upper()}_LSB +: {m}_{wm['name'].upper()}_W])"
                stmts.append(f"r[{key}_LSB +: {width}] = {width}'(int'(w[{key}_LSB +: {width}]) + int'(w[{wk}_LSB +: {wk}_W])\n"
                             f"          >= {n}\n"
                             f"          ? int'(w[{key}_LSB +: {width}]) + int'(w[{wk}_LSB +: {wk}_W]) - {n}\n"
                             f"          : int'(w[{key}_LSB +: {width}]) + int'(w[{wk}_LSB +: {wk}_W]));")
                continue
            if how == "1":
                inc = f"{width}'(1)"
            else:
                st = [o for o in ins["ops"] if o["kind"] == "stride"]
                if len(st) != 1 or op["kind"] != "addr" or st[0]["width"] > ADDR_OFFSET_BITS:
                    fail(f"{m}: a 'stride' step needs an addr operand and one stride operand of at most "
                         f"{ADDR_OFFSET_BITS} bits")
                sk = f"{m}_{st[0]['name'].upper()}"
                inc = (f"{{{{(ADDR_OFFSET_W - {sk}_W){{w[{sk}_LSB + {sk}_W - 1]}}}}, "
                       f"w[{sk}_LSB +: {sk}_W]}}")
            stmts.append(f"r[{key}_LSB +: {width}] = w[{key}_LSB +: {width}]\n          + {inc};")
        w(f"      OP_{m}: begin")
        for st in stmts:
            w(f"        {st}")
        w("      end")
    w("      default: ;")
    w("    endcase")
    w("    return r;")
    w("  endfunction")
    w("endpackage")
    return "\n".join(o) + "\n"


def md(isa, dtype_names, semantics):
    dtypes, kinds = isa["dtypes"], isa["kinds"]
    o = []
    w = o.append
    w(f"<!-- {BANNER} -->")
    w("")
    w(semantics.rstrip())
    w("")
    w("## Instruction reference (generated)")
    w("")
    w(f"{len(isa['instr'])} instructions. Encoding: `[63:56]` opcode, `[55:52]` type suffix, "
      "`[51:48]` second suffix, operands packed from bit 0.")
    w("")
    w("| mnemonic | unit | opcode | operands (bits) | types | latency class | semantics |")
    w("|---|---|---|---|---|---|---|")
    for ins in isa["instr"]:
        ops = ", ".join(f"{o['name']}:{o['kind']}[{o['lsb'] + o['width'] - 1}:{o['lsb']}]"
                        for o in ins["ops"]) or "-"
        ts = "-"
        if ins["types"]:
            ts = ".t: " + " ".join(ins["types"])
            if ins["types2"]:
                ts += "; .t2: " + " ".join(ins["types2"])
        steps = ins.get("step", {})
        doc = ins["doc"]
        if steps:
            doc += " REPEAT steps: " + ", ".join(
                f"{k} += k*stride" if v == "stride" else f"{k} = ({k} + k*rstep) mod wrap" if v == "wrap"
                else f"{k} += k" for k, v in steps.items()) + "."
        if ins.get("occupancy", 1) != 1:
            doc += f" Occupies its queue {ins['occupancy']} cycles."
        doc = doc.replace("|", "\\|")
        w(f"| `{ins['mnemonic']}` | {ins['unit']} | `{ins['opcode']:#04x}` | {ops} | {ts} | "
          f"`{ins['latency']}` | {doc} |")
    w("")
    w("### Operand kinds")
    w("")
    w("| kind | bits | written as |")
    w("|---|---|---|")
    syn = {"stream": "`s<id>e` / `s<id>w` or a `.stream` name", "addr": "`off` or `[rN+off]`",
           "simm": "signed integer expression", "reg": "`r0`..`r15`", "uimm": "unsigned integer expression",
           "imm32": "integer or float literal (bit pattern of the element type)"}
    for k, v in kinds.items():
        w(f"| {k} | {v['width']} | {syn[v['syntax']]} |")
    w("")
    w("### Types")
    w("")
    w("| suffix | code | bytes | float |")
    w("|---|---|---|---|")
    for n in dtype_names:
        w(f"| `.{n}` | {dtypes[n]['code']} | {dtypes[n]['bytes']} | {'yes' if dtypes[n]['float'] else 'no'} |")
    w("")
    w("### Latency classes")
    w("")
    w("| class | meaning |")
    w("|---|---|")
    for c, d in isa["latency_classes"].items():
        w(f"| `{c}` | {d} |")
    w("")
    w("### Queue kinds")
    w("")
    for q, us in isa["queues"].items():
        w(f"- `{q}` queues accept: {', '.join(us)}")
    return "\n".join(o) + "\n"


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("isa")
    ap.add_argument("semantics", help="comma-separated hand-written Markdown files, concatenated")
    ap.add_argument("--cpp")
    ap.add_argument("--sv")
    ap.add_argument("--md")
    a = ap.parse_args()
    isa, dtype_names, classes, units = load(a.isa)
    if a.cpp:
        write_if_changed(a.cpp, cpp(isa, dtype_names, classes, units))
    if a.sv:
        write_if_changed(a.sv, sv(isa, dtype_names, classes))
    if a.md:
        sem = ""
        for part in a.semantics.split(","):
            with open(part, encoding="utf-8") as f:
                sem += f.read().rstrip() + "\n\n"
        write_if_changed(a.md, md(isa, dtype_names, sem))


if __name__ == "__main__":
    main()
