// The stream register file: NSTREAMS eastward and NSTREAMS westward registers at every
// position (docs/timing.md rules 8-10).
//
// Per position, direction and stream there is a link register `lk` (value and valid bit) that
// holds what the upstream neighbour had in the previous cycle. The value AT the position in
// this cycle (`sv_d`/`sv_v`, what instructions read and the harness observes) is the landing
// port of a unit that writes this stream here in this cycle if any (units register their
// results, so a landing port is a register output), else the link register. A value therefore
// moves one position per cycle (hop_cycles = 1) and is replaced where another instruction
// writes the same stream. Two landings on one register in one cycle are an error.
module lpu_streams
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
(
  input  logic                                       clk,
  input  logic                                       rst_n,
  input  logic [NLAND-1:0]                           land_v,
  input  logic [NLAND-1:0][6:0]                      land_sid,
  input  logic [VBITS-1:0]                           land_d [NLAND],
  output logic [NPOS-1:0][1:0][NSTREAMS-1:0]         sv_v,
  output logic [VBITS-1:0]                           sv_d [NPOS][2][NSTREAMS],
  output logic                                       err_o,
  output logic [31:0]                                err_info_o
);
  /* verilator inline_module */
  logic [NPOS-1:0][1:0][NSTREAMS-1:0] lk_v;
  logic [VBITS-1:0] lk_d [NPOS][2][NSTREAMS];
  logic [NPOS-1:0][1:0][NSTREAMS-1:0] hit, conflict;

  // Position of landing port i.
  function automatic int port_pos(int i);
    for (int p = 0; p < NPOS; p++)
      if (i < port_base(p) + nports_at(p)) return p;
    return NPOS - 1;
  endfunction

  always_comb begin
    int p;
    logic d;
    logic [2:0] s;
    p = 0;
    d = 1'b0;
    s = '0;
    sv_v = lk_v;
    sv_d = lk_d;
    hit = '0;
    conflict = '0;
    for (int i = 0; i < NLAND; i++) begin
      if (land_v[i] && land_sid[i][5:0] < 6'(NSTREAMS)) begin
        p = port_pos(i);
        d = land_sid[i][6];
        s = land_sid[i][2:0];
        if (hit[p][d][s]) conflict[p][d][s] = 1'b1;
        hit[p][d][s] = 1'b1;
        sv_v[p][d][s] = 1'b1;
        sv_d[p][d][s] = land_d[i];
      end
    end
  end

  // Values move one position per cycle: east from p-1 to p, west from p+1 to p.
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      lk_v <= '0;
    end else begin
      for (int p = 0; p < NPOS; p++) begin
        lk_v[p][0] <= p == 0 ? '0 : sv_v[p == 0 ? 0 : p-1][0];
        lk_v[p][1] <= p == NPOS - 1 ? '0 : sv_v[p == NPOS - 1 ? 0 : p+1][1];
      end
    end
  end
  for (genvar p = 0; p < NPOS; p++) begin : g_pos
    for (genvar s = 0; s < NSTREAMS; s++) begin : g_s
      if (p > 0) begin : g_e
        always_ff @(posedge clk) if (sv_v[p-1][0][s]) lk_d[p][0][s] <= sv_d[p-1][0][s];
      end else begin : g_e0
        assign lk_d[p][0][s] = '0;
      end
      if (p < NPOS - 1) begin : g_w
        always_ff @(posedge clk) if (sv_v[p+1][1][s]) lk_d[p][1][s] <= sv_d[p+1][1][s];
      end else begin : g_w0
        assign lk_d[p][1][s] = '0;
      end
    end
  end

  // The first conflict (lowest position, east before west, lowest stream).
  always_comb begin
    err_o = 1'b0;
    err_info_o = '0;
    for (int p = NPOS - 1; p >= 0; p--) begin
      for (int d = 1; d >= 0; d--) begin
        for (int s = NSTREAMS - 1; s >= 0; s--) begin
          if (conflict[p][d][s]) begin
            err_o = 1'b1;
            err_info_o = {16'(p), 9'd0, d[0], 6'(s)};
          end
        end
      end
    end
  end
endmodule
