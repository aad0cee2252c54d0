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

LAT_CLASSES = ["mem_read", "mem_write", "mem_lwm", "vxm_alu", "vxm_mul", "vxm_cvt", "vxm_trans", "vxm_reduce",
               "mxm_lw", "mxm_iw", "mxm_mm", "mxm_rd", "sxm_shift", "sxm_perm", "sxm_trans",
               "c2c_send", "c2c_recv", "dma"]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("preset")
    ap.add_argument("--sv", required=True)
    ap.add_argument("--hpp", required=True)
    a = ap.parse_args()
    with open(a.preset, "rb") as f:
        p = tomllib.load(f)
    lat = p["latency"]
    vals = {
        "SUPERLANES": p["vector"]["superlanes"],
        "VBYTES": 16 * p["vector"]["superlanes"],
        "NSTREAMS": p["stream"]["per_direction"],
        "HOP": p["stream"]["hop_cycles"],
        "MEM_SLICES_PER_HEMI": p["mem"]["slices_per_hemisphere"],
        "MEM_ROWS": p["mem"]["rows"],
        "MEM_READ_PORTS": p["mem"]["read_ports"],
        "MEM_WRITE_PORTS": p["mem"]["write_ports"],
        "MEM_QUEUES": p["mem"]["queues_per_slice"],
        "VXM_QUEUES": p["vxm"]["queues"],
        "MXM_PLANES": p["mxm"]["planes"],
        "MXM_QUEUES": p["mxm"]["queues_per_plane"],
        "MXM_ACCS": p["mxm"]["accumulators"],
        "MXM_INSTALL_ROWS": p["mxm"]["install_rows_per_cycle"],
        "SXM_QUEUES": p["sxm"]["queues_per_hemisphere"],
        "PERM_TABLES": p["sxm"]["perm_tables"],
        "LINKS": p["c2c"]["links"],
        "DESKEW_PERIOD": p["c2c"]["deskew_period"],
        "DMA_CHANNELS": p["dma"]["channels"],
        "NOTIFY_LAT": p["icu"]["notify_latency"],
        "STAGGER": p["icu"]["superlane_stagger"],
    }
    for c in LAT_CLASSES:
        vals["LAT_" + c.upper()] = lat[c]
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
        f.write("}  // namespace lpu::rtl::cfg\n")


if __name__ == "__main__":
    main()
