// lpu_mini: the whole `mini` chip (configs/mini.toml): 27 instruction queues, 8 MEM slices,
// the VXM (4 queues), 2 SXM slices, one MXM plane fed by the streams and by the east
// hemisphere's weight bus (LWM), the stream register file, C2C links and host DMA channels as
// ports. docs/rtl.md describes the design and the harness.
//
// Operation: hold rst_n low for a cycle; with go = 0, load the program through the load port
// (one item per clock: instruction words, queue lengths, SRAM rows, registers, permutation
// tables, DMA input vectors); raise go for one clock edge: the chip then runs, and the cycle
// after that edge is cycle 0 of the program. Every output describes the current cycle (issue,
// stream values); a clock edge advances one cycle. Inputs only act at clock edges (go, the
// load port, rx, tst_flip_alu, tst_no_tr are registered), so the combinational logic depends on state only.
module lpu_mini
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
#(
  parameter int IMEM_AW = 10  // instruction words per queue: 2**IMEM_AW
) (
  input  logic                                        clk,
  input  logic                                        rst_n,
  input  logic                                        go,
  // load port: kind 0 instruction word (sel queue, addr index, data[63:0]); 1 queue length
  // (sel queue, addr words); 2 SRAM row (sel slice, addr row); 3 register (addr r, data[31:0]);
  // 4 permutation table (sel 0 sxm.w / 1 sxm.e, addr table, byte i of data = entry i);
  // 5 DMA input vector (sel channel)
  input  logic                                        ld_v,
  input  logic [2:0]                                  ld_kind,
  input  logic [7:0]                                  ld_sel,
  input  logic [15:0]                                 ld_addr,
  input  logic [VBITS-1:0]                            ld_data,
  // C2C links and host DMA output
  input  logic [LINKS-1:0]                            rx_v,
  input  logic [LINKS-1:0][VBITS-1:0]                 rx_d,
  output logic [LINKS-1:0]                            tx_v,
  output logic [LINKS-1:0][VBITS-1:0]                 tx_d,
  output logic [DMA_CHANNELS-1:0]                     dmaout_v,
  output logic [DMA_CHANNELS-1:0][VBITS-1:0]          dmaout_d,
  // debug read of an SRAM row
  input  logic [7:0]                                  dbg_slice,
  input  logic [7:0]                                  dbg_row,
  output logic [VBITS-1:0]                            dbg_data,
  // test only: flip bit 0 of every VXM ALU-class result (mutation test of the lockstep)
  input  logic                                        tst_flip_alu,
  // test only: every IW installs untransposed, whatever its tr (mutation test of the lockstep)
  input  logic                                        tst_no_tr,
  // observation of the current cycle
  output logic [47:0]                                 obs_cycle,
  output logic [NQ-1:0]                               obs_iss_v,
  output logic [NQ-1:0][63:0]                         obs_iss_w,
  output logic [NQ-1:0][15:0]                         obs_pc,      // next word of each queue
  output logic [NQ-1:0][15:0]                         obs_iss_pc,  // word index of the issued one
  output logic [NQ-1:0][1:0]                          obs_qstate,
  output logic [NPOS-1:0][1:0][NSTREAMS-1:0]          obs_sv_v,
  output logic [NPOS-1:0][1:0][NSTREAMS-1:0][VBITS-1:0] obs_sv_d,
  output logic [NMEM-1:0]                             obs_sram_we,
  output logic [NMEM-1:0][SUPERLANES-1:0]             obs_sram_mask,
  output logic [NMEM-1:0][SUPERLANES-1:0][7:0]        obs_sram_row,
  output logic [NMEM-1:0][VBITS-1:0]                  obs_sram_d,
  output logic                                        obs_acc_we,
  output logic [7:0]                                  obs_acc_idx,
  output logic [VBYTES*32-1:0]                        obs_acc_d,
  // weight bus: LWM rows written into the plane's staging buffer at the end of this cycle
  // (port i: from mem.e.i)
  output logic [NWB-1:0]                              obs_wb_v,
  output logic [NWB-1:0][WROW_B-1:0]                  obs_wb_row,
  output logic [NWB-1:0][VBITS-1:0]                   obs_wb_d,
  output logic [15:0][31:0]                           obs_regs,
  output logic                                        quiescent,
  output logic                                        last_act_v,
  output logic [47:0]                                 last_act,
  // first error (sticky)
  output logic                                        err_v,
  output logic [7:0]                                  err_code,
  output logic [7:0]                                  err_src,
  output logic [31:0]                                 err_info,
  output logic [47:0]                                 err_cycle
);
  // ---- run state, cycle, registers, load decode -------------------------------------------------
  logic run, flip, no_tr;
  logic [47:0] cycle;
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      run <= 1'b0;
      cycle <= '0;
    end else begin
      if (go) run <= 1'b1;
      if (run) cycle <= cycle + 1'b1;
    end
    flip <= tst_flip_alu;
    no_tr <= tst_no_tr;
  end
  assign obs_cycle = cycle;

  wire _unused_ld = &{1'b0, ld_addr[15:IMEM_AW+1]};
  wire ld_imem = ld_v && ld_kind == 3'd0;
  wire ld_len = ld_v && ld_kind == 3'd1;
  wire ld_sram = ld_v && ld_kind == 3'd2;
  wire ld_reg = ld_v && ld_kind == 3'd3;
  wire ld_perm = ld_v && ld_kind == 3'd4;
  wire ld_dma = ld_v && ld_kind == 3'd5;

  logic [15:0][31:0] regs;
  logic [NQ-1:0] q_cfg_we;
  logic [NQ-1:0][3:0] q_cfg_r;
  logic [NQ-1:0][31:0] q_cfg_v;
  always_ff @(posedge clk) begin
    if (ld_reg && ld_addr[3:0] != 0) regs[ld_addr[3:0]] <= ld_data[31:0];
    // CONFIG in t: effective from t + 1; in one cycle the highest queue wins (model order)
    for (int q = 0; q < NQ; q++)
      if (run && q_cfg_we[q] && q_cfg_r[q] != 0) regs[q_cfg_r[q]] <= q_cfg_v[q];
    regs[0] <= '0;
  end
  assign obs_regs = regs;

  // ---- queues ------------------------------------------------------------------------------
  logic [NQ-1:0] q_iss_v, q_done, q_parked, q_err, u_v;
  logic [NQ-1:0][63:0] q_iss_w;
  logic [NQ-1:0][7:0] q_err_code;
  logic [NQ-1:0][IMEM_AW:0] q_pc, q_iss_pc;
  lpu_queues #(.IMEM_AW(IMEM_AW)) u_queues (
    .clk, .rst_n, .go(run), .cycle,
    .ld_we(ld_imem), .ld_len_we(ld_len), .ld_q(ld_sel), .ld_addr(ld_addr[IMEM_AW:0]), .ld_data(ld_data[63:0]),
    .regs, .iss_v(q_iss_v), .iss_w(q_iss_w), .iss_pc(q_iss_pc),
    .cfg_we(q_cfg_we), .cfg_r(q_cfg_r), .cfg_v(q_cfg_v),
    .done_o(q_done), .parked_o(q_parked), .pc_o(q_pc), .state_o(obs_qstate), .err_o(q_err), .err_code_o(q_err_code));
  always_comb begin
    for (int q = 0; q < NQ; q++) begin
      obs_pc[q] = 16'(q_pc[q]);
      obs_iss_pc[q] = 16'(q_iss_pc[q]);
      // a unit sees every instruction its queue issues but the ICU ones (DESKEW included)
      u_v[q] = q_iss_v[q] && !is_icu(q_iss_w[q][63:56]);
    end
  end
  assign obs_iss_v = q_iss_v;
  assign obs_iss_w = q_iss_w;

  // ---- stream network ------------------------------------------------------------------------
  // landing ports by position: MEM slices (1 each), VXM (VXM_QUEUES * VXM_CLASSES), SXM
  // (SXM_QUEUES * SXM_CLASSES each), MXM (MXM_QUEUES); port_base(p) is the first of position p
  logic [NLAND-1:0] land_v;
  logic [NLAND-1:0][6:0] land_sid;
  logic [NLAND-1:0][VBITS-1:0] land_d;
  logic [VBITS-1:0] land_du [NLAND];
  logic [NPOS-1:0][1:0][NSTREAMS-1:0] sv_v;
  logic [VBITS-1:0] sv_d [NPOS][2][NSTREAMS];
  logic st_err;
  logic [31:0] st_err_info;
  always_comb begin
    for (int i = 0; i < NLAND; i++) land_du[i] = land_d[i];
  end
  lpu_streams u_streams (.clk, .rst_n, .land_v, .land_sid, .land_d(land_du), .sv_v, .sv_d, .err_o(st_err),
                         .err_info_o(st_err_info));
  assign obs_sv_v = sv_v;
  always_comb begin
    for (int p = 0; p < NPOS; p++)
      for (int d = 0; d < 2; d++)
        for (int s = 0; s < NSTREAMS; s++) obs_sv_d[p][d][s] = sv_d[p][d][s];
  end

  // ---- MEM slices --------------------------------------------------------------------------------
  logic m_busy;
  logic [NMEM-1:0] m_err, m_land_v;
  logic [NMEM-1:0][7:0] m_err_code;
  logic [NMEM-1:0][31:0] m_err_info;
  logic [NMEM-1:0][6:0] m_land_sid;
  logic [NMEM-1:0][VBITS-1:0] m_land_d;
  logic [NWB-1:0] wb_v;
  logic [NWB-1:0][WROW_B-1:0] wb_row;
  logic [NWB-1:0][VBITS-1:0] wb_d;
  lpu_mem u_mem (
    .clk, .rst_n, .iss_v(u_v[NQ_MEM-1:0]), .iss_w(q_iss_w[NQ_MEM-1:0]), .regs, .sv_v, .sv_d,
    .ld_we(ld_sram), .ld_slice(ld_sel), .ld_row(ld_addr[7:0]), .ld_data, .dbg_slice, .dbg_row, .dbg_data,
    .land_v(m_land_v), .land_sid(m_land_sid), .land_d(m_land_d), .wb_v, .wb_row, .wb_d,
    .obs_we(obs_sram_we), .obs_mask(obs_sram_mask), .obs_row(obs_sram_row), .obs_data(obs_sram_d),
    .busy(m_busy), .err_o(m_err), .err_code_o(m_err_code), .err_info_o(m_err_info));
  for (genvar m = 0; m < NMEM; m++) begin : g_mem_land
    localparam int LP = port_base(mem_pos(m));
    assign land_v[LP] = m_land_v[m];
    assign land_sid[LP] = m_land_sid[m];
    assign land_d[LP] = m_land_d[m];
  end

  // ---- VXM -----------------------------------------------------------------------------------
  logic v_busy;
  logic [VXM_QUEUES-1:0] v_err;
  logic [VXM_QUEUES-1:0][7:0] v_err_code;
  logic [VXM_QUEUES-1:0][31:0] v_err_info;
  localparam int LP_VXM = port_base(POS_VXM);
  lpu_vxm u_vxm (
    .clk, .rst_n, .iss_v(u_v[Q_VXM0 +: VXM_QUEUES]), .iss_w(q_iss_w[Q_VXM0 +: VXM_QUEUES]), .pv(sv_v[POS_VXM]),
    .pd(sv_d[POS_VXM]), .tst_flip(flip),
    .land_v(land_v[LP_VXM +: VXM_QUEUES * VXM_CLASSES]), .land_sid(land_sid[LP_VXM +: VXM_QUEUES * VXM_CLASSES]),
    .land_d(land_d[LP_VXM +: VXM_QUEUES * VXM_CLASSES]),
    .busy(v_busy), .err_o(v_err), .err_code_o(v_err_code), .err_info_o(v_err_info));

  // ---- SXM (west, east) and the host interface --------------------------------------------------
  logic [NSXMQ-1:0] recv_req, recv_ok, dmain_req, dmain_ok, send_v, dmo_v;
  logic [NSXMQ-1:0][7:0] recv_link, dmain_chan, send_link, dmo_chan;
  logic [NSXMQ-1:0][VBITS-1:0] recv_data, dmain_data, send_d, dmo_d;
  logic s_busy;
  logic [NSXMQ-1:0] s_err;
  logic [NSXMQ-1:0][7:0] s_err_code;
  logic [NSXMQ-1:0][31:0] s_err_info;
  logic [NSXMQ*SXM_CLASSES-1:0] s_land_v;
  logic [NSXMQ*SXM_CLASSES-1:0][6:0] s_land_sid;
  logic [NSXMQ*SXM_CLASSES-1:0][VBITS-1:0] s_land_d;
  lpu_sxm u_sxm (
    .clk, .rst_n, .iss_v(u_v[Q_SXM0 +: NSXMQ]), .iss_w(q_iss_w[Q_SXM0 +: NSXMQ]), .sv_v, .sv_d,
    .perm_we(ld_perm), .perm_side(ld_sel[0]), .perm_idx(ld_addr[7:0]), .perm_data(ld_data),
    .recv_req, .recv_link, .recv_ok, .recv_data, .dmain_req, .dmain_chan, .dmain_ok, .dmain_data,
    .send_v, .send_link, .send_d, .dmaout_v(dmo_v), .dmaout_chan(dmo_chan), .dmaout_d(dmo_d),
    .land_v(s_land_v), .land_sid(s_land_sid), .land_d(s_land_d),
    .busy(s_busy), .err_o(s_err), .err_code_o(s_err_code), .err_info_o(s_err_info));
  localparam int NSL = SXM_QUEUES * SXM_CLASSES;  // landing ports per SXM slice
  assign land_v[port_base(POS_SXMW) +: NSL] = s_land_v[0 +: NSL];
  assign land_sid[port_base(POS_SXMW) +: NSL] = s_land_sid[0 +: NSL];
  assign land_d[port_base(POS_SXMW) +: NSL] = s_land_d[0 +: NSL];
  assign land_v[port_base(POS_SXME) +: NSL] = s_land_v[NSL +: NSL];
  assign land_sid[port_base(POS_SXME) +: NSL] = s_land_sid[NSL +: NSL];
  assign land_d[port_base(POS_SXME) +: NSL] = s_land_d[NSL +: NSL];

  logic h_err;
  logic [7:0] h_err_code;
  logic [31:0] h_err_info;
  lpu_hostif u_host (
    .clk, .rst_n, .rx_v, .rx_d, .tx_v, .tx_d,
    .dma_push(ld_dma), .dma_push_chan(ld_sel), .dma_push_d(ld_data), .dmaout_v, .dmaout_d,
    .recv_req, .recv_link, .recv_ok, .recv_data, .dmain_req, .dmain_chan, .dmain_ok, .dmain_data,
    .send_v, .send_link, .send_d, .dmo_v, .dmo_chan, .dmo_d,
    .err_o(h_err), .err_code_o(h_err_code), .err_info_o(h_err_info));

  // ---- MXM ---------------------------------------------------------------------------------
  logic x_busy;
  logic [MXM_QUEUES-1:0] x_err;
  logic [MXM_QUEUES-1:0][7:0] x_err_code;
  logic [MXM_QUEUES-1:0][31:0] x_err_info;
  localparam int LP_MXM = port_base(POS_MXM);
  lpu_mxm u_mxm (
    .clk, .rst_n, .cycle, .iss_v(u_v[Q_MXM0 +: MXM_QUEUES]), .iss_w(q_iss_w[Q_MXM0 +: MXM_QUEUES]),
    .pv(sv_v[POS_MXM]), .pd(sv_d[POS_MXM]), .wb_v, .wb_row, .wb_d, .tst_no_tr(no_tr),
    .land_v(land_v[LP_MXM +: MXM_QUEUES]), .land_sid(land_sid[LP_MXM +: MXM_QUEUES]), .land_d(land_d[LP_MXM +: MXM_QUEUES]),
    .obs_acc_we, .obs_acc_idx, .obs_acc_d,
    .busy(x_busy), .err_o(x_err), .err_code_o(x_err_code), .err_info_o(x_err_info));

  assign obs_wb_v = wb_v;
  assign obs_wb_row = wb_row;
  assign obs_wb_d = wb_d;

  // ---- waveform view: per queue and per stream register, named for rtl/lpu_mini.gtkw --------
  // (generate loops of at most 16 iterations: Verilator runs with --unroll-count 1; the
  // signals only feed the waveform)
  /* verilator lint_off UNUSEDSIGNAL */
  for (genvar h = 0; h < 2; h++) begin : qv
    for (genvar i = 0; i < 16; i++) begin : q
      if (h * 16 + i < NQ) begin : g
        wire [15:0] pc = obs_pc[h * 16 + i];
        wire [15:0] issue_pc = obs_iss_pc[h * 16 + i];
        wire issue = q_iss_v[h * 16 + i];
        wire [63:0] word = q_iss_w[h * 16 + i];
        wire [7:0] opcode = issue ? q_iss_w[h * 16 + i][63:56] : 8'hFF;
      end
    end
  end
  for (genvar p = 0; p < NPOS; p++) begin : sv
    for (genvar d = 0; d < 2; d++) begin : dir
      for (genvar s = 0; s < NSTREAMS; s++) begin : st
        wire valid = sv_v[p][d][s];
        wire [VBITS-1:0] value = sv_d[p][d][s];
      end
    end
  end
  /* verilator lint_on UNUSEDSIGNAL */

  // ---- program length, quiescence, errors ------------------------------------------------------
  // last cycle in which an instruction issues or a result lands (docs/timing.md rule 23)
  logic act_v;
  logic [47:0] act_c;
  always_comb begin
    act_v = 1'b0;
    act_c = '0;
    for (int q = 0; q < NQ; q++) begin
      if (q_iss_v[q] && (!act_v || cycle + 48'(act_latency(q_iss_w[q][63:56])) > act_c)) begin
        act_v = 1'b1;
        act_c = cycle + 48'(act_latency(q_iss_w[q][63:56]));
      end
    end
  end
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      last_act_v <= 1'b0;
      last_act <= '0;
    end else if (run && act_v && (!last_act_v || act_c > last_act)) begin
      last_act_v <= 1'b1;
      last_act <= act_c;
    end
  end
  wire units_busy = m_busy || v_busy || s_busy || x_busy;
  assign quiescent = &q_done && !units_busy;
  wire deadlock = run && (|q_parked) && ((q_parked | q_done) == '1) && !units_busy;

  logic e_now;
  logic [7:0] e_code, e_src;
  logic [31:0] e_info;
  always_comb begin
    e_now = 1'b0;
    e_code = '0;
    e_src = '0;
    e_info = '0;
    if (deadlock) begin
      e_now = 1'b1;
      e_code = E_DEADLOCK;
      e_src = 8'(ES_CHIP);
    end
    if (h_err) begin
      e_now = 1'b1;
      e_code = h_err_code;
      e_src = 8'(ES_HOST);
      e_info = h_err_info;
    end
    if (st_err) begin
      e_now = 1'b1;
      e_code = E_STREAM_CONFLICT;
      e_src = 8'(ES_STREAMS);
      e_info = st_err_info;
    end
    for (int q = MXM_QUEUES - 1; q >= 0; q--)
      if (x_err[q]) begin
        e_now = 1'b1;
        e_code = x_err_code[q];
        e_src = 8'(ES_MXM + q);
        e_info = x_err_info[q];
      end
    for (int q = NSXMQ - 1; q >= 0; q--)
      if (s_err[q]) begin
        e_now = 1'b1;
        e_code = s_err_code[q];
        e_src = 8'(ES_SXM + q);
        e_info = s_err_info[q];
      end
    for (int q = VXM_QUEUES - 1; q >= 0; q--)
      if (v_err[q]) begin
        e_now = 1'b1;
        e_code = v_err_code[q];
        e_src = 8'(ES_VXM + q);
        e_info = v_err_info[q];
      end
    for (int m = NMEM - 1; m >= 0; m--)
      if (m_err[m]) begin
        e_now = 1'b1;
        e_code = m_err_code[m];
        e_src = 8'(ES_MEM + m);
        e_info = m_err_info[m];
      end
    for (int q = NQ - 1; q >= 0; q--)
      if (q_err[q]) begin
        e_now = 1'b1;
        e_code = q_err_code[q];
        e_src = 8'(q);
        e_info = '0;
      end
  end

  // sticky: the first error, and its cycle (also visible combinationally in that cycle)
  logic e_v;
  logic [7:0] e_code_r, e_src_r;
  logic [31:0] e_info_r;
  logic [47:0] e_cycle_r;
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      e_v <= 1'b0;
    end else if (run && e_now && !e_v) begin
      e_v <= 1'b1;
      e_code_r <= e_code;
      e_src_r <= e_src;
      e_info_r <= e_info;
      e_cycle_r <= cycle;
    end
  end
  assign err_v = e_v || (run && e_now);
  assign err_code = e_v ? e_code_r : e_code;
  assign err_src = e_v ? e_src_r : e_src;
  assign err_info = e_v ? e_info_r : e_info;
  assign err_cycle = e_v ? e_cycle_r : cycle;
endmodule
