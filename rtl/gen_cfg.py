#!/usr/bin/env python3
"""Generate the RTL's configuration package from a chip preset (configs/mini.toml).

The RTL is written for the `mini` floorplan; every number it uses (sizes, latencies, ICU
parameters) comes from the preset through this script, so the RTL and the model read the same
file. Outputs:
  --sv  lpu_cfg_pkg.sv        SystemVerilog package (localparams)
  --hpp lpu/rtl/rtl_config.hpp the same numbers for the C++ harness (checked against the preset
                               the harness loads at run time)
"""
import argparse
import tomllib

# The preset numbers the RTL is built with: package name -> preset key. Every one is also
# listed, by key, in the C++ header's kPresetValues, which RtlChip checks against the preset it
# loads at run time (rtl/harness/rtl_chip.cpp, check_rtl_params). Latencies: every class of the
# preset's [latency] table, as LAT_<CLASS>.
KEYS = {
    "SUPERLANES": "vector.superlanes",
    "NSTREAMS": "stream.per_direction",
    "HOP": "stream.hop_cycles",
    "MEM_SLICES_PER_HEMI": "mem.slices_per_hemisphere",
    "MEM_ROWS": "mem.rows",
    "MEM_READ_PORTS": "mem.read_ports",
    "MEM_WRITE_PORTS": "mem.write_ports",
    "MEM_QUEUES": "mem.queues_per_slice",
    "VXM_QUEUES": "vxm.queues",
    "MXM_PLANES": "mxm.planes",
    "MXM_QUEUES": "mxm.queues_per_plane",
    "MXM_ACCS": "mxm.accumulators",
    "MXM_INSTALL_ROWS": "mxm.install_rows_per_cycle",
    "SXM_QUEUES": "sxm.queues_per_hemisphere",
    "PERM_TABLES": "sxm.perm_tables",
    "LINKS": "c2c.links",
    "DESKEW_PERIOD": "c2c.deskew_period",
    "DMA_CHANNELS": "dma.channels",
    "NOTIFY_LAT": "icu.notify_latency",
    "STAGGER": "icu.superlane_stagger",
}


def lookup(p, key):
    section, name = key.split(".")
    try:
        return p[section][name]
    except KeyError:
        raise SystemExit(f"rtl/gen_cfg.py: the preset has no {key} (the RTL needs every number it is built with)")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("preset")
    ap.add_argument("--sv", required=True)
    ap.add_argument("--hpp", required=True)
    a = ap.parse_args()
    with open(a.preset, "rb") as f:
        p = tomllib.load(f)
    keys = dict(KEYS)
    for c in p["latency"]:
        keys["LAT_" + c.upper()] = "latency." + c
    vals = {}
    for k, key in keys.items():
        vals[k] = lookup(p, key)
        if k == "SUPERLANES":
            vals["VBYTES"] = 16 * vals[k]  # derived (16 lanes per superlane), not a preset key
    name = p.get("name", "?")
    with open(a.sv, "w") as f:
        f.write(f"// generated from {a.preset} by rtl/gen_cfg.py; do not edit.\n")
        f.write("package lpu_cfg_pkg;\n")
        f.write(f"  // preset '{name}'\n")
        for k, v in vals.items():
            f.write(f"  localparam int {k} = {v};\n")
        f.write("endpackage\n")
    with open(a.hpp, "w") as f:
        f.write(f"// generated from {a.preset} by rtl/gen_cfg.py; do not edit.\n#pragma once\n\n")
        f.write("namespace lpu::rtl::cfg {\n")
        f.write(f'inline constexpr const char* kPreset = "{name}";\n')
        for k, v in vals.items():
            f.write(f"inline constexpr int {k} = {v};\n")
        f.write("\n// Every preset number above, by its preset key (RtlChip checks them against the preset).\n")
        f.write("struct PresetValue {\n  const char* key;\n  int value;\n};\n")
        f.write("inline constexpr PresetValue kPresetValues[] = {\n")
        for k, key in keys.items():
            f.write(f'    {{"{key}", {k}}},\n')
        f.write("};\n")
        f.write("}  // namespace lpu::rtl::cfg\n")


if __name__ == "__main__":
    main()
