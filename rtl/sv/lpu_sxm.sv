// The two SXM slices (sxm.w at position 0, sxm.e at NPOS - 2) with SXM_QUEUES queues each;
// queue k (0 .. NSXMQ-1) is sxm.w.k for k < SXM_QUEUES, then sxm.e.(k - SXM_QUEUES). Per queue:
//   SHIFT ROT DIST (sxm_shift), PERM (sxm_perm; tables loaded by the host per slice),
//   TRANS (reads its source in t..t+15, writes output vector r in t + sxm_trans + r), and the
//   chip's endpoints, which the SXM queues drive: SEND (the vector leaves on its link in
//   t + c2c_send), RECV (the oldest arrived vector, on the stream in t + c2c_recv), DMAIN /
//   DMAOUT (dma latency). RECV and DMAIN take their vector from lpu_hostif in the issue cycle.
module lpu_sxm
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
(
  input  logic                                     clk,
  input  logic                                     rst_n,
  input  logic [NSXMQ-1:0]                         iss_v,
  input  logic [NSXMQ-1:0][63:0]                   iss_w,
  input  logic [NPOS-1:0][1:0][NSTREAMS-1:0]       sv_v,
  input  logic [VBITS-1:0]                         sv_d [NPOS][2][NSTREAMS],
  // permutation tables (host load): byte i of perm_data = source byte of output byte i
  input  logic                                     perm_we,
  input  logic                                     perm_side,
  input  logic [7:0]                               perm_idx,
  input  logic [VBITS-1:0]                         perm_data,
  // host interface requests (issue cycle) and answers
  output logic [NSXMQ-1:0]                         recv_req,
  output logic [NSXMQ-1:0][7:0]                    recv_link,
  input  logic [NSXMQ-1:0]                         recv_ok,
  input  logic [NSXMQ-1:0][VBITS-1:0]              recv_data,
  output logic [NSXMQ-1:0]                         dmain_req,
  output logic [NSXMQ-1:0][7:0]                    dmain_chan,
  input  logic [NSXMQ-1:0]                         dmain_ok,
  input  logic [NSXMQ-1:0][VBITS-1:0]              dmain_data,
  // outgoing vectors (valid in the cycle they leave)
  output logic [NSXMQ-1:0]                         send_v,
  output logic [NSXMQ-1:0][7:0]                    send_link,
  output logic [NSXMQ-1:0][VBITS-1:0]              send_d,
  output logic [NSXMQ-1:0]                         dmaout_v,
  output logic [NSXMQ-1:0][7:0]                    dmaout_chan,
  output logic [NSXMQ-1:0][VBITS-1:0]              dmaout_d,
  // landing ports: queue q, class c at index q * SXM_CLASSES + c
  output logic [NSXMQ*SXM_CLASSES-1:0]             land_v,
  output logic [NSXMQ*SXM_CLASSES-1:0][6:0]        land_sid,
  output logic [NSXMQ*SXM_CLASSES-1:0][VBITS-1:0]  land_d,
  output logic                                     busy,
  output logic [NSXMQ-1:0]                         err_o,
  output logic [NSXMQ-1:0][7:0]                    err_code_o,
  output logic [NSXMQ-1:0][31:0]                   err_info_o
);
  /* verilator inline_module */
  localparam int C_SHIFT = 0, C_PERM = 1, C_TRANS = 2, C_RECV = 3, C_DMAIN = 4;
  localparam int LAT [SXM_CLASSES] = '{LAT_SXM_SHIFT, LAT_SXM_PERM, LAT_SXM_TRANS, LAT_C2C_RECV, LAT_DMA};
  localparam int PT = $clog2(PERM_TABLES);

  function automatic int qpos(int q);
    return q < SXM_QUEUES ? POS_SXMW : POS_SXME;
  endfunction

  logic [1:0][PERM_TABLES-1:0][VBYTES-1:0][7:0] perm_tab;
  logic [1:0][PERM_TABLES-1:0] perm_def;
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      perm_def <= '0;
    end else if (perm_we && 32'(perm_idx) < 32'(PERM_TABLES)) begin
      perm_tab[perm_side][perm_idx[PT-1:0]] <= perm_data;
      perm_def[perm_side][perm_idx[PT-1:0]] <= 1'b1;
    end
  end

  // SHIFT/ROT by k elements of tb bytes = by k*tb bytes; DIST copies element `lane`.
  function automatic logic [VBITS-1:0] shift_op(logic [7:0] op, int tb, int k, logic [VBITS-1:0] a);
    logic [VBITS-1:0] r;
    int src;
    r = '0;
    for (int j = 0; j < VBYTES; j++) begin
      if (op == OP_DIST) begin
        src = k * tb + j % tb;
      end else begin
        src = j - k * tb;
        if (op == OP_ROT) src = ((src % VBYTES) + VBYTES) % VBYTES;
      end
      if (src >= 0 && src < VBYTES) r[j*8 +: 8] = a[src*8 +: 8];
    end
    return r;
  endfunction

  function automatic logic [VBITS-1:0] perm_op(logic [VBYTES-1:0][7:0] tab, logic [VBITS-1:0] a);
    logic [VBITS-1:0] r;
    for (int i = 0; i < VBYTES; i++) r[i*8 +: 8] = a[tab[i][$clog2(VBYTES)-1:0]*8 +: 8];
    return r;
  endfunction

  // Output vector r, superlane s, lane l = input vector l, superlane s, lane r.
  function automatic logic [15:0][VBITS-1:0] transpose(logic [15:0][VBITS-1:0] m);
    logic [15:0][VBITS-1:0] o;
    for (int r = 0; r < 16; r++)
      for (int s = 0; s < SUPERLANES; s++)
        for (int l = 0; l < 16; l++)
          o[r][(s*SLBYTES + l)*8 +: 8] = m[l][(s*SLBYTES + r)*8 +: 8];
    return o;
  endfunction

  // ---- decode ----------------------------------------------------------------------------------
  logic [NSXMQ-1:0][6:0] s_a, s_dst;
  logic [NSXMQ-1:0][2:0] cls;  // 7: no stream result
  logic [NSXMQ-1:0] ok;
  // TRANS state
  logic [NSXMQ-1:0] tr_act;
  logic [NSXMQ-1:0][3:0] tr_step;
  logic [NSXMQ-1:0][6:0] tr_src, tr_dst;

  always_comb begin
    /* verilator lint_off UNUSEDSIGNAL */
    logic [63:0] w;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [7:0] op;
    logic rd_a, has_dst;
    int p;
    for (int q = 0; q < NSXMQ; q++) begin
      p = qpos(q);
      w = iss_w[q];
      op = w[63:56];
      s_a[q] = w[SHIFT_A_LSB +: 7];
      s_dst[q] = w[SHIFT_DST_LSB +: 7];
      rd_a = 1'b1;
      has_dst = 1'b1;
      cls[q] = 3'(C_SHIFT);
      case (op)
        OP_SHIFT, OP_ROT: ;
        OP_DIST: begin
          s_a[q] = w[DIST_A_LSB +: 7];
          s_dst[q] = w[DIST_DST_LSB +: 7];
        end
        OP_PERM: begin
          s_a[q] = w[PERM_A_LSB +: 7];
          s_dst[q] = w[PERM_DST_LSB +: 7];
          cls[q] = 3'(C_PERM);
        end
        OP_TRANS: begin
          s_a[q] = w[TRANS_A_LSB +: 7];
          s_dst[q] = w[TRANS_DST_LSB +: 7];
          cls[q] = 3'(C_TRANS);
        end
        OP_SEND: begin
          s_a[q] = w[SEND_SRC_LSB +: 7];
          has_dst = 1'b0;
          cls[q] = 3'd7;
        end
        OP_RECV: begin
          s_dst[q] = w[RECV_DST_LSB +: 7];
          rd_a = 1'b0;
          cls[q] = 3'(C_RECV);
        end
        OP_DMAIN: begin
          s_dst[q] = w[DMAIN_DST_LSB +: 7];
          rd_a = 1'b0;
          cls[q] = 3'(C_DMAIN);
        end
        OP_DMAOUT: begin
          s_a[q] = w[DMAOUT_SRC_LSB +: 7];
          has_dst = 1'b0;
          cls[q] = 3'd7;
        end
        default: begin
          rd_a = 1'b0;
          has_dst = 1'b0;
          cls[q] = 3'd7;
        end
      endcase
      err_o[q] = 1'b0;
      err_code_o[q] = E_NONE;
      err_info_o[q] = '0;
      if (iss_v[q]) begin
        if (!(op inside {OP_SHIFT, OP_ROT, OP_DIST, OP_PERM, OP_TRANS, OP_SEND, OP_RECV, OP_DMAIN, OP_DMAOUT})) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_BAD_OP;
          err_info_o[q] = 32'(op);
        end else if (has_dst && s_dst[q][5:0] >= 6'(NSTREAMS)) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_BAD_STREAM;
          err_info_o[q] = 32'(s_dst[q]);
        end else if (rd_a && (s_a[q][5:0] >= 6'(NSTREAMS) || !sv_v[p][s_a[q][6]][s_a[q][2:0]])) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_EMPTY_READ;
          err_info_o[q] = {16'(p), 9'd0, s_a[q]};
        end else if (op == OP_PERM && (32'(w[PERM_TABLE_LSB +: 8]) >= 32'(PERM_TABLES) ||
                                       !perm_def[q >= SXM_QUEUES][w[PERM_TABLE_LSB +: PT]])) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_PERM_UNDEFINED;
          err_info_o[q] = 32'(w[PERM_TABLE_LSB +: 8]);
        end else if (op == OP_RECV && !recv_ok[q]) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_RECV_EMPTY;
          err_info_o[q] = 32'(w[RECV_LINK_LSB +: 8]);
        end else if (op == OP_DMAIN && !dmain_ok[q]) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_DMA_EMPTY;
          err_info_o[q] = 32'(w[DMAIN_CHAN_LSB +: 8]);
        end
      end
      // TRANS steps 1..15 read their source too
      if (tr_act[q] && (tr_src[q][5:0] >= 6'(NSTREAMS) || !sv_v[p][tr_src[q][6]][tr_src[q][2:0]])) begin
        err_o[q] = 1'b1;
        err_code_o[q] = E_EMPTY_READ;
        err_info_o[q] = {16'(p), 9'd0, tr_src[q]};
      end
      ok[q] = iss_v[q] && !err_o[q];
    end
  end

  for (genvar q = 0; q < NSXMQ; q++) begin : g_req
    assign recv_req[q] = iss_v[q] && iss_w[q][63:56] == OP_RECV;
    assign recv_link[q] = iss_w[q][RECV_LINK_LSB +: 8];
    assign dmain_req[q] = iss_v[q] && iss_w[q][63:56] == OP_DMAIN;
    assign dmain_chan[q] = iss_w[q][DMAIN_CHAN_LSB +: 8];
  end

  // ---- issue-cycle compute: SHIFT, PERM, RECV, DMAIN; SEND and DMAOUT capture their vector ----
  localparam int NCOMP = 4;  // classes computed in the issue cycle (all but TRANS)
  logic [NSXMQ-1:0] c_v;
  logic [NSXMQ-1:0][2:0] c_cls;
  logic [NSXMQ-1:0][6:0] c_sid;
  logic [NSXMQ-1:0][VBITS-1:0] c_d;
  logic [NSXMQ-1:0] snd_v, dmo_v;
  logic [NSXMQ-1:0][7:0] snd_idx, dmo_idx;
  logic [NSXMQ-1:0][VBITS-1:0] snd_d, dmo_d;
  always_ff @(posedge clk) begin
    /* verilator lint_off UNUSEDSIGNAL */
    logic [63:0] w;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [VBITS-1:0] a;
    if (!rst_n) begin
      c_v <= '0;
      snd_v <= '0;
      dmo_v <= '0;
    end else begin
      for (int q = 0; q < NSXMQ; q++) begin
        w = iss_w[q];
        a = sv_d[qpos(q)][s_a[q][6]][s_a[q][2:0]];
        c_v[q] <= ok[q] && cls[q] != 3'(C_TRANS) && cls[q] != 3'd7;
        snd_v[q] <= ok[q] && w[63:56] == OP_SEND;
        dmo_v[q] <= ok[q] && w[63:56] == OP_DMAOUT;
        if (ok[q]) begin
          c_cls[q] <= cls[q];
          c_sid[q] <= s_dst[q];
          case (w[63:56])
            OP_SHIFT, OP_ROT: c_d[q] <= shift_op(w[63:56], dtype_bytes(w[55:52]), int'($signed(w[SHIFT_K_LSB +: SHIFT_K_W])), a);
            OP_DIST: c_d[q] <= shift_op(w[63:56], dtype_bytes(w[55:52]), int'(w[DIST_LANE_LSB +: DIST_LANE_W]), a);
            OP_PERM: c_d[q] <= perm_op(perm_tab[q >= SXM_QUEUES][w[PERM_TABLE_LSB +: PT]], a);
            OP_RECV: c_d[q] <= recv_data[q];
            OP_DMAIN: c_d[q] <= dmain_data[q];
            OP_SEND: begin
              snd_idx[q] <= w[SEND_LINK_LSB +: 8];
              snd_d[q] <= a;
            end
            OP_DMAOUT: begin
              dmo_idx[q] <= w[DMAOUT_CHAN_LSB +: 8];
              dmo_d[q] <= a;
            end
            default: ;
          endcase
        end
      end
    end
  end

  // ---- TRANS: capture 16 inputs, transpose into an output bank, write one output per cycle ----
  logic [NSXMQ-1:0][14:0][VBITS-1:0] tr_in;
  logic [NSXMQ-1:0][1:0][15:0][VBITS-1:0] tr_out;
  logic [NSXMQ-1:0][1:0] tr_ob_v;          // output bank holds a transpose still to be written
  logic [NSXMQ-1:0][1:0][5:0] tr_ob_cnt;   // cycles left: > 16 waiting, 16..1 writing output 16 - cnt
  logic [NSXMQ-1:0][1:0][6:0] tr_ob_sid;
  logic [NSXMQ-1:0] tr_bank, tr_lv;
  logic [NSXMQ-1:0][6:0] tr_lsid;
  logic [NSXMQ-1:0][VBITS-1:0] tr_ld;
  always_ff @(posedge clk) begin
    logic start;
    logic [3:0] k;
    /* verilator lint_off UNUSEDSIGNAL */
    logic [6:0] src;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [VBITS-1:0] x;
    if (!rst_n) begin
      tr_act <= '0;
      tr_step <= '0;
      tr_ob_v <= '0;
      tr_bank <= '0;
      tr_lv <= '0;
    end else begin
      tr_lv <= '0;
      for (int q = 0; q < NSXMQ; q++) begin
        // outputs: bank b writes output r at the end of cycle start + LAT - 1 + r
        for (int b = 0; b < 2; b++) begin
          if (tr_ob_v[q][b]) begin
            tr_ob_cnt[q][b] <= tr_ob_cnt[q][b] - 1'b1;
            if (tr_ob_cnt[q][b] <= 16) begin
              tr_lv[q] <= 1'b1;
              tr_lsid[q] <= tr_ob_sid[q][b];
              tr_ld[q] <= tr_out[q][b][4'(16 - 32'(tr_ob_cnt[q][b]))];
              if (tr_ob_cnt[q][b] == 1) tr_ob_v[q][b] <= 1'b0;
            end
          end
        end
        start = ok[q] && cls[q] == 3'(C_TRANS);
        k = start ? 4'd0 : tr_step[q];
        src = start ? s_a[q] : tr_src[q];
        x = sv_d[qpos(q)][src[6]][src[2:0]];
        if ((start || tr_act[q]) && !err_o[q]) begin
          if (k != 4'd15) tr_in[q][k] <= x;
          if (start) begin
            tr_act[q] <= 1'b1;
            tr_step[q] <= 4'd1;
            tr_src[q] <= s_a[q];
            tr_dst[q] <= s_dst[q];
          end else if (tr_step[q] == 4'd15) begin
            tr_act[q] <= 1'b0;
            tr_out[q][tr_bank[q]] <= transpose({x, tr_in[q]});
            tr_ob_v[q][tr_bank[q]] <= 1'b1;
            tr_ob_sid[q][tr_bank[q]] <= tr_dst[q];
            // ready from start + 16; output 0 is written LAT - 17 cycles later
            tr_ob_cnt[q][tr_bank[q]] <= 6'(LAT_SXM_TRANS - 17 + 16);
            tr_bank[q] <= ~tr_bank[q];
          end else begin
            tr_step[q] <= tr_step[q] + 1'b1;
          end
        end
      end
    end
  end

  // ---- landing ports and outgoing delays -------------------------------------------------------
  logic [NSXMQ*SXM_CLASSES-1:0] dl_busy;
  logic [NSXMQ-1:0] snd_busy, dmo_busy;
  for (genvar q = 0; q < NSXMQ; q++) begin : g_q
    for (genvar c = 0; c < SXM_CLASSES; c++) begin : g_cls
      localparam int I = q * SXM_CLASSES + c;
      logic [6+VBITS:0] o;
      if (c == C_TRANS) begin : g_tr
        assign land_v[I] = tr_lv[q];
        assign o = {tr_lsid[q], tr_ld[q]};
        assign dl_busy[I] = tr_act[q] | (|tr_ob_v[q]);
      end else begin : g_dl
        lpu_delay #(.N(LAT[c] - 1), .W(7 + VBITS)) u_delay (
          .clk, .rst_n, .in_v(c_v[q] && 32'(c_cls[q]) == c), .in_d({c_sid[q], c_d[q]}), .out_v(land_v[I]), .out_d(o),
          .busy(dl_busy[I]));
      end
      assign land_sid[I] = o[VBITS +: 7];
      assign land_d[I] = o[VBITS-1:0];
    end
    logic [8+VBITS-1:0] snd_o, dmo_o;
    lpu_delay #(.N(LAT_C2C_SEND - 1), .W(8 + VBITS)) u_send (
      .clk, .rst_n, .in_v(snd_v[q]), .in_d({snd_idx[q], snd_d[q]}), .out_v(send_v[q]), .out_d(snd_o), .busy(snd_busy[q]));
    lpu_delay #(.N(LAT_DMA - 1), .W(8 + VBITS)) u_dmaout (
      .clk, .rst_n, .in_v(dmo_v[q]), .in_d({dmo_idx[q], dmo_d[q]}), .out_v(dmaout_v[q]), .out_d(dmo_o), .busy(dmo_busy[q]));
    assign send_link[q] = snd_o[VBITS +: 8];
    assign send_d[q] = snd_o[VBITS-1:0];
    assign dmaout_chan[q] = dmo_o[VBITS +: 8];
    assign dmaout_d[q] = dmo_o[VBITS-1:0];
  end

  assign busy = |c_v | |snd_v | |dmo_v | |snd_busy | |dmo_busy | |tr_lv | |land_v | |dl_busy;
  wire _unused = &{1'b0, NCOMP[0]};
endmodule
