// Behavioural floating-point units: DPI-C imports implemented in rtl/harness/dpi.cpp with the
// project's numerics (isa/include/lpu/isa/numerics.hpp, bit-exact per isa/numerics.md).
// docs/rtl.md lists exactly which operations use them; everything else is native RTL.
package lpu_dpi_pkg;
  import lpu_cfg_pkg::*;
  localparam int DV = VBYTES * 8;
  localparam int DACC = VBYTES * 32;          // an accumulator: up to VBYTES elements of 32 bits
  localparam int DW = VBYTES * VBYTES * 8;    // a weight plane: VBYTES rows of one vector

  // VXM float element operations on one vector: ADD SUB MUL (f32/f16/bf16/fp8), EXP TANH
  // SIGMOID GELU SILU RSQRT RECIP, float SUM, and CVT with a float source or destination
  // (op = opcode, t/t2 = dtype codes, imm = CVT part).
  import "DPI-C" function void lpu_dpi_vxm(input int op, input int t, input int t2, input int imm,
                                           input bit [DV-1:0] a, input bit [DV-1:0] b,
                                           output bit [DV-1:0] o);
  // MXM float product: acc_out[i] = (mma ? acc_in[i] : +0) + sum_j W[i][j] x[j], f32, in column
  // order, each product and sum rounded (no FMA); t is the weight type (f16 bf16 e4m3 e5m2).
  import "DPI-C" function void lpu_dpi_mxm_f(input int t, input bit [DW-1:0] w, input bit [DV-1:0] x,
                                             input bit [DACC-1:0] acc_in, input int mma,
                                             output bit [DACC-1:0] acc_out);
  // ACCRD conversions with a float side: an f32 accumulator to any type, or an i32 accumulator
  // to a float type (n = accumulator elements).
  import "DPI-C" function void lpu_dpi_accrd(input int is_float, input int n, input int t, input int part,
                                             input bit [DACC-1:0] acc, output bit [DV-1:0] o);

  function automatic logic [DV-1:0] fp_vxm(int op, int t, int t2, int imm, logic [DV-1:0] a, logic [DV-1:0] b);
    bit [DV-1:0] o;
    lpu_dpi_vxm(op, t, t2, imm, a, b, o);
    return o;
  endfunction
  function automatic logic [DACC-1:0] fp_mxm(int t, logic [DW-1:0] w, logic [DV-1:0] x, logic [DACC-1:0] acc, int mma);
    bit [DACC-1:0] o;
    lpu_dpi_mxm_f(t, w, x, acc, mma, o);
    return o;
  endfunction
  function automatic logic [DV-1:0] fp_accrd(int is_float, int n, int t, int part, logic [DACC-1:0] acc);
    bit [DV-1:0] o;
    lpu_dpi_accrd(is_float, n, t, part, acc, o);
    return o;
  endfunction
endpackage
