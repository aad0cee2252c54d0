// One MEM slice: MEM_ROWS rows of one vector, stored as one SRAM bank per superlane (so that
// GATHER/SCATTER address each superlane separately), one read and one write port shared by the
// slice's queues (docs/timing.md rules 11-14).
//   READ/GATHER in t: synchronous read at the end of t (the row as it is in t), then
//     LAT_MEM_READ - 1 register stages: on the stream at the slice in t + LAT_MEM_READ.
//   WRITE/SCATTER in t: the stream value of t, committed at the end of t + LAT_MEM_WRITE - 1,
//     so READs from t + LAT_MEM_WRITE see it.
// The load port writes rows before the run; the debug port reads any row (harness).
module lpu_mem_slice
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
#(
  parameter int POS = 1
) (
  input  logic                                 clk,
  input  logic                                 rst_n,
  input  logic [MEM_QUEUES-1:0]                iss_v,
  input  logic [MEM_QUEUES-1:0][63:0]          iss_w,
  input  logic [15:0][31:0]                    regs,
  input  logic [1:0][NSTREAMS-1:0]             pv,
  input  logic [1:0][NSTREAMS-1:0][VBITS-1:0]  pd,
  // host load / debug
  input  logic                                 ld_we,
  input  logic [7:0]                           ld_row,
  input  logic [VBITS-1:0]                     ld_data,
  input  logic [7:0]                           dbg_row,
  output logic [VBITS-1:0]                     dbg_data,
  // landing port (read results)
  output logic                                 land_v,
  output logic [6:0]                           land_sid,
  output logic [VBITS-1:0]                     land_d,
  // observation: the write committed at the end of this cycle
  output logic                                 obs_we,
  output logic [SUPERLANES-1:0]                obs_mask,
  output logic [SUPERLANES-1:0][7:0]           obs_row,
  output logic [VBITS-1:0]                     obs_data,
  output logic                                 busy,
  output logic                                 err_o,
  output logic [7:0]                           err_code_o,
  output logic [31:0]                          err_info_o
);
  localparam int SLB = SLBYTES * 8;
  logic [SLB-1:0] bank [SUPERLANES][MEM_ROWS];

  // ---- decode (combinational, in the issue cycle) -------------------------------------------
  logic rd_v, wr_v;
  logic [6:0] rd_sid;
  logic [SUPERLANES-1:0][7:0] rd_row, wr_row;
  logic [SUPERLANES-1:0] wr_mask;
  logic [VBITS-1:0] wr_d;

  function automatic logic sval(logic [6:0] sid, logic [1:0][NSTREAMS-1:0] v);
    return sid[5:0] < 6'(NSTREAMS) && v[sid[6]][sid[2:0]];
  endfunction

  always_comb begin
    int nrd, nwr;
    /* verilator lint_off UNUSEDSIGNAL */
    logic [63:0] w;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [3:0] areg;
    logic [33:0] base, row;
    logic [6:0] s_src, s_idx, s_dst;
    logic [VBITS-1:0] idxv;
    nrd = 0;
    nwr = 0;
    rd_v = 1'b0;
    wr_v = 1'b0;
    rd_sid = '0;
    rd_row = '0;
    wr_row = '0;
    wr_mask = '0;
    wr_d = '0;
    err_o = 1'b0;
    err_code_o = E_NONE;
    err_info_o = '0;
    for (int q = 0; q < MEM_QUEUES; q++) begin
      if (iss_v[q]) begin
        w = iss_w[q];
        areg = '0;
        base = '0;
        s_src = '0;
        s_idx = '0;
        s_dst = '0;
        idxv = '0;
        case (w[63:56])
          OP_READ, OP_GATHER: begin
            nrd = nrd + 1;
            areg = w[READ_ADDR_LSB + 20 +: 4];
            base = 34'(regs[areg]) + 34'(w[READ_ADDR_LSB +: 20]);
            s_dst = w[63:56] == OP_READ ? w[READ_DST_LSB +: 7] : w[GATHER_DST_LSB +: 7];
            s_idx = w[GATHER_IDX_LSB +: 7];
            rd_v = 1'b1;
            rd_sid = s_dst;
            if (w[63:56] == OP_GATHER && !sval(s_idx, pv)) begin
              err_o = 1'b1;
              err_code_o = E_EMPTY_READ;
              err_info_o = {16'(POS), 9'd0, s_idx};
            end
            idxv = pd[s_idx[6]][s_idx[2:0]];
            if (base >= 34'(MEM_ROWS)) begin
              err_o = 1'b1;
              err_code_o = E_ADDR_RANGE;
              err_info_o = base[31:0];
            end
            for (int s = 0; s < SUPERLANES; s++) begin
              row = w[63:56] == OP_READ ? base : base + {{18{idxv[s*SLB + 15]}}, idxv[s*SLB +: 16]};
              rd_row[s] = row[7:0];
              if (row >= 34'(MEM_ROWS)) begin
                err_o = 1'b1;
                err_code_o = E_ADDR_RANGE;
                err_info_o = row[31:0];
              end
            end
          end
          OP_WRITE, OP_SCATTER: begin
            nwr = nwr + 1;
            areg = w[63:56] == OP_WRITE ? w[WRITE_ADDR_LSB + 20 +: 4] : w[SCATTER_ADDR_LSB + 20 +: 4];
            base = 34'(regs[areg]) + (w[63:56] == OP_WRITE ? 34'(w[WRITE_ADDR_LSB +: 20]) : 34'(w[SCATTER_ADDR_LSB +: 20]));
            s_src = w[63:56] == OP_WRITE ? w[WRITE_SRC_LSB +: 7] : w[SCATTER_SRC_LSB +: 7];
            s_idx = w[SCATTER_IDX_LSB +: 7];
            wr_v = 1'b1;
            wr_mask = '1;
            if (!sval(s_src, pv)) begin
              err_o = 1'b1;
              err_code_o = E_EMPTY_READ;
              err_info_o = {16'(POS), 9'd0, s_src};
            end
            if (w[63:56] == OP_SCATTER && !sval(s_idx, pv)) begin
              err_o = 1'b1;
              err_code_o = E_EMPTY_READ;
              err_info_o = {16'(POS), 9'd0, s_idx};
            end
            wr_d = pd[s_src[6]][s_src[2:0]];
            idxv = pd[s_idx[6]][s_idx[2:0]];
            if (base >= 34'(MEM_ROWS)) begin
              err_o = 1'b1;
              err_code_o = E_ADDR_RANGE;
              err_info_o = base[31:0];
            end
            for (int s = 0; s < SUPERLANES; s++) begin
              row = w[63:56] == OP_WRITE ? base : base + {{18{idxv[s*SLB + 15]}}, idxv[s*SLB +: 16]};
              wr_row[s] = row[7:0];
              if (row >= 34'(MEM_ROWS)) begin
                err_o = 1'b1;
                err_code_o = E_ADDR_RANGE;
                err_info_o = row[31:0];
              end
            end
          end
          default: begin
            err_o = 1'b1;
            err_code_o = E_BAD_OP;
            err_info_o = 32'(w[63:56]);
          end
        endcase
      end
    end
    if (nrd > MEM_READ_PORTS || nwr > MEM_WRITE_PORTS) begin
      err_o = 1'b1;
      err_code_o = E_PORT_CONFLICT;
      err_info_o = nrd > MEM_READ_PORTS ? 32'd0 : 32'd1;
    end
    if (err_o) begin
      rd_v = 1'b0;
      wr_v = 1'b0;
    end
  end

  // ---- read port ---------------------------------------------------------------------------
  logic r1_v;
  logic [6:0] r1_sid;
  logic [VBITS-1:0] r1_d;
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      r1_v <= 1'b0;
    end else begin
      r1_v <= rd_v;
      if (rd_v) begin
        r1_sid <= rd_sid;
        for (int s = 0; s < SUPERLANES; s++) r1_d[s*SLB +: SLB] <= bank[s][rd_row[s]];
      end
    end
  end
  logic rdl_busy;
  logic [6+VBITS:0] rdl_out;
  lpu_delay #(.N(LAT_MEM_READ - 1), .W(7 + VBITS)) u_rd_delay (
    .clk, .rst_n, .in_v(r1_v), .in_d({r1_sid, r1_d}), .out_v(land_v), .out_d(rdl_out), .busy(rdl_busy));
  assign land_sid = rdl_out[VBITS +: 7];
  assign land_d = rdl_out[VBITS-1:0];

  // ---- write port --------------------------------------------------------------------------
  localparam int WW = SUPERLANES + SUPERLANES * 8 + VBITS;
  logic [WW-1:0] wq_out;
  logic wq_v, wq_busy;
  lpu_delay #(.N(LAT_MEM_WRITE - 1), .W(WW)) u_wr_delay (
    .clk, .rst_n, .in_v(wr_v), .in_d({wr_mask, wr_row, wr_d}), .out_v(wq_v), .out_d(wq_out), .busy(wq_busy));
  assign obs_we = wq_v;
  assign obs_mask = wq_out[WW-1 -: SUPERLANES];
  assign obs_row = wq_out[VBITS +: SUPERLANES * 8];
  assign obs_data = wq_out[VBITS-1:0];

  always_ff @(posedge clk) begin
    if (wq_v) begin
      for (int s = 0; s < SUPERLANES; s++)
        if (obs_mask[s]) bank[s][obs_row[s]] <= obs_data[s*SLB +: SLB];
    end else if (ld_we) begin
      for (int s = 0; s < SUPERLANES; s++) bank[s][ld_row] <= ld_data[s*SLB +: SLB];
    end
  end

  always_comb begin
    for (int s = 0; s < SUPERLANES; s++) dbg_data[s*SLB +: SLB] = bank[s][dbg_row];
  end

  assign busy = r1_v | rdl_busy | wq_busy;
endmodule
