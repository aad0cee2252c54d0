// The VXM: VXM_QUEUES queues, each with its own ALU (one ALU per lane per queue). An
// instruction issued in t reads its operands at the VXM position in t and computes in t; the
// result is registered and delayed so that it lands on its stream at the VXM in t + the
// latency of its class. Each (queue, latency class) has its own result pipeline and landing
// port, so results of different classes may land in one cycle (on different streams).
// Integer operations and conversions and the float bit/compare operations are native
// (lpu_alu_pkg); float arithmetic, transcendentals and float conversions call the DPI models
// of lpu_dpi_pkg (docs/rtl.md).
module lpu_vxm
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
  import lpu_alu_pkg::*;
  import lpu_dpi_pkg::*;
(
  input  logic                                          clk,
  input  logic                                          rst_n,
  input  logic [VXM_QUEUES-1:0]                         iss_v,
  input  logic [VXM_QUEUES-1:0][63:0]                   iss_w,
  input  logic [1:0][NSTREAMS-1:0]                      pv,
  input  logic [VBITS-1:0]                              pd [2][NSTREAMS],
  input  logic                                          tst_flip,  // test only: flip bit 0 of ALU-class results
  // landing ports: queue q, class c at index q * VXM_CLASSES + c
  output logic [VXM_QUEUES*VXM_CLASSES-1:0]             land_v,
  output logic [VXM_QUEUES*VXM_CLASSES-1:0][6:0]        land_sid,
  output logic [VXM_QUEUES*VXM_CLASSES-1:0][VBITS-1:0]  land_d,
  output logic                                          busy,
  output logic [VXM_QUEUES-1:0]                         err_o,
  output logic [VXM_QUEUES-1:0][7:0]                    err_code_o,
  output logic [VXM_QUEUES-1:0][31:0]                   err_info_o
);
  /* verilator inline_module */
  localparam int C_ALU = 0, C_MUL = 1, C_CVT = 2, C_TRANS = 3, C_RED = 4;
  localparam int LAT [VXM_CLASSES] = '{LAT_VXM_ALU, LAT_VXM_MUL, LAT_VXM_CVT, LAT_VXM_TRANS, LAT_VXM_REDUCE};

  // ---- decode -----------------------------------------------------------------------------
  logic [VXM_QUEUES-1:0][6:0] s_a, s_b, s_m, s_dst;
  logic [VXM_QUEUES-1:0][2:0] cls;
  logic [VXM_QUEUES-1:0] go_ex;

  function automatic logic sval(logic [6:0] sid, logic [1:0][NSTREAMS-1:0] v);
    return sid[5:0] < 6'(NSTREAMS) && v[sid[6]][sid[2:0]];
  endfunction

  always_comb begin
    /* verilator lint_off UNUSEDSIGNAL */
    logic [63:0] w;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [7:0] op;
    logic rd_a, rd_b, rd_m;
    for (int q = 0; q < VXM_QUEUES; q++) begin
      w = iss_w[q];
      op = w[63:56];
      // unary operations (SHL SHRA SHRL NOT NEG ABS RELU MOV, transcendentals, SUM RMAX, CVT)
      // share the layout of NOT: a, dst
      s_a[q] = w[NOT_A_LSB +: 7];
      s_b[q] = w[ADD_B_LSB +: 7];
      s_m[q] = w[SEL_MASK_LSB +: 7];
      s_dst[q] = w[NOT_DST_LSB +: 7];
      rd_a = 1'b1;
      rd_b = 1'b0;
      rd_m = 1'b0;
      cls[q] = 3'(C_ALU);
      case (op)
        OP_ADD, OP_SUB, OP_MUL, OP_MIN, OP_MAX, OP_AND, OP_OR, OP_XOR, OP_CMPEQ, OP_CMPLT, OP_CMPLE: begin
          s_a[q] = w[ADD_A_LSB +: 7];
          s_dst[q] = w[ADD_DST_LSB +: 7];
          rd_b = 1'b1;
          if (op == OP_MUL) cls[q] = 3'(C_MUL);
        end
        OP_SEL: begin
          s_a[q] = w[SEL_A_LSB +: 7];
          s_b[q] = w[SEL_B_LSB +: 7];
          s_dst[q] = w[SEL_DST_LSB +: 7];
          rd_b = 1'b1;
          rd_m = 1'b1;
        end
        OP_CONST: begin
          s_dst[q] = w[CONST_DST_LSB +: 7];
          rd_a = 1'b0;
        end
        OP_CVT: cls[q] = 3'(C_CVT);
        OP_EXP, OP_TANH, OP_SIGMOID, OP_GELU, OP_SILU, OP_RSQRT, OP_RECIP: cls[q] = 3'(C_TRANS);
        OP_SUM, OP_RMAX: cls[q] = 3'(C_RED);
        default: ;
      endcase
      err_o[q] = 1'b0;
      err_code_o[q] = E_NONE;
      err_info_o[q] = '0;
      if (iss_v[q]) begin
        if (!(op inside {OP_ADD, OP_SUB, OP_MUL, OP_MIN, OP_MAX, OP_AND, OP_OR, OP_XOR, OP_CMPEQ, OP_CMPLT,
                         OP_CMPLE, OP_SEL, OP_SHL, OP_SHRA, OP_SHRL, OP_NOT, OP_NEG, OP_ABS, OP_RELU, OP_EXP,
                         OP_TANH, OP_SIGMOID, OP_GELU, OP_SILU, OP_RSQRT, OP_RECIP, OP_SUM, OP_RMAX, OP_CONST,
                         OP_MOV, OP_CVT})) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_BAD_OP;
          err_info_o[q] = 32'(op);
        end else if (s_dst[q][5:0] >= 6'(NSTREAMS)) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_BAD_STREAM;
          err_info_o[q] = 32'(s_dst[q]);
        end else if (rd_m && !sval(s_m[q], pv)) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_EMPTY_READ;
          err_info_o[q] = {16'(POS_VXM), 9'd0, s_m[q]};
        end else if (rd_a && !sval(s_a[q], pv)) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_EMPTY_READ;
          err_info_o[q] = {16'(POS_VXM), 9'd0, s_a[q]};
        end else if (rd_b && !sval(s_b[q], pv)) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_EMPTY_READ;
          err_info_o[q] = {16'(POS_VXM), 9'd0, s_b[q]};
        end
      end
      go_ex[q] = iss_v[q] && !err_o[q];
    end
  end

  // The result of the issued instruction (called only in the issue cycle).
  /* verilator lint_off UNUSEDSIGNAL */
  function automatic logic [VBITS-1:0] compute(logic [63:0] w, logic [VBITS-1:0] a, logic [VBITS-1:0] b,
                                               logic [VBITS-1:0] m);
    logic [7:0] o;
    logic [3:0] ty, ty2;
    int nb;
    logic isf;
    o = w[63:56];
    ty = w[55:52];
    ty2 = w[51:48];
    nb = dtype_bytes(ty);
    isf = dtype_float(ty);
    // behavioural FP unit (DPI): float ADD SUB MUL SUM, transcendentals, CVT with a float side
    if ((isf && (o inside {OP_ADD, OP_SUB, OP_MUL, OP_SUM, OP_EXP, OP_TANH, OP_SIGMOID, OP_GELU, OP_SILU,
                           OP_RSQRT, OP_RECIP})) ||
        (o == OP_CVT && ty != ty2 && (isf || dtype_float(ty2))))
      return fp_vxm(int'(o), int'(ty), int'(ty2), int'(w[CVT_PART_LSB +: 4]), a, b);
    case (o)
      OP_SEL: return select(nb, m, a, b);
      OP_CONST: return splat(nb, w[CONST_VALUE_LSB +: 32]);
      OP_MOV: return a;
      OP_SUM: return int_reduce(o, nb, a);
      OP_RMAX: begin
        if (isf) return float_rmax(ty, nb, a);
        return int_reduce(o, nb, a);
      end
      OP_CVT: return int_cvt(nb, dtype_bytes(ty2), int'(w[CVT_PART_LSB +: 4]), a);
      default: begin
        if (isf) return float_vec(o, ty, nb, a, b);
        return int_vec(o, nb, a, b, w[SHL_N_LSB +: 6]);
      end
    endcase
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */

  // ---- compute stage (one per queue: one issue per cycle) + per-class delay ----------------------
  logic [VXM_QUEUES-1:0] c_v;
  logic [VXM_QUEUES-1:0][2:0] c_cls;
  logic [VXM_QUEUES-1:0][6:0] c_sid;
  logic [VXM_QUEUES-1:0][VBITS-1:0] c_d;
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      c_v <= '0;
    end else begin
      c_v <= go_ex;
      for (int q = 0; q < VXM_QUEUES; q++) begin
        if (go_ex[q]) begin
          c_cls[q] <= cls[q];
          c_sid[q] <= s_dst[q];
          c_d[q] <= compute(iss_w[q], pd[s_a[q][6]][s_a[q][2:0]], pd[s_b[q][6]][s_b[q][2:0]], pd[s_m[q][6]][s_m[q][2:0]])
                    ^ (cls[q] == 3'(C_ALU) && tst_flip ? VBITS'(1) : '0);
        end
      end
    end
  end

  logic [VXM_QUEUES*VXM_CLASSES-1:0] dl_busy;
  for (genvar q = 0; q < VXM_QUEUES; q++) begin : g_q
    for (genvar c = 0; c < VXM_CLASSES; c++) begin : g_cls
      localparam int I = q * VXM_CLASSES + c;
      logic [6+VBITS:0] o;
      lpu_delay #(.N(LAT[c] - 1), .W(7 + VBITS)) u_delay (
        .clk, .rst_n, .in_v(c_v[q] && 32'(c_cls[q]) == c), .in_d({c_sid[q], c_d[q]}), .out_v(land_v[I]), .out_d(o),
        .busy(dl_busy[I]));
      assign land_sid[I] = o[VBITS +: 7];
      assign land_d[I] = o[VBITS-1:0];
    end
  end

  assign busy = |c_v | |dl_busy;
endmodule
