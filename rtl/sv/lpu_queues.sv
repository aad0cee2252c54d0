// The chip's NQ instruction queues: per queue an instruction memory and the in-order issue of
// docs/timing.md rules 1-7 (NOP, REPEAT/REPEATR, SYNC/NOTIFY, CONFIG, DESKEW, HALT), with the
// stepping of REPEATed operands (lpu_isa_pkg::step_word, generated from isa.toml `step`). Each
// queue presents at most one issued instruction per cycle (iss_v/iss_w), to its unit and to the
// observation ports.
//
// Per queue: `wait_c` counts the cycles until the queue may act again. In RUN with wait_c = 0
// the word at pc is looked at: a NOP n occupies n cycles; an ICU word issues and is handled
// here; any other word issues, and if the next word is REPEAT n,d / REPEATR r,d the queue
// enters GRP and issues the stepped instances every d cycles. SYNC parks the queue until a
// NOTIFY (any queue, this cycle or later); it issues again NOTIFY_LAT cycles after the NOTIFY.
// (One module for every queue, looping over them: the state is a set of packed arrays.)
module lpu_queues
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
#(
  parameter int IMEM_AW = 10
) (
  input  logic                        clk,
  input  logic                        rst_n,
  input  logic                        go,
  input  logic [47:0]                 cycle,
  // instruction memory load port (used while go = 0)
  input  logic                        ld_we,
  input  logic                        ld_len_we,
  input  logic [7:0]                  ld_q,
  input  logic [IMEM_AW:0]            ld_addr,
  input  logic [63:0]                 ld_data,
  input  logic [15:0][31:0]           regs,
  output logic [NQ-1:0]               iss_v,
  output logic [NQ-1:0][63:0]         iss_w,
  output logic [NQ-1:0][IMEM_AW:0]    iss_pc,   // index of the issued instruction's word
  output logic [NQ-1:0]               cfg_we,
  output logic [NQ-1:0][3:0]          cfg_r,
  output logic [NQ-1:0][31:0]         cfg_v,
  output logic [NQ-1:0]               done_o,
  output logic [NQ-1:0]               parked_o,
  output logic [NQ-1:0][IMEM_AW:0]    pc_o,
  output logic [NQ-1:0][1:0]          state_o,
  output logic [NQ-1:0]               err_o,
  output logic [NQ-1:0][7:0]          err_code_o
);
  /* verilator inline_module */
  localparam logic [1:0] Q_RUN = 2'd0, Q_PARK = 2'd1, Q_GRP = 2'd2, Q_DONE = 2'd3;

  logic [63:0] imem [NQ][2**IMEM_AW];
  logic notify_any;  // a NOTIFY issues in this cycle
  logic [NQ-1:0][IMEM_AW:0] len, pc, n_pc;
  logic [NQ-1:0][31:0] wait_c, n_wait, gleft, n_gleft;
  logic [NQ-1:0][1:0] st, n_st;
  logic [NQ-1:0][63:0] gw, n_gw;   // the next instance of the group (operands stepped)
  logic [NQ-1:0][15:0] gd, n_gd;   // REPEAT delay
  logic [NQ-1:0][4:0] gocc, n_gocc; // occupancy of the repeated instruction
  logic [NQ-1:0][IMEM_AW:0] gpc, n_gpc;  // index of the repeated instruction's word

  localparam int QB = $clog2(NQ);
  wire [QB-1:0] lq = ld_q[QB-1:0];
  wire _unused_lq = &{1'b0, ld_q[7:QB]};
  always_ff @(posedge clk) begin
    if (ld_we && 32'(ld_q) < 32'(NQ)) imem[lq][ld_addr[IMEM_AW-1:0]] <= ld_data;
    if (ld_len_we && 32'(ld_q) < 32'(NQ)) len[lq] <= ld_addr;
  end

  wire [31:0] deskew_wait = 32'(DESKEW_PERIOD - 1) - 32'(cycle % 48'(DESKEW_PERIOD));

  always_comb begin
    /* verilator lint_off UNUSEDSIGNAL */
    logic [63:0] w0, w1;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [7:0] op0, op1;
    logic act, rep, has0, has1;
    logic [IMEM_AW:0] pc1;
    logic [31:0] rep_n, nop_n;
    logic [15:0] rep_d;
    logic [4:0] occ0;
    notify_any = 1'b0;
    // issue
    for (int q = 0; q < NQ; q++) begin
      pc1 = pc[q] + 1'b1;
      has0 = pc[q] < len[q];
      has1 = pc1 < len[q];
      w0 = imem[q][pc[q][IMEM_AW-1:0]];
      w1 = imem[q][pc1[IMEM_AW-1:0]];
      op0 = w0[63:56];
      op1 = w1[63:56];
      act = go && wait_c[q] == 0;
      rep = has1 && (op1 == OP_REPEAT || op1 == OP_REPEATR);
      rep_n = op1 == OP_REPEAT ? 32'(w1[REPEAT_N_LSB +: REPEAT_N_W]) : regs[w1[REPEATR_R_LSB +: REPEATR_R_W]];
      rep_d = op1 == OP_REPEAT ? w1[REPEAT_D_LSB +: REPEAT_D_W] : w1[REPEATR_D_LSB +: REPEATR_D_W];
      occ0 = op0 == OP_TRANS ? 5'd16 : 5'd1;
      nop_n = 32'(w0[NOP_N_LSB +: NOP_N_W]);
      iss_v[q] = 1'b0;
      iss_w[q] = w0;
      iss_pc[q] = st[q] == Q_GRP ? gpc[q] : pc[q];
      cfg_we[q] = 1'b0;
      cfg_r[q] = w0[CONFIG_R_LSB +: CONFIG_R_W];
      cfg_v[q] = w0[CONFIG_VALUE_LSB +: CONFIG_VALUE_W];
      err_o[q] = 1'b0;
      err_code_o[q] = E_NONE;
      // next state (SYNC and PARK are completed below, once notify_any is known)
      n_pc[q] = pc[q];
      n_wait[q] = wait_c[q] != 0 ? wait_c[q] - 1'b1 : 32'd0;
      n_st[q] = st[q];
      n_gw[q] = gw[q];
      n_gleft[q] = gleft[q];
      n_gd[q] = gd[q];
      n_gocc[q] = gocc[q];
      n_gpc[q] = gpc[q];
      if (act && st[q] == Q_GRP) begin
        iss_v[q] = 1'b1;
        iss_w[q] = gw[q];
        if (gleft[q] > 1) begin
          n_gleft[q] = gleft[q] - 1'b1;
          n_wait[q] = 32'(gd[q]) - 1'b1;
          n_gw[q] = step_word(gw[q]);
        end else begin
          n_st[q] = Q_RUN;
          n_wait[q] = 32'(gocc[q]) - 1'b1;
        end
      end else if (act && st[q] == Q_RUN) begin
        if (!has0) begin
          n_st[q] = Q_DONE;
        end else begin
          case (op0)
            OP_NOP: begin
              n_pc[q] = pc1;
              n_wait[q] = nop_n == 0 ? 32'd0 : nop_n - 1'b1;
              if (nop_n == 0) begin
                err_o[q] = 1'b1;
                err_code_o[q] = E_NOP_ZERO;
              end
            end
            OP_REPEAT, OP_REPEATR: begin
              n_st[q] = Q_DONE;
              err_o[q] = 1'b1;
              err_code_o[q] = E_REPEAT_ALONE;
            end
            OP_SYNC: begin
              iss_v[q] = 1'b1;
              n_pc[q] = pc1;
            end
            OP_NOTIFY: begin
              iss_v[q] = 1'b1;
              notify_any = 1'b1;
              n_pc[q] = pc1;
            end
            OP_CONFIG: begin
              iss_v[q] = 1'b1;
              cfg_we[q] = 1'b1;
              n_pc[q] = pc1;
            end
            OP_HALT: begin
              iss_v[q] = 1'b1;
              n_st[q] = Q_DONE;
            end
            OP_DESKEW: begin
              iss_v[q] = 1'b1;
              n_pc[q] = pc1;
              n_wait[q] = deskew_wait;
            end
            default: begin
              iss_v[q] = 1'b1;
              if (rep) begin
                n_pc[q] = pc[q] + (IMEM_AW+1)'(2);
                if (rep_n != 0) begin
                  if (32'(rep_d) < 32'(occ0)) begin
                    err_o[q] = 1'b1;
                    err_code_o[q] = E_REPEAT_DELAY;
                  end
                  n_st[q] = Q_GRP;
                  n_gleft[q] = rep_n;
                  n_gd[q] = rep_d;
                  n_gocc[q] = occ0;
                  n_gpc[q] = pc[q];
                  n_gw[q] = step_word(w0);
                  n_wait[q] = rep_d == 0 ? 32'd0 : 32'(rep_d) - 1'b1;
                end else begin
                  n_wait[q] = 32'(occ0) - 1'b1;
                end
              end else begin
                n_pc[q] = pc1;
                n_wait[q] = 32'(occ0) - 1'b1;
              end
            end
          endcase
        end
      end
    end
    // SYNC (released by a NOTIFY of this cycle too) and parked queues
    for (int q = 0; q < NQ; q++) begin
      if (iss_v[q] && st[q] == Q_RUN && iss_w[q][63:56] == OP_SYNC) begin
        if (notify_any) n_wait[q] = 32'(NOTIFY_LAT - 1);
        else n_st[q] = Q_PARK;
      end else if (go && st[q] == Q_PARK && notify_any) begin
        n_st[q] = Q_RUN;
        n_wait[q] = 32'(NOTIFY_LAT - 1);
      end
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      st <= '0;
      pc <= '0;
      wait_c <= '0;
      gw <= '0;
      gleft <= '0;
      gd <= '0;
      gocc <= '0;
      gpc <= '0;
    end else if (go) begin
      st <= n_st;
      pc <= n_pc;
      wait_c <= n_wait;
      gw <= n_gw;
      gleft <= n_gleft;
      gd <= n_gd;
      gocc <= n_gocc;
      gpc <= n_gpc;
    end
  end

  always_comb begin
    for (int q = 0; q < NQ; q++) begin
      done_o[q] = st[q] == Q_DONE;
      parked_o[q] = st[q] == Q_PARK;
    end
  end
  assign pc_o = pc;
  assign state_o = st;
endmodule
