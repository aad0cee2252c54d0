// The NMEM MEM slices (docs/timing.md rules 11-14). A slice holds MEM_ROWS rows of one vector,
// stored as one SRAM bank per superlane (so that GATHER/SCATTER address each superlane
// separately), with one read and one write port shared by the slice's MEM_QUEUES queues.
//   READ/GATHER in t: synchronous read at the end of t (the row as it is in t), then
//     LAT_MEM_READ - 1 register stages: on the stream at the slice in t + LAT_MEM_READ.
//   WRITE/SCATTER in t: the stream value of t, committed at the end of t + LAT_MEM_WRITE - 1,
//     so READs from t + LAT_MEM_WRITE see it.
//   LWM in t (rule 15a): the read port as for READ (the row as it is in t), then
//     LAT_MEM_LWM - 1 register stages of the slice's weight bus port instead of the stream:
//     the row is on wb_* in t + LAT_MEM_LWM, the MXM writes it into staging at the end of that
//     cycle (as an LW issued then). Only the east slices have a plane (wb_* port i = mem.e.i);
//     an LWM of a west slice, or to a plane index the hemisphere lacks, is an error.
// The load port writes rows before the run; the debug port reads any row (harness).
// Slice m (index hemi * MEM_SLICES_PER_HEMI + i) sits at position mem_pos(m); its queues are
// m * MEM_QUEUES ... (lpu::Layout order).
module lpu_mem
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
(
  input  logic                                 clk,
  input  logic                                 rst_n,
  input  logic [NQ_MEM-1:0]                    iss_v,
  input  logic [NQ_MEM-1:0][63:0]              iss_w,
  input  logic [15:0][31:0]                    regs,
  input  logic [NPOS-1:0][1:0][NSTREAMS-1:0]   sv_v,
  input  logic [VBITS-1:0]                     sv_d [NPOS][2][NSTREAMS],
  // host load / debug
  input  logic                                 ld_we,
  input  logic [7:0]                           ld_slice,
  input  logic [7:0]                           ld_row,
  input  logic [VBITS-1:0]                     ld_data,
  input  logic [7:0]                           dbg_slice,
  input  logic [7:0]                           dbg_row,
  output logic [VBITS-1:0]                     dbg_data,
  // landing ports (read results), one per slice
  output logic [NMEM-1:0]                      land_v,
  output logic [NMEM-1:0][6:0]                 land_sid,
  output logic [NMEM-1:0][VBITS-1:0]           land_d,
  // weight bus: LWM rows landing in this cycle, port i from mem.e.i
  output logic [NWB-1:0]                       wb_v,
  output logic [NWB-1:0][WROW_B-1:0]           wb_row,
  output logic [NWB-1:0][VBITS-1:0]            wb_d,
  // observation: the write committed at the end of this cycle
  output logic [NMEM-1:0]                      obs_we,
  output logic [NMEM-1:0][SUPERLANES-1:0]      obs_mask,
  output logic [NMEM-1:0][SUPERLANES-1:0][7:0] obs_row,
  output logic [NMEM-1:0][VBITS-1:0]           obs_data,
  output logic                                 busy,
  output logic [NMEM-1:0]                      err_o,
  output logic [NMEM-1:0][7:0]                 err_code_o,
  output logic [NMEM-1:0][31:0]                err_info_o
);
  /* verilator inline_module */
  localparam int SLB = SLBYTES * 8;
  logic [SLB-1:0] bank [NMEM][SUPERLANES][MEM_ROWS];

  // ---- decode (combinational, in the issue cycle) -------------------------------------------
  logic [NMEM-1:0] rd_v, wr_v;
  logic [NMEM-1:0][6:0] rd_sid;
  logic [NMEM-1:0][SUPERLANES-1:0][7:0] rd_row, wr_row;
  logic [NMEM-1:0][SUPERLANES-1:0] wr_mask;
  logic [NMEM-1:0][VBITS-1:0] wr_d;
  logic [NWB-1:0] rd_lwm;                 // the east slice's read is an LWM
  logic [NWB-1:0][WROW_B-1:0] rd_wrow;    // ... into this staging row

  always_comb begin
    int nrd, nwr, p;
    /* verilator lint_off UNUSEDSIGNAL */
    logic [63:0] w;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [7:0] op;
    logic [33:0] base, row;
    logic [6:0] s_src, s_idx, s_dst;
    logic [VBITS-1:0] idxv;
    logic e;
    logic [7:0] ec;
    logic [31:0] ei;
    w = '0;
    op = '0;
    base = '0;
    row = '0;
    s_src = '0;
    s_idx = '0;
    s_dst = '0;
    idxv = '0;
    rd_lwm = '0;
    rd_wrow = '0;
    err_o = '0;
    err_code_o = '0;
    err_info_o = '0;
    for (int m = 0; m < NMEM; m++) begin
      p = mem_pos(m);
      nrd = 0;
      nwr = 0;
      rd_v[m] = 1'b0;
      wr_v[m] = 1'b0;
      rd_sid[m] = '0;
      rd_row[m] = '0;
      wr_row[m] = '0;
      wr_mask[m] = '0;
      wr_d[m] = '0;
      e = 1'b0;
      ec = E_NONE;
      ei = '0;
      for (int q = 0; q < MEM_QUEUES; q++) begin
        if (iss_v[m*MEM_QUEUES + q]) begin
          w = iss_w[m*MEM_QUEUES + q];
          op = w[63:56];
          if (op == OP_READ || op == OP_GATHER) begin
            nrd = nrd + 1;
            base = 34'(regs[w[READ_ADDR_LSB + 20 +: 4]]) + 34'(w[READ_ADDR_LSB +: 20]);
            s_dst = op == OP_READ ? w[READ_DST_LSB +: 7] : w[GATHER_DST_LSB +: 7];
            s_idx = w[GATHER_IDX_LSB +: 7];
            rd_v[m] = 1'b1;
            rd_sid[m] = s_dst;
            if (s_dst[5:0] >= 6'(NSTREAMS)) begin
              e = 1'b1;
              ec = E_BAD_STREAM;
              ei = 32'(s_dst);
            end
            if (op == OP_GATHER && (s_idx[5:0] >= 6'(NSTREAMS) || !sv_v[p][s_idx[6]][s_idx[2:0]])) begin
              e = 1'b1;
              ec = E_EMPTY_READ;
              ei = {16'(p), 9'd0, s_idx};
            end
            idxv = sv_d[p][s_idx[6]][s_idx[2:0]];
            if (base >= 34'(MEM_ROWS)) begin
              e = 1'b1;
              ec = E_ADDR_RANGE;
              ei = base[31:0];
            end
            for (int s = 0; s < SUPERLANES; s++) begin
              row = op == OP_READ ? base : base + {{18{idxv[s*SLB + 15]}}, idxv[s*SLB +: 16]};
              rd_row[m][s] = row[7:0];
              if (row >= 34'(MEM_ROWS)) begin
                e = 1'b1;
                ec = E_ADDR_RANGE;
                ei = row[31:0];
              end
            end
          end else if (op == OP_WRITE || op == OP_SCATTER) begin
            nwr = nwr + 1;
            base = op == OP_WRITE ? 34'(regs[w[WRITE_ADDR_LSB + 20 +: 4]]) + 34'(w[WRITE_ADDR_LSB +: 20])
                                  : 34'(regs[w[SCATTER_ADDR_LSB + 20 +: 4]]) + 34'(w[SCATTER_ADDR_LSB +: 20]);
            s_src = op == OP_WRITE ? w[WRITE_SRC_LSB +: 7] : w[SCATTER_SRC_LSB +: 7];
            s_idx = w[SCATTER_IDX_LSB +: 7];
            wr_v[m] = 1'b1;
            wr_mask[m] = '1;
            if (s_src[5:0] >= 6'(NSTREAMS) || !sv_v[p][s_src[6]][s_src[2:0]]) begin
              e = 1'b1;
              ec = E_EMPTY_READ;
              ei = {16'(p), 9'd0, s_src};
            end
            if (op == OP_SCATTER && (s_idx[5:0] >= 6'(NSTREAMS) || !sv_v[p][s_idx[6]][s_idx[2:0]])) begin
              e = 1'b1;
              ec = E_EMPTY_READ;
              ei = {16'(p), 9'd0, s_idx};
            end
            wr_d[m] = sv_d[p][s_src[6]][s_src[2:0]];
            idxv = sv_d[p][s_idx[6]][s_idx[2:0]];
            if (base >= 34'(MEM_ROWS)) begin
              e = 1'b1;
              ec = E_ADDR_RANGE;
              ei = base[31:0];
            end
            for (int s = 0; s < SUPERLANES; s++) begin
              row = op == OP_WRITE ? base : base + {{18{idxv[s*SLB + 15]}}, idxv[s*SLB +: 16]};
              wr_row[m][s] = row[7:0];
              if (row >= 34'(MEM_ROWS)) begin
                e = 1'b1;
                ec = E_ADDR_RANGE;
                ei = row[31:0];
              end
            end
          end else if (op == OP_LWM) begin
            // the read port, into staging row `row` of plane `plane` of this hemisphere
            nrd = nrd + 1;
            base = 34'(w[LWM_ADDR_LSB +: LWM_ADDR_W]);
            rd_v[m] = 1'b1;
            for (int s = 0; s < SUPERLANES; s++) rd_row[m][s] = base[7:0];
            if (m < MEM_SLICES_PER_HEMI || 32'(w[LWM_PLANE_LSB +: LWM_PLANE_W]) >= 32'(MXM_PLANES)) begin
              e = 1'b1;
              ec = E_NO_PLANE;
              ei = 32'(w[LWM_PLANE_LSB +: LWM_PLANE_W]);
            end else begin
              rd_lwm[m - MEM_SLICES_PER_HEMI] = 1'b1;
              rd_wrow[m - MEM_SLICES_PER_HEMI] = w[LWM_ROW_LSB +: WROW_B];
            end
            // the staging row exists (the assembler's check; the RTL's buffer has VBYTES rows)
            if (32'(w[LWM_ROW_LSB +: LWM_ROW_W]) >= 32'(VBYTES / dtype_bytes(w[55:52]))) begin
              e = 1'b1;
              ec = E_ADDR_RANGE;
              ei = 32'(w[LWM_ROW_LSB +: LWM_ROW_W]);
            end
            if (base >= 34'(MEM_ROWS)) begin
              e = 1'b1;
              ec = E_ADDR_RANGE;
              ei = base[31:0];
            end
          end else begin
            e = 1'b1;
            ec = E_BAD_OP;
            ei = 32'(op);
          end
        end
      end
      if (nrd > MEM_READ_PORTS || nwr > MEM_WRITE_PORTS) begin
        e = 1'b1;
        ec = E_PORT_CONFLICT;
        ei = nrd > MEM_READ_PORTS ? 32'd0 : 32'd1;
      end
      if (e) begin
        rd_v[m] = 1'b0;
        wr_v[m] = 1'b0;
        if (m >= MEM_SLICES_PER_HEMI) rd_lwm[m - MEM_SLICES_PER_HEMI] = 1'b0;
      end
      err_o[m] = e;
      err_code_o[m] = ec;
      err_info_o[m] = ei;
    end
  end

  // ---- read ports ----------------------------------------------------------------------------
  // r1_v: a READ/GATHER row for the stream; r1_l: an LWM row for the weight bus (east slices)
  logic [NMEM-1:0] r1_v;
  logic [NWB-1:0] r1_l;
  logic [NMEM-1:0][6:0] r1_sid;
  logic [NWB-1:0][WROW_B-1:0] r1_wrow;
  logic [NMEM-1:0][VBITS-1:0] r1_d;
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      r1_v <= '0;
      r1_l <= '0;
    end else begin
      for (int m = 0; m < NMEM; m++) begin
        r1_v[m] <= rd_v[m] && !(m >= MEM_SLICES_PER_HEMI && rd_lwm[m - MEM_SLICES_PER_HEMI]);
        if (rd_v[m]) begin
          r1_sid[m] <= rd_sid[m];
          for (int s = 0; s < SUPERLANES; s++) r1_d[m][s*SLB +: SLB] <= bank[m][s][rd_row[m][s]];
        end
      end
      r1_l <= rd_lwm;
      for (int i = 0; i < NWB; i++)
        if (rd_lwm[i]) r1_wrow[i] <= rd_wrow[i];
    end
  end

  localparam int WW = SUPERLANES + SUPERLANES * 8 + VBITS;
  logic [NMEM-1:0] rdl_busy, wq_busy;
  logic [NWB-1:0] wb_busy;
  // weight bus ports: LAT_MEM_LWM - 1 stages after the read (rule 15a: on the bus in t + mem_lwm)
  for (genvar i = 0; i < NWB; i++) begin : g_wb
    logic [WROW_B+VBITS-1:0] wb_out;
    lpu_delay #(.N(LAT_MEM_LWM - 1), .W(WROW_B + VBITS)) u_wb_delay (
      .clk, .rst_n, .in_v(r1_l[i]), .in_d({r1_wrow[i], r1_d[MEM_SLICES_PER_HEMI + i]}), .out_v(wb_v[i]), .out_d(wb_out),
      .busy(wb_busy[i]));
    assign wb_row[i] = wb_out[VBITS +: WROW_B];
    assign wb_d[i] = wb_out[VBITS-1:0];
  end
  for (genvar m = 0; m < NMEM; m++) begin : g_slice
    logic [6+VBITS:0] rdl_out;
    lpu_delay #(.N(LAT_MEM_READ - 1), .W(7 + VBITS)) u_rd_delay (
      .clk, .rst_n, .in_v(r1_v[m]), .in_d({r1_sid[m], r1_d[m]}), .out_v(land_v[m]), .out_d(rdl_out), .busy(rdl_busy[m]));
    assign land_sid[m] = rdl_out[VBITS +: 7];
    assign land_d[m] = rdl_out[VBITS-1:0];
    // write port: the write request waits LAT_MEM_WRITE - 1 cycles, then commits
    logic [WW-1:0] wq_out;
    lpu_delay #(.N(LAT_MEM_WRITE - 1), .W(WW)) u_wr_delay (
      .clk, .rst_n, .in_v(wr_v[m]), .in_d({wr_mask[m], wr_row[m], wr_d[m]}), .out_v(obs_we[m]), .out_d(wq_out),
      .busy(wq_busy[m]));
    assign obs_mask[m] = wq_out[WW-1 -: SUPERLANES];
    assign obs_row[m] = wq_out[VBITS +: SUPERLANES * 8];
    assign obs_data[m] = wq_out[VBITS-1:0];
    for (genvar s = 0; s < SUPERLANES; s++) begin : g_bank
      always_ff @(posedge clk) begin
        if (obs_we[m]) begin
          if (obs_mask[m][s]) bank[m][s][obs_row[m][s]] <= obs_data[m][s*SLB +: SLB];
        end else if (ld_we && 32'(ld_slice) == m) begin
          bank[m][s][ld_row] <= ld_data[s*SLB +: SLB];
        end
      end
    end
  end

  always_comb begin
    dbg_data = '0;
    if (32'(dbg_slice) < 32'(NMEM))
      for (int s = 0; s < SUPERLANES; s++) dbg_data[s*SLB +: SLB] = bank[dbg_slice[$clog2(NMEM)-1:0]][s][dbg_row];
  end

  assign busy = |r1_v | |r1_l | |rdl_busy | |wq_busy | |wb_busy;
endmodule
