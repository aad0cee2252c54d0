// One VXM queue's ALU (the VXM has one ALU per lane per queue). An instruction issued in t
// reads its operands at the VXM position in t and computes in t; the result is registered and
// delayed so that it lands on its stream at the VXM in t + latency of its class. Each latency
// class has its own result pipeline (and landing port), so results of different classes may
// land in one cycle (on different streams).
module lpu_vxm_q
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
  import lpu_alu_pkg::*;
  import lpu_dpi_pkg::*;
(
  input  logic                                 clk,
  input  logic                                 rst_n,
  input  logic                                 iss_v,
  input  logic [63:0]                          iss_w,
  input  logic [1:0][NSTREAMS-1:0]             pv,
  input  logic [1:0][NSTREAMS-1:0][VBITS-1:0]  pd,
  input  logic                                 tst_flip,   // test only: flip bit 0 of ALU-class results
  output logic [VXM_CLASSES-1:0]               land_v,
  output logic [VXM_CLASSES-1:0][6:0]          land_sid,
  output logic [VXM_CLASSES-1:0][VBITS-1:0]    land_d,
  output logic                                 busy,
  output logic                                 err_o,
  output logic [7:0]                           err_code_o,
  output logic [31:0]                          err_info_o
);
  localparam int C_ALU = 0, C_MUL = 1, C_CVT = 2, C_TRANS = 3, C_RED = 4;
  localparam int LAT [VXM_CLASSES] = '{LAT_VXM_ALU, LAT_VXM_MUL, LAT_VXM_CVT, LAT_VXM_TRANS, LAT_VXM_REDUCE};

  wire [7:0] op = iss_w[63:56];

  // ---- decode -----------------------------------------------------------------------------
  logic [6:0] s_a, s_b, s_m, s_dst;
  logic rd_a, rd_b, rd_m;
  int cls;
  always_comb begin
    // unary operations (SHL SHRA SHRL NOT NEG ABS RELU MOV, transcendentals, SUM RMAX, CVT) share
    // the layout of NOT: a, dst
    s_a = iss_w[NOT_A_LSB +: 7];
    s_b = iss_w[ADD_B_LSB +: 7];
    s_m = iss_w[SEL_MASK_LSB +: 7];
    s_dst = iss_w[NOT_DST_LSB +: 7];
    rd_a = 1'b1;
    rd_b = 1'b0;
    rd_m = 1'b0;
    cls = C_ALU;
    case (op)
      OP_ADD, OP_SUB, OP_MUL, OP_MIN, OP_MAX, OP_AND, OP_OR, OP_XOR, OP_CMPEQ, OP_CMPLT, OP_CMPLE: begin
        s_a = iss_w[ADD_A_LSB +: 7];
        s_dst = iss_w[ADD_DST_LSB +: 7];
        rd_b = 1'b1;
        if (op == OP_MUL) cls = C_MUL;
      end
      OP_SEL: begin
        s_a = iss_w[SEL_A_LSB +: 7];
        s_b = iss_w[SEL_B_LSB +: 7];
        s_dst = iss_w[SEL_DST_LSB +: 7];
        rd_b = 1'b1;
        rd_m = 1'b1;
      end
      OP_CONST: begin
        s_dst = iss_w[CONST_DST_LSB +: 7];
        rd_a = 1'b0;
      end
      OP_CVT: cls = C_CVT;
      OP_EXP, OP_TANH, OP_SIGMOID, OP_GELU, OP_SILU, OP_RSQRT, OP_RECIP: cls = C_TRANS;
      OP_SUM, OP_RMAX: cls = C_RED;
      default: ;  // SHL SHRA SHRL NOT NEG ABS RELU MOV: a at [6:0], dst at [13:7]
    endcase
  end

  function automatic logic sval(logic [6:0] sid, logic [1:0][NSTREAMS-1:0] v);
    return sid[5:0] < 6'(NSTREAMS) && v[sid[6]][sid[2:0]];
  endfunction

  logic known;
  always_comb begin
    known = op inside {OP_ADD, OP_SUB, OP_MUL, OP_MIN, OP_MAX, OP_AND, OP_OR, OP_XOR, OP_CMPEQ, OP_CMPLT,
                       OP_CMPLE, OP_SEL, OP_SHL, OP_SHRA, OP_SHRL, OP_NOT, OP_NEG, OP_ABS, OP_RELU, OP_EXP,
                       OP_TANH, OP_SIGMOID, OP_GELU, OP_SILU, OP_RSQRT, OP_RECIP, OP_SUM, OP_RMAX, OP_CONST,
                       OP_MOV, OP_CVT};
    err_o = 1'b0;
    err_code_o = E_NONE;
    err_info_o = '0;
    if (iss_v) begin
      if (!known) begin
        err_o = 1'b1;
        err_code_o = E_BAD_OP;
        err_info_o = 32'(op);
      end else if (s_dst[5:0] >= 6'(NSTREAMS)) begin
        err_o = 1'b1;
        err_code_o = E_BAD_STREAM;
        err_info_o = 32'(s_dst);
      end else if (rd_m && !sval(s_m, pv)) begin
        err_o = 1'b1;
        err_code_o = E_EMPTY_READ;
        err_info_o = {16'(POS_VXM), 9'd0, s_m};
      end else if (rd_a && !sval(s_a, pv)) begin
        err_o = 1'b1;
        err_code_o = E_EMPTY_READ;
        err_info_o = {16'(POS_VXM), 9'd0, s_a};
      end else if (rd_b && !sval(s_b, pv)) begin
        err_o = 1'b1;
        err_code_o = E_EMPTY_READ;
        err_info_o = {16'(POS_VXM), 9'd0, s_b};
      end
    end
  end

  wire [VBITS-1:0] va = pd[s_a[6]][s_a[2:0]];
  wire [VBITS-1:0] vb = pd[s_b[6]][s_b[2:0]];
  wire [VBITS-1:0] vm = pd[s_m[6]][s_m[2:0]];

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
    case (o)
      OP_ADD, OP_SUB, OP_MUL:
        return isf ? fp_vxm(int'(o), int'(ty), 0, 0, a, b) : int_vec(o, nb, a, b, 6'd0);
      OP_MIN, OP_MAX, OP_CMPEQ, OP_CMPLT, OP_CMPLE, OP_NEG, OP_ABS, OP_RELU:
        return isf ? float_vec(o, ty, nb, a, b) : int_vec(o, nb, a, b, 6'd0);
      OP_AND, OP_OR, OP_XOR, OP_NOT: return int_vec(o, nb, a, b, 6'd0);
      OP_SHL, OP_SHRA, OP_SHRL: return int_vec(o, nb, a, b, w[SHL_N_LSB +: 6]);
      OP_SEL: return select(nb, m, a, b);
      OP_CONST: return splat(nb, w[CONST_VALUE_LSB +: 32]);
      OP_MOV: return a;
      OP_SUM: return isf ? fp_vxm(int'(o), int'(ty), 0, 0, a, b) : int_reduce(o, nb, a);
      OP_RMAX: return isf ? float_rmax(ty, nb, a) : int_reduce(o, nb, a);
      OP_CVT: begin
        if (ty == ty2 || (!isf && !dtype_float(ty2)))
          return int_cvt(nb, dtype_bytes(ty2), int'(w[CVT_PART_LSB +: 4]), a);
        return fp_vxm(int'(o), int'(ty), int'(ty2), int'(w[CVT_PART_LSB +: 4]), a, b);
      end
      default: return fp_vxm(int'(o), int'(ty), 0, 0, a, b);  // transcendentals
    endcase
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */

  // ---- compute stage + per-class delay ------------------------------------------------------
  logic [VXM_CLASSES-1:0] c_v;
  logic [VXM_CLASSES-1:0][6:0] c_sid;
  logic [VXM_CLASSES-1:0][VBITS-1:0] c_d;
  wire go_ex = iss_v && !err_o;
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      c_v <= '0;
    end else begin
      for (int c = 0; c < VXM_CLASSES; c++) c_v[c] <= go_ex && cls == c;
      for (int c = 0; c < VXM_CLASSES; c++) begin
        if (go_ex && cls == c) begin
          c_sid[c] <= s_dst;
          c_d[c] <= compute(iss_w, va, vb, vm) ^ (c == C_ALU && tst_flip ? VBITS'(1) : '0);
        end
      end
    end
  end

  logic [VXM_CLASSES-1:0] dl_busy;
  for (genvar c = 0; c < VXM_CLASSES; c++) begin : g_cls
    logic [6+VBITS:0] o;
    lpu_delay #(.N(LAT[c] - 1), .W(7 + VBITS)) u_delay (
      .clk, .rst_n, .in_v(c_v[c]), .in_d({c_sid[c], c_d[c]}), .out_v(land_v[c]), .out_d(o), .busy(dl_busy[c]));
    assign land_sid[c] = o[VBITS +: 7];
    assign land_d[c] = o[VBITS-1:0];
  end

  assign busy = |c_v | |dl_busy;
endmodule
