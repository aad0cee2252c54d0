// One instruction queue: its instruction memory, the in-order issue of docs/timing.md rules
// 1-7 (NOP, REPEAT/REPEATR, SYNC/NOTIFY, CONFIG, DESKEW, HALT) and the stepping of REPEATed
// operands. It presents at most one issued instruction per cycle (iss_v/iss_w) to its unit.
//
// State: `wait_c` counts the cycles until the queue may act again. In RUN with wait_c = 0 the
// word at pc is looked at: a NOP n occupies n cycles; an ICU word issues and is handled here;
// any other word issues, and if the next word is REPEAT n,d / REPEATR r,d the queue enters GRP
// and issues the stepped instances every d cycles. SYNC parks the queue until a NOTIFY (any
// queue, this cycle or later); it resumes NOTIFY_LAT cycles after the NOTIFY.
module lpu_queue
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
#(
  parameter int IMEM_AW = 10
) (
  input  logic               clk,
  input  logic               rst_n,
  input  logic               go,
  input  logic [47:0]        cycle,
  // instruction memory load port (used while go = 0)
  input  logic               ld_we,
  input  logic [IMEM_AW-1:0] ld_addr,
  input  logic [63:0]        ld_data,
  input  logic               ld_len_we,
  input  logic [IMEM_AW:0]   ld_len,
  input  logic [15:0][31:0]  regs,
  input  logic               notify_any,
  output logic               iss_v,
  output logic [63:0]        iss_w,
  output logic               notify_o,
  output logic               cfg_we,
  output logic [3:0]         cfg_r,
  output logic [31:0]        cfg_v,
  output logic               done_o,
  output logic [IMEM_AW:0]   pc_o,
  output logic [1:0]         state_o,
  output logic               err_o,
  output logic [7:0]         err_code_o
);
  typedef enum logic [1:0] {
    Q_RUN = 2'd0,
    Q_PARK = 2'd1,
    Q_GRP = 2'd2,
    Q_DONE = 2'd3
  } qst_e;

  logic [63:0] imem [2**IMEM_AW];
  logic [IMEM_AW:0] len, pc;
  logic [31:0] wait_c;
  qst_e st;
  logic [63:0] gw;       // the next instance of the group (operands stepped)
  logic [31:0] gleft;    // instances of the group still to issue
  logic [15:0] gd;       // REPEAT delay
  logic [4:0] gocc;      // occupancy of the repeated instruction

  always_ff @(posedge clk) begin
    if (ld_we) imem[ld_addr] <= ld_data;
  end

  wire [IMEM_AW:0] pc1 = pc + 1'b1;
  wire has0 = pc < len;
  wire has1 = pc1 < len;
  wire [63:0] w0 = imem[pc[IMEM_AW-1:0]];
  /* verilator lint_off UNUSEDSIGNAL */
  wire [63:0] w1 = imem[pc1[IMEM_AW-1:0]];
  /* verilator lint_on UNUSEDSIGNAL */
  wire [7:0] op0 = w0[63:56];
  wire [7:0] op1 = w1[63:56];
  wire act = go && wait_c == 0;
  wire rep = has1 && (op1 == OP_REPEAT || op1 == OP_REPEATR);
  wire [31:0] rep_n = op1 == OP_REPEAT ? 32'(w1[REPEAT_N_LSB +: REPEAT_N_W]) : regs[w1[REPEATR_R_LSB +: REPEATR_R_W]];
  wire [15:0] rep_d = op1 == OP_REPEAT ? w1[REPEAT_D_LSB +: REPEAT_D_W] : w1[REPEATR_D_LSB +: REPEATR_D_W];
  wire [4:0] occ0 = op0 == OP_TRANS ? 5'd16 : 5'd1;
  wire [31:0] nop_n = 32'(w0[NOP_N_LSB +: NOP_N_W]);
  wire [31:0] deskew_wait = 32'(DESKEW_PERIOD - 1) - 32'(cycle % 48'(DESKEW_PERIOD));

  // Issue (combinational: the instruction issued in this cycle).
  always_comb begin
    iss_v = 1'b0;
    iss_w = w0;
    notify_o = 1'b0;
    cfg_we = 1'b0;
    cfg_r = w0[CONFIG_R_LSB +: CONFIG_R_W];
    cfg_v = w0[CONFIG_VALUE_LSB +: CONFIG_VALUE_W];
    err_o = 1'b0;
    err_code_o = E_NONE;
    if (act && st == Q_GRP) begin
      iss_v = 1'b1;
      iss_w = gw;
    end else if (act && st == Q_RUN && has0) begin
      case (op0)
        OP_NOP: begin
          if (nop_n == 0) begin
            err_o = 1'b1;
            err_code_o = E_NOP_ZERO;
          end
        end
        OP_REPEAT, OP_REPEATR: begin
          err_o = 1'b1;
          err_code_o = E_REPEAT_ALONE;
        end
        default: begin
          iss_v = 1'b1;
          notify_o = op0 == OP_NOTIFY;
          cfg_we = op0 == OP_CONFIG;
          if (rep && rep_n != 0 && 32'(rep_d) < 32'(occ0)) begin
            err_o = 1'b1;
            err_code_o = E_REPEAT_DELAY;
          end
        end
      endcase
    end
  end

  always_ff @(posedge clk) begin
    if (ld_len_we) len <= ld_len;
    if (!rst_n) begin
      st <= Q_RUN;
      pc <= '0;
      wait_c <= '0;
      gw <= '0;
      gleft <= '0;
      gd <= '0;
      gocc <= '0;
    end else if (go) begin
      if (wait_c != 0) wait_c <= wait_c - 1'b1;
      case (st)
        Q_PARK: begin
          if (notify_any) begin
            st <= Q_RUN;
            wait_c <= 32'(NOTIFY_LAT - 1);
          end
        end
        Q_GRP: begin
          if (wait_c == 0) begin
            if (gleft > 1) begin
              gleft <= gleft - 1'b1;
              wait_c <= 32'(gd) - 1'b1;
              gw <= step_word(gw);
            end else begin
              st <= Q_RUN;
              wait_c <= 32'(gocc) - 1'b1;
            end
          end
        end
        Q_RUN: begin
          if (wait_c == 0) begin
            if (!has0) begin
              st <= Q_DONE;
            end else begin
              case (op0)
                OP_NOP: begin
                  pc <= pc1;
                  wait_c <= nop_n == 0 ? 32'd0 : nop_n - 1'b1;
                end
                OP_REPEAT, OP_REPEATR: st <= Q_DONE;
                OP_SYNC: begin
                  pc <= pc1;
                  if (notify_any) wait_c <= 32'(NOTIFY_LAT - 1);
                  else st <= Q_PARK;
                end
                OP_NOTIFY, OP_CONFIG: pc <= pc1;
                OP_HALT: st <= Q_DONE;
                OP_DESKEW: begin
                  pc <= pc1;
                  wait_c <= deskew_wait;
                end
                default: begin
                  if (rep) begin
                    pc <= pc + (IMEM_AW+1)'(2);
                    if (rep_n != 0) begin
                      st <= Q_GRP;
                      gleft <= rep_n;
                      gd <= rep_d;
                      gocc <= occ0;
                      gw <= step_word(w0);
                      wait_c <= rep_d == 0 ? 32'd0 : 32'(rep_d) - 1'b1;
                    end else begin
                      wait_c <= 32'(occ0) - 1'b1;
                    end
                  end else begin
                    pc <= pc1;
                    wait_c <= 32'(occ0) - 1'b1;
                  end
                end
              endcase
            end
          end
        end
        default: ;
      endcase
    end
  end

  assign done_o = st == Q_DONE;
  assign pc_o = pc;
  assign state_o = st;
endmodule
