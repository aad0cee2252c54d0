// One MXM plane (mxm.e.0) with its MXM_QUEUES queues (docs/timing.md rules 15-18).
//   LW.t s, row   staging row `row` = the vector on s (written at the end of the issue cycle).
//   LWM rows      (rule 15a) arrive on the weight bus (wb_*, one port per east MEM slice, so
//                 up to NWB rows per cycle) in their landing cycle u and are written into staging
//                 at the end of u, as an LW issued in u; an LW of the same cycle to the same row
//                 is written after them (the model's order: landings first, then the cycle's
//                 instructions).
//   IW.t tr       the staging rows are copied into an install queue in t and become the
//                 active weights for MMs issued from t + mxm_iw on (so LW may reload the
//                 staging buffer from t on, and rows landing in t belong to the next install:
//                 double buffering, rule 16). tr = 1 copies them transposed (W[i][j] = staging
//                 row j, element i, for i, j < n = VBYTES / sizeof(t)): the same copy through
//                 a fixed crossbar (one for 1-byte and one for 2-byte elements), same timing.
//   MM/MMA.t s,a  x is read in t and multiplied with the weights active in t; the new
//                 accumulator value (MMA: from the value left by every earlier MM/MMA, forwarded
//                 from the accumulate pipeline) goes down an (mxm_mm - 1)-stage pipeline and is
//                 written at the end of t + mxm_mm - 1: readable by ACCRD from t + mxm_mm.
//                 int8 weights: 32 x 32 int8 MACs into int32 (native). Float weights: the DPI
//                 model lpu_dpi_mxm_f (f32 products and sums in column order).
//   ACCRD.t a,d,p part p of accumulator a converted to t, on d in t + mxm_rd.
// The plane multiplies one vector per cycle: two MM/MMA in one cycle are a structural error.
module lpu_mxm
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
  import lpu_alu_pkg::*;
  import lpu_dpi_pkg::*;
#(
  parameter int PEND = 4  // IWs that may wait for their effective cycle at once
) (
  input  logic                                 clk,
  input  logic                                 rst_n,
  input  logic [47:0]                          cycle,
  input  logic [MXM_QUEUES-1:0]                iss_v,
  input  logic [MXM_QUEUES-1:0][63:0]          iss_w,
  input  logic [1:0][NSTREAMS-1:0]             pv,
  input  logic [VBITS-1:0]            pd [2][NSTREAMS],
  // weight bus: LWM rows landing in this cycle (lpu_mem)
  input  logic [NWB-1:0]                       wb_v,
  input  logic [NWB-1:0][WROW_B-1:0]           wb_row,
  input  logic [NWB-1:0][VBITS-1:0]            wb_d,
  input  logic                                 tst_no_tr,  // test only: ignore IW's tr
  output logic [MXM_QUEUES-1:0]                land_v,
  output logic [MXM_QUEUES-1:0][6:0]           land_sid,
  output logic [MXM_QUEUES-1:0][VBITS-1:0]     land_d,
  // observation: accumulator written at the end of this cycle
  output logic                                 obs_acc_we,
  output logic [7:0]                           obs_acc_idx,
  output logic [VBYTES*32-1:0]                 obs_acc_d,
  output logic                                 busy,
  output logic [MXM_QUEUES-1:0]                err_o,
  output logic [MXM_QUEUES-1:0][7:0]           err_code_o,
  output logic [MXM_QUEUES-1:0][31:0]          err_info_o
);
  /* verilator inline_module */
  localparam int ACCW = VBYTES * 32;
  localparam int NST = LAT_MXM_MM - 1;  // accumulate pipeline stages (mxm_mm >= 2)
  localparam int AB = $clog2(MXM_ACCS);
  localparam int RB = $clog2(VBYTES);
  localparam int PB = $clog2(PEND);

  logic [VBYTES-1:0][VBITS-1:0] stg;                 // staging rows
  logic [VBYTES-1:0][VBITS-1:0] pw [PEND];           // installs waiting for their cycle
  logic [3:0] pt [PEND];
  logic [47:0] peff [PEND];
  logic [PB-1:0] phead;
  logic [PB:0] pcnt;
  logic [VBYTES-1:0][VBITS-1:0] aw;                  // active weights
  logic [3:0] at;
  logic has_act;
  logic [ACCW-1:0] acc [MXM_ACCS];
  logic [MXM_ACCS-1:0] acc_f;
  logic [MXM_ACCS-1:0][5:0] acc_n;
  logic [NST-1:0] mp_v;
  logic [NST-1:0][AB-1:0] mp_idx;
  logic [NST-1:0] mp_f;
  logic [NST-1:0][5:0] mp_n;
  logic [NST-1:0][ACCW-1:0] mp_d;

  function automatic logic sval(logic [6:0] sid, logic [1:0][NSTREAMS-1:0] v);
    return sid[5:0] < 6'(NSTREAMS) && v[sid[6]][sid[2:0]];
  endfunction

  // Weights in use this cycle: an install that becomes effective now counts.
  wire promote = pcnt != 0 && peff[phead] <= cycle;
  wire [VBYTES-1:0][VBITS-1:0] wnow = promote ? pw[phead] : aw;
  wire [3:0] tnow = promote ? pt[phead] : at;
  wire hnow = promote || has_act;

  // ---- decode ------------------------------------------------------------------------------
  logic mm_go, mm_mma, iw_go, iw_tr;
  logic [AB-1:0] mm_idx;
  logic [3:0] mm_t, iw_t;
  logic [VBITS-1:0] mm_x;
  logic [MXM_QUEUES-1:0] lw_go, rd_go;
  logic [RB-1:0] lw_row [MXM_QUEUES];
  logic [VBITS-1:0] lw_x [MXM_QUEUES];
  logic [AB-1:0] rd_idx [MXM_QUEUES];
  logic [6:0] rd_dst [MXM_QUEUES];
  logic [3:0] rd_t [MXM_QUEUES];
  logic [3:0] rd_part [MXM_QUEUES];
  // forwarded accumulator (value, float, elements) for the MM of this cycle
  logic [ACCW-1:0] fwd_d;
  logic fwd_f;
  logic [5:0] fwd_n;

  function automatic logic in_flight(logic [AB-1:0] idx, logic [NST-1:0] v, logic [NST-1:0][AB-1:0] ids);
    for (int s = 0; s < NST; s++)
      if (v[s] && ids[s] == idx) return 1'b1;
    return 1'b0;
  endfunction

  always_comb begin
    /* verilator lint_off UNUSEDSIGNAL */
    logic [63:0] w;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [7:0] op;
    logic [6:0] src;
    int nmm, niw;
    nmm = 0;
    niw = 0;
    mm_go = 1'b0;
    mm_mma = 1'b0;
    mm_idx = '0;
    mm_t = '0;
    mm_x = '0;
    iw_go = 1'b0;
    iw_t = '0;
    iw_tr = 1'b0;
    lw_go = '0;
    rd_go = '0;
    fwd_d = '0;
    fwd_f = 1'b0;
    fwd_n = '0;
    for (int q = 0; q < MXM_QUEUES; q++) begin
      w = iss_w[q];
      op = w[63:56];
      lw_row[q] = w[LW_ROW_LSB +: RB];
      src = w[LW_SRC_LSB +: 7];
      lw_x[q] = pd[src[6]][src[2:0]];
      rd_idx[q] = w[ACCRD_ACC_LSB +: AB];
      rd_dst[q] = w[ACCRD_DST_LSB +: 7];
      rd_t[q] = w[55:52];
      rd_part[q] = w[ACCRD_PART_LSB +: 4];
      err_o[q] = 1'b0;
      err_code_o[q] = E_NONE;
      err_info_o[q] = '0;
      if (iss_v[q]) begin
        case (op)
          OP_LW: begin
            if (!sval(src, pv)) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_EMPTY_READ;
              err_info_o[q] = {16'(POS_MXM), 9'd0, src};
            end else if (32'(w[LW_ROW_LSB +: LW_ROW_W]) >= 32'(VBYTES / dtype_bytes(w[55:52]))) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_ADDR_RANGE;
              err_info_o[q] = 32'(w[LW_ROW_LSB +: LW_ROW_W]);
            end else begin
              lw_go[q] = 1'b1;
            end
          end
          OP_IW: begin
            niw = niw + 1;
            iw_go = 1'b1;
            iw_t = w[55:52];
            iw_tr = w[IW_TR_LSB] && !tst_no_tr;
            if (niw > 1) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_STRUCTURAL;
              err_info_o[q] = 32'd2;
            end else if (32'(pcnt) >= 32'(PEND)) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_STRUCTURAL;
              err_info_o[q] = 32'd3;
            end
          end
          OP_MM, OP_MMA: begin
            nmm = nmm + 1;
            src = w[MM_SRC_LSB +: 7];
            mm_idx = w[MM_ACC_LSB +: AB];
            mm_mma = op == OP_MMA;
            mm_t = w[55:52];
            mm_x = pd[src[6]][src[2:0]];
            fwd_d = acc[mm_idx];
            fwd_f = acc_f[mm_idx];
            fwd_n = acc_n[mm_idx];
            for (int s = NST - 1; s >= 0; s--) begin
              if (mp_v[s] && mp_idx[s] == mm_idx) begin
                fwd_d = mp_d[s];
                fwd_f = mp_f[s];
                fwd_n = mp_n[s];
              end
            end
            if (!sval(src, pv)) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_EMPTY_READ;
              err_info_o[q] = {16'(POS_MXM), 9'd0, src};
            end else if (32'(w[MM_ACC_LSB +: MM_ACC_W]) >= 32'(MXM_ACCS)) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_ADDR_RANGE;
              err_info_o[q] = 32'(w[MM_ACC_LSB +: MM_ACC_W]);
            end else if (!hnow) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_MXM_NO_WEIGHTS;
            end else if (tnow != mm_t) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_MXM_TYPE;
            end else if (mm_mma && fwd_n != 0 && (fwd_f != dtype_float(mm_t) ||
                                                    32'(fwd_n) != 32'(VBYTES / dtype_bytes(mm_t)))) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_MXM_ACC_TYPE;
            end else if (nmm > 1) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_STRUCTURAL;
              err_info_o[q] = 32'd1;
            end else begin
              mm_go = 1'b1;
            end
          end
          OP_ACCRD: begin
            if (32'(w[ACCRD_ACC_LSB +: ACCRD_ACC_W]) >= 32'(MXM_ACCS)) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_ADDR_RANGE;
              err_info_o[q] = 32'(w[ACCRD_ACC_LSB +: ACCRD_ACC_W]);
            end else if (rd_dst[q][5:0] >= 6'(NSTREAMS)) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_BAD_STREAM;
              err_info_o[q] = 32'(rd_dst[q]);
            end else if (acc_n[rd_idx[q]] == 0 && !in_flight(rd_idx[q], mp_v, mp_idx)) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_ACC_UNWRITTEN;
              err_info_o[q] = 32'(rd_idx[q]);
            end else if (in_flight(rd_idx[q], mp_v, mp_idx)) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_ACC_NOT_READY;
              err_info_o[q] = 32'(rd_idx[q]);
            end else begin
              rd_go[q] = 1'b1;
            end
          end
          default: begin
            if (!(op inside {OP_SYNC, OP_NOTIFY, OP_CONFIG, OP_HALT, OP_DESKEW})) begin
              err_o[q] = 1'b1;
              err_code_o[q] = E_BAD_OP;
              err_info_o[q] = 32'(op);
            end
          end
        endcase
      end
    end
    if (|err_o) begin
      mm_go = 1'b0;
      iw_go = 1'b0;
    end
  end

  // int8 x int8 -> int32: acc[i] (+)= sum_j W[i][j] x[j], W[i][j] = byte j of staging row i.
  function automatic logic [ACCW-1:0] mm_i8(logic [VBYTES-1:0][VBITS-1:0] wt, logic [VBITS-1:0] x,
                                             logic [ACCW-1:0] a, logic mma);
    logic [ACCW-1:0] r;
    logic [31:0] s;
    for (int i = 0; i < VBYTES; i++) begin
      s = mma ? a[i*32 +: 32] : 32'd0;
      for (int j = 0; j < VBYTES; j++)
        s = s + 32'($signed(wt[i][j*8 +: 8]) * $signed(x[j*8 +: 8]));
      r[i*32 +: 32] = s;
    end
    return r;
  endfunction

  // The staging buffer transposed: element j of row i <- element i of row j, for i, j < n,
  // elements of 1 byte (i8, e4m3, e5m2: n = VBYTES) or of 2 bytes (`wide`: f16, bf16: n =
  // VBYTES / 2). Wiring only; rows n.. (outside the n x n plane, no MM reads them) are copied
  // as they are.
  function automatic logic [VBYTES-1:0][VBITS-1:0] transpose(logic [VBYTES-1:0][VBITS-1:0] s, logic wide);
    logic [VBYTES-1:0][VBITS-1:0] r;
    r = s;
    if (wide) begin
      for (int i = 0; i < VBYTES / 2; i++)
        for (int j = 0; j < VBYTES / 2; j++) r[i][j*16 +: 16] = s[j][i*16 +: 16];
    end else begin
      for (int i = 0; i < VBYTES; i++)
        for (int j = 0; j < VBYTES; j++) r[i][j*8 +: 8] = s[j][i*8 +: 8];
    end
    return r;
  endfunction

  // ACCRD from an int32 accumulator to an integer type: element j of part p = sat(acc[p*m + j]).
  function automatic logic [VBITS-1:0] rd_int(int n, int tb, int part, logic [ACCW-1:0] a);
    logic [VBITS-1:0] r;
    int m, src;
    m = VBYTES / tb;
    r = '0;
    for (int j = 0; j < m; j++) begin
      src = part * m + j;
      if (src < n) r = put(r, j, tb, sat(a[src*32 +: 32], 8 * tb));
    end
    return r;
  endfunction

  // ---- state -------------------------------------------------------------------------------
  logic [MXM_QUEUES-1:0] r1_v;
  logic [MXM_QUEUES-1:0][6:0] r1_sid;
  logic [MXM_QUEUES-1:0][VBITS-1:0] r1_d;
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      pcnt <= '0;
      phead <= '0;
      has_act <= 1'b0;
      mp_v <= '0;
      r1_v <= '0;
      acc_f <= '0;
      acc_n <= '0;
    end else begin
      for (int i = 0; i < NWB; i++)
        if (wb_v[i]) stg[wb_row[i]] <= wb_d[i];
      for (int q = 0; q < MXM_QUEUES; q++)
        if (lw_go[q]) stg[lw_row[q]] <= lw_x[q];
      // installs
      if (promote) begin
        aw <= pw[phead];
        at <= pt[phead];
        has_act <= 1'b1;
        phead <= phead + 1'b1;
      end
      if (iw_go) begin
        pw[PB'(32'(phead) + 32'(pcnt))] <= iw_tr ? transpose(stg, dtype_bytes(iw_t) == 2) : stg;
        pt[PB'(32'(phead) + 32'(pcnt))] <= iw_t;
        peff[PB'(32'(phead) + 32'(pcnt))] <= cycle + 48'(LAT_MXM_IW);
      end
      pcnt <= pcnt + (PB+1)'(iw_go) - (PB+1)'(promote);
      // accumulate pipeline
      mp_v[0] <= mm_go;
      if (mm_go) begin
        mp_idx[0] <= mm_idx;
        mp_f[0] <= dtype_float(mm_t);
        mp_n[0] <= 6'(VBYTES / dtype_bytes(mm_t));
        if (dtype_float(mm_t)) mp_d[0] <= fp_mxm(int'(mm_t), wnow, mm_x, fwd_d, int'(mm_mma));
        else mp_d[0] <= mm_i8(wnow, mm_x, fwd_d, mm_mma);
      end
      for (int s = 1; s < NST; s++) begin
        mp_v[s] <= mp_v[s-1];
        if (mp_v[s-1]) begin
          mp_idx[s] <= mp_idx[s-1];
          mp_f[s] <= mp_f[s-1];
          mp_n[s] <= mp_n[s-1];
          mp_d[s] <= mp_d[s-1];
        end
      end
      if (mp_v[NST-1]) begin
        acc[mp_idx[NST-1]] <= mp_d[NST-1];
        acc_f[mp_idx[NST-1]] <= mp_f[NST-1];
        acc_n[mp_idx[NST-1]] <= mp_n[NST-1];
      end
      // readout
      for (int q = 0; q < MXM_QUEUES; q++) begin
        r1_v[q] <= rd_go[q] && !err_o[q];
        if (rd_go[q] && !err_o[q]) begin
          r1_sid[q] <= rd_dst[q];
          if (acc_f[rd_idx[q]])
            r1_d[q] <= fp_accrd(1, int'(acc_n[rd_idx[q]]), int'(rd_t[q]), int'(rd_part[q]), acc[rd_idx[q]]);
          else if (!dtype_float(rd_t[q]))
            r1_d[q] <= rd_int(int'(acc_n[rd_idx[q]]), dtype_bytes(rd_t[q]), int'(rd_part[q]), acc[rd_idx[q]]);
          else
            r1_d[q] <= fp_accrd(0, int'(acc_n[rd_idx[q]]), int'(rd_t[q]), int'(rd_part[q]), acc[rd_idx[q]]);
        end
      end
    end
  end

  logic [MXM_QUEUES-1:0] dl_busy;
  for (genvar q = 0; q < MXM_QUEUES; q++) begin : g_rd
    logic [6+VBITS:0] o;
    lpu_delay #(.N(LAT_MXM_RD - 1), .W(7 + VBITS)) u_delay (
      .clk, .rst_n, .in_v(r1_v[q]), .in_d({r1_sid[q], r1_d[q]}), .out_v(land_v[q]), .out_d(o), .busy(dl_busy[q]));
    assign land_sid[q] = o[VBITS +: 7];
    assign land_d[q] = o[VBITS-1:0];
  end

  assign obs_acc_we = mp_v[NST-1];
  assign obs_acc_idx = 8'(mp_idx[NST-1]);
  assign obs_acc_d = mp_d[NST-1];
  assign busy = |mp_v | |r1_v | |dl_busy | pcnt != 0;
endmodule
