// One SXM slice (sxm.w or sxm.e) with its SXM_QUEUES queues. Per queue:
//   SHIFT ROT DIST (sxm_shift), PERM (sxm_perm; tables loaded by the host), TRANS (reads its
//   source in t..t+15, writes output vector r in t + sxm_trans + r), and the chip's endpoints,
//   which the SXM queues drive: SEND (the vector leaves on the link in t + c2c_send), RECV (the
//   oldest arrived vector, on the stream in t + c2c_recv), DMAIN/DMAOUT (dma latency).
// RECV and DMAIN take their vector from the host interface (lpu_hostif) in the issue cycle.
module lpu_sxm
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
#(
  parameter int POS = 0
) (
  input  logic                                     clk,
  input  logic                                     rst_n,
  input  logic [SXM_QUEUES-1:0]                    iss_v,
  input  logic [SXM_QUEUES-1:0][63:0]              iss_w,
  input  logic [1:0][NSTREAMS-1:0]                 pv,
  input  logic [1:0][NSTREAMS-1:0][VBITS-1:0]      pd,
  // permutation tables (host load): byte i of ld_data = source byte of output byte i
  input  logic                                     perm_we,
  input  logic [7:0]                               perm_idx,
  input  logic [VBITS-1:0]                         perm_data,
  // host interface requests (issue cycle) and answers
  output logic [SXM_QUEUES-1:0]                    recv_req,
  output logic [SXM_QUEUES-1:0][7:0]               recv_link,
  input  logic [SXM_QUEUES-1:0]                    recv_ok,
  input  logic [SXM_QUEUES-1:0][VBITS-1:0]         recv_data,
  output logic [SXM_QUEUES-1:0]                    dmain_req,
  output logic [SXM_QUEUES-1:0][7:0]               dmain_chan,
  input  logic [SXM_QUEUES-1:0]                    dmain_ok,
  input  logic [SXM_QUEUES-1:0][VBITS-1:0]         dmain_data,
  // outgoing vectors (valid in the cycle they leave)
  output logic [SXM_QUEUES-1:0]                    send_v,
  output logic [SXM_QUEUES-1:0][7:0]               send_link,
  output logic [SXM_QUEUES-1:0][VBITS-1:0]         send_d,
  output logic [SXM_QUEUES-1:0]                    dmaout_v,
  output logic [SXM_QUEUES-1:0][7:0]               dmaout_chan,
  output logic [SXM_QUEUES-1:0][VBITS-1:0]         dmaout_d,
  // landing ports: queue q, class c at index q * SXM_CLASSES + c
  output logic [SXM_QUEUES*SXM_CLASSES-1:0]        land_v,
  output logic [SXM_QUEUES*SXM_CLASSES-1:0][6:0]   land_sid,
  output logic [SXM_QUEUES*SXM_CLASSES-1:0][VBITS-1:0] land_d,
  output logic                                     busy,
  output logic [SXM_QUEUES-1:0]                    err_o,
  output logic [SXM_QUEUES-1:0][7:0]               err_code_o,
  output logic [SXM_QUEUES-1:0][31:0]              err_info_o
);
  localparam int C_SHIFT = 0, C_PERM = 1, C_TRANS = 2, C_RECV = 3, C_DMAIN = 4;
  localparam int NCOMP = 4;  // classes computed in the issue cycle (all but TRANS)
  localparam int LAT [SXM_CLASSES] = '{LAT_SXM_SHIFT, LAT_SXM_PERM, LAT_SXM_TRANS, LAT_C2C_RECV, LAT_DMA};

  logic [VBYTES-1:0][7:0] perm_tab [PERM_TABLES];
  logic [PERM_TABLES-1:0] perm_def;
  always_ff @(posedge clk) begin
    if (perm_we && 32'(perm_idx) < 32'(PERM_TABLES)) begin
      perm_tab[perm_idx[$clog2(PERM_TABLES)-1:0]] <= perm_data;
      perm_def[perm_idx[$clog2(PERM_TABLES)-1:0]] <= 1'b1;
    end
  end

  function automatic logic sval(logic [6:0] sid, logic [1:0][NSTREAMS-1:0] v);
    return sid[5:0] < 6'(NSTREAMS) && v[sid[6]][sid[2:0]];
  endfunction

  // SHIFT/ROT by k elements of tb bytes = by k*tb bytes; DIST copies element `lane`.
  function automatic logic [VBITS-1:0] shift_op(logic [7:0] op, int tb, int k, logic [VBITS-1:0] a);
    logic [VBITS-1:0] r;
    int kb, src;
    kb = k * tb;
    r = '0;
    for (int j = 0; j < VBYTES; j++) begin
      if (op == OP_DIST) begin
        src = k * tb + j % tb;
      end else begin
        src = j - kb;
        if (op == OP_ROT) src = ((src % VBYTES) + VBYTES) % VBYTES;
      end
      if (src >= 0 && src < VBYTES) r[j*8 +: 8] = a[src*8 +: 8];
    end
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

  logic [SXM_QUEUES-1:0] q_busy;

  for (genvar q = 0; q < SXM_QUEUES; q++) begin : g_q
    /* verilator lint_off UNUSEDSIGNAL */
    wire [63:0] w = iss_w[q];
    /* verilator lint_on UNUSEDSIGNAL */
    wire [7:0] op = w[63:56];
    logic [6:0] s_a, s_dst;
    logic rd_a, has_dst;
    int cls;
    // TRANS sequencer
    logic tr_act;
    logic [3:0] tr_step;
    logic [6:0] tr_src, tr_dst;
    logic [14:0][VBITS-1:0] tr_in;
    logic [15:0][VBITS-1:0] tr_out [2];
    logic [1:0] tr_ob_v;          // output bank holds a transpose still to be written
    logic [5:0] tr_ob_cnt [2];    // cycles until its output r = 0 is written / outputs written
    logic [6:0] tr_ob_sid [2];
    logic tr_bank;

    always_comb begin
      s_a = w[SHIFT_A_LSB +: 7];
      s_dst = w[SHIFT_DST_LSB +: 7];
      rd_a = 1'b1;
      has_dst = 1'b1;
      cls = C_SHIFT;
      err_o[q] = 1'b0;
      err_code_o[q] = E_NONE;
      err_info_o[q] = '0;
      case (op)
        OP_SHIFT, OP_ROT: cls = C_SHIFT;
        OP_DIST: begin
          s_a = w[DIST_A_LSB +: 7];
          s_dst = w[DIST_DST_LSB +: 7];
          cls = C_SHIFT;
        end
        OP_PERM: begin
          s_a = w[PERM_A_LSB +: 7];
          s_dst = w[PERM_DST_LSB +: 7];
          cls = C_PERM;
        end
        OP_TRANS: begin
          s_a = w[TRANS_A_LSB +: 7];
          s_dst = w[TRANS_DST_LSB +: 7];
          cls = C_TRANS;
        end
        OP_SEND: begin
          s_a = w[SEND_SRC_LSB +: 7];
          has_dst = 1'b0;
          cls = -1;
        end
        OP_RECV: begin
          s_dst = w[RECV_DST_LSB +: 7];
          rd_a = 1'b0;
          cls = C_RECV;
        end
        OP_DMAIN: begin
          s_dst = w[DMAIN_DST_LSB +: 7];
          rd_a = 1'b0;
          cls = C_DMAIN;
        end
        OP_DMAOUT: begin
          s_a = w[DMAOUT_SRC_LSB +: 7];
          has_dst = 1'b0;
          cls = -1;
        end
        default: begin
          rd_a = 1'b0;
          has_dst = 1'b0;
          cls = -1;
        end
      endcase
      if (iss_v[q]) begin
        if (!(op inside {OP_SHIFT, OP_ROT, OP_DIST, OP_PERM, OP_TRANS, OP_SEND, OP_RECV, OP_DMAIN, OP_DMAOUT,
                         OP_DESKEW, OP_SYNC, OP_NOTIFY, OP_CONFIG, OP_HALT})) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_BAD_OP;
          err_info_o[q] = 32'(op);
        end else if (has_dst && s_dst[5:0] >= 6'(NSTREAMS)) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_BAD_STREAM;
          err_info_o[q] = 32'(s_dst);
        end else if (rd_a && !sval(s_a, pv)) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_EMPTY_READ;
          err_info_o[q] = {16'(POS), 9'd0, s_a};
        end else if (op == OP_PERM && (32'(w[PERM_TABLE_LSB +: 8]) >= 32'(PERM_TABLES) ||
                                       !perm_def[w[PERM_TABLE_LSB +: $clog2(PERM_TABLES)]])) begin
          err_o[q] = 1'b1;
          err_code_o[q] = E_PERM_UNDEFINED;
          err_info_o[q] = 32'(w[PERM_TABLE_LSB +: 8]);
        end else if (op == OP_RECV) begin
          if (!recv_ok[q]) begin
            err_o[q] = 1'b1;
            err_code_o[q] = E_RECV_EMPTY;
            err_info_o[q] = 32'(w[RECV_LINK_LSB +: 8]);
          end
        end else if (op == OP_DMAIN) begin
          if (!dmain_ok[q]) begin
            err_o[q] = 1'b1;
            err_code_o[q] = E_DMA_EMPTY;
            err_info_o[q] = 32'(w[DMAIN_CHAN_LSB +: 8]);
          end
        end
      end
      // TRANS steps 1..15 read their source too
      if (tr_act && !sval(tr_src, pv)) begin
        err_o[q] = 1'b1;
        err_code_o[q] = E_EMPTY_READ;
        err_info_o[q] = {16'(POS), 9'd0, tr_src};
      end
    end

    assign recv_req[q] = iss_v[q] && op == OP_RECV;
    assign recv_link[q] = w[RECV_LINK_LSB +: 8];
    assign dmain_req[q] = iss_v[q] && op == OP_DMAIN;
    assign dmain_chan[q] = w[DMAIN_CHAN_LSB +: 8];
    wire ok = iss_v[q] && !err_o[q];
    wire [VBITS-1:0] va = pd[s_a[6]][s_a[2:0]];

    // Issue-cycle compute for SHIFT, PERM, RECV, DMAIN; SEND and DMAOUT capture their vector.
    logic [NCOMP-1:0] c_v;
    logic [NCOMP-1:0][6:0] c_sid;
    logic [NCOMP-1:0][VBITS-1:0] c_d;
    logic snd_v, dmo_v;
    logic [7:0] snd_link, dmo_chan;
    logic [VBITS-1:0] snd_d, dmo_d;
    always_ff @(posedge clk) begin
      if (!rst_n) begin
        c_v <= '0;
        snd_v <= 1'b0;
        dmo_v <= 1'b0;
      end else begin
        for (int c = 0; c < NCOMP; c++) c_v[c] <= ok && cls == (c < 2 ? c : c + 1);
        snd_v <= ok && op == OP_SEND;
        dmo_v <= ok && op == OP_DMAOUT;
        if (ok) begin
          case (op)
            OP_SHIFT, OP_ROT: begin
              c_sid[0] <= s_dst;
              c_d[0] <= shift_op(op, dtype_bytes(w[55:52]), int'($signed(w[SHIFT_K_LSB +: SHIFT_K_W])), va);
            end
            OP_DIST: begin
              c_sid[0] <= s_dst;
              c_d[0] <= shift_op(op, dtype_bytes(w[55:52]), int'(w[DIST_LANE_LSB +: DIST_LANE_W]), va);
            end
            OP_PERM: begin
              c_sid[1] <= s_dst;
              for (int i = 0; i < VBYTES; i++)
                c_d[1][i*8 +: 8] <= va[perm_tab[w[PERM_TABLE_LSB +: $clog2(PERM_TABLES)]][i][$clog2(VBYTES)-1:0]*8 +: 8];
            end
            OP_RECV: begin
              c_sid[2] <= s_dst;
              c_d[2] <= recv_data[q];
            end
            OP_DMAIN: begin
              c_sid[3] <= s_dst;
              c_d[3] <= dmain_data[q];
            end
            OP_SEND: begin
              snd_link <= w[SEND_LINK_LSB +: 8];
              snd_d <= va;
            end
            OP_DMAOUT: begin
              dmo_chan <= w[DMAOUT_CHAN_LSB +: 8];
              dmo_d <= va;
            end
            default: ;
          endcase
        end
      end
    end

    // TRANS: capture 16 inputs, transpose into an output bank, write one output per cycle.
    wire tr_start = ok && op == OP_TRANS;
    wire tr_cap = tr_start || tr_act;
    wire [3:0] tr_k = tr_start ? 4'd0 : tr_step;
    wire [6:0] tr_s = tr_start ? s_a : tr_src;
    wire [VBITS-1:0] tr_x = pd[tr_s[6]][tr_s[2:0]];
    wire _unused_tr_s = &{1'b0, tr_s[5:3]};
    logic tr_lv;
    logic [6:0] tr_lsid;
    logic [VBITS-1:0] tr_ld;
    always_ff @(posedge clk) begin
      if (!rst_n) begin
        tr_act <= 1'b0;
        tr_step <= '0;
        tr_ob_v <= '0;
        tr_bank <= 1'b0;
        tr_lv <= 1'b0;
      end else begin
        tr_lv <= 1'b0;
        // outputs: bank b writes output r in cycle (start + LAT - 1 + r), i.e. lands in +LAT+r
        for (int b = 0; b < 2; b++) begin
          if (tr_ob_v[b]) begin
            if (tr_ob_cnt[b] > 16) begin
              tr_ob_cnt[b] <= tr_ob_cnt[b] - 1'b1;
            end else begin
              tr_lv <= 1'b1;
              tr_lsid <= tr_ob_sid[b];
              tr_ld <= tr_out[b][4'(16 - 32'(tr_ob_cnt[b]))];
              tr_ob_cnt[b] <= tr_ob_cnt[b] - 1'b1;
              if (tr_ob_cnt[b] == 1) tr_ob_v[b] <= 1'b0;
            end
          end
        end
        if (tr_cap && !err_o[q]) begin
          if (tr_k != 4'd15) tr_in[tr_k] <= tr_x;
          if (tr_start) begin
            tr_act <= 1'b1;
            tr_step <= 4'd1;
            tr_src <= s_a;
            tr_dst <= s_dst;
          end else if (tr_step == 4'd15) begin
            tr_act <= 1'b0;
            // output r, superlane s, lane l = input l, superlane s, lane r
            tr_out[tr_bank] <= transpose({tr_x, tr_in[14:0]});
            tr_ob_v[tr_bank] <= 1'b1;
            tr_ob_sid[tr_bank] <= tr_dst;
            // the transposed bank is ready from (start + 16); output 0 is written in
            // start + LAT - 1, i.e. LAT - 17 cycles later, then one per cycle
            tr_ob_cnt[tr_bank] <= 6'(LAT_SXM_TRANS - 17 + 16);
            tr_bank <= ~tr_bank;
          end else begin
            tr_step <= tr_step + 1'b1;
          end
        end
      end
    end

    // Landing ports of this queue.
    logic [SXM_CLASSES-1:0] cls_busy;
    for (genvar c = 0; c < SXM_CLASSES; c++) begin : g_cls
      logic [6+VBITS:0] o;
      if (c == C_TRANS) begin : g_tr
        assign land_v[q*SXM_CLASSES + c] = tr_lv;
        assign o = {tr_lsid, tr_ld};
        assign cls_busy[c] = 1'b0;
      end else begin : g_dl
        localparam int CI = c < C_TRANS ? c : c - 1;
        lpu_delay #(.N(LAT[c] - 1), .W(7 + VBITS)) u_delay (
          .clk, .rst_n, .in_v(c_v[CI]), .in_d({c_sid[CI], c_d[CI]}), .out_v(land_v[q*SXM_CLASSES + c]),
          .out_d(o), .busy(cls_busy[c]));
      end
      assign land_sid[q*SXM_CLASSES + c] = o[VBITS +: 7];
      assign land_d[q*SXM_CLASSES + c] = o[VBITS-1:0];
    end

    logic snd_busy, dmo_busy;
    logic [8+VBITS-1:0] snd_o, dmo_o;
    lpu_delay #(.N(LAT_C2C_SEND - 1), .W(8 + VBITS)) u_send (
      .clk, .rst_n, .in_v(snd_v), .in_d({snd_link, snd_d}), .out_v(send_v[q]), .out_d(snd_o), .busy(snd_busy));
    lpu_delay #(.N(LAT_DMA - 1), .W(8 + VBITS)) u_dmaout (
      .clk, .rst_n, .in_v(dmo_v), .in_d({dmo_chan, dmo_d}), .out_v(dmaout_v[q]), .out_d(dmo_o), .busy(dmo_busy));
    assign send_link[q] = snd_o[VBITS +: 8];
    assign send_d[q] = snd_o[VBITS-1:0];
    assign dmaout_chan[q] = dmo_o[VBITS +: 8];
    assign dmaout_d[q] = dmo_o[VBITS-1:0];

    assign q_busy[q] = |c_v | snd_v | dmo_v | snd_busy | dmo_busy | tr_act | (|tr_ob_v) | tr_lv |
                       (|land_v[q*SXM_CLASSES +: SXM_CLASSES]) |
                       (|cls_busy);
  end

  assign busy = |q_busy;
endmodule
