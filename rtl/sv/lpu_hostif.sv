// The chip's endpoints, driven by the SXM queues: C2C links and host DMA channels.
//   Links: a vector presented on rx_v/rx_d in cycle c enters the link's FIFO at the end of c:
//   it has arrived in c + 1 and a RECV issued from c + 1 on may take it (docs/timing.md rule 21:
//   "the oldest vector that arrived by t"; the harness presents a vector arriving in a in
//   a - 1). A vector sent leaves in tx_v/tx_d (no back-pressure).
//   DMA: the host pushes input vectors per channel (dma_push, any time); DMAIN pops one;
//   DMAOUT vectors appear on dmaout_v/dmaout_d in the cycle they are delivered.
module lpu_hostif
  import lpu_cfg_pkg::*;
  import lpu_rtl_pkg::*;
#(
  parameter int RX_DEPTH = 16,
  parameter int DMA_DEPTH = 64
) (
  input  logic                              clk,
  input  logic                              rst_n,
  // links
  input  logic [LINKS-1:0]                  rx_v,
  input  logic [LINKS-1:0][VBITS-1:0]       rx_d,
  output logic [LINKS-1:0]                  tx_v,
  output logic [LINKS-1:0][VBITS-1:0]       tx_d,
  // host DMA
  input  logic                              dma_push,
  input  logic [7:0]                        dma_push_chan,
  input  logic [VBITS-1:0]                  dma_push_d,
  output logic [DMA_CHANNELS-1:0]           dmaout_v,
  output logic [DMA_CHANNELS-1:0][VBITS-1:0] dmaout_d,
  // SXM queue requests (queue order sxm.w.0, sxm.w.1, sxm.e.0, sxm.e.1)
  input  logic [NSXMQ-1:0]                  recv_req,
  input  logic [NSXMQ-1:0][7:0]             recv_link,
  output logic [NSXMQ-1:0]                  recv_ok,
  output logic [NSXMQ-1:0][VBITS-1:0]       recv_data,
  input  logic [NSXMQ-1:0]                  dmain_req,
  input  logic [NSXMQ-1:0][7:0]             dmain_chan,
  output logic [NSXMQ-1:0]                  dmain_ok,
  output logic [NSXMQ-1:0][VBITS-1:0]       dmain_data,
  input  logic [NSXMQ-1:0]                  send_v,
  input  logic [NSXMQ-1:0][7:0]             send_link,
  input  logic [NSXMQ-1:0][VBITS-1:0]       send_d,
  input  logic [NSXMQ-1:0]                  dmo_v,
  input  logic [NSXMQ-1:0][7:0]             dmo_chan,
  input  logic [NSXMQ-1:0][VBITS-1:0]       dmo_d,
  output logic                              err_o,
  output logic [7:0]                        err_code_o,
  output logic [31:0]                       err_info_o
);
  /* verilator inline_module */
  localparam int RA = $clog2(RX_DEPTH);
  localparam int DA = $clog2(DMA_DEPTH);

  logic [VBITS-1:0] rxf [LINKS][RX_DEPTH];
  logic [RA-1:0] rx_head [LINKS];
  logic [RA:0] rx_cnt [LINKS];
  logic [VBITS-1:0] dmf [DMA_CHANNELS][DMA_DEPTH];
  logic [DA-1:0] dm_head [DMA_CHANNELS];
  logic [DA:0] dm_cnt [DMA_CHANNELS];

  logic [LINKS-1:0] rx_pop;
  logic [DMA_CHANNELS-1:0] dm_pop;

  // Requests of the SXM queues (state only: a function of the FIFOs and the issued words).
  logic e_req, e_out, ovf_q;
  logic [31:0] e_req_info, ovf_info;
  always_comb begin
    int n;
    e_req = 1'b0;
    e_req_info = '0;
    rx_pop = '0;
    dm_pop = '0;
    recv_ok = '0;
    dmain_ok = '0;
    for (int r = 0; r < NSXMQ; r++) begin
      recv_data[r] = '0;
      dmain_data[r] = '0;
    end
    for (int l = 0; l < LINKS; l++) begin
      n = 0;
      for (int r = 0; r < NSXMQ; r++) begin
        if (recv_req[r] && 32'(recv_link[r]) == 32'(l)) begin
          n = n + 1;
          recv_ok[r] = rx_cnt[l] != 0;
          recv_data[r] = rxf[l][rx_head[l]];
          rx_pop[l] = rx_cnt[l] != 0;
        end
      end
      if (n > 1) e_req = 1'b1;
    end
    for (int c = 0; c < DMA_CHANNELS; c++) begin
      n = 0;
      for (int r = 0; r < NSXMQ; r++) begin
        if (dmain_req[r] && 32'(dmain_chan[r]) == 32'(c)) begin
          n = n + 1;
          dmain_ok[r] = dm_cnt[c] != 0;
          dmain_data[r] = dmf[c][dm_head[c]];
          dm_pop[c] = dm_cnt[c] != 0;
        end
      end
      if (n > 1) e_req = 1'b1;
    end
    if (e_req) e_req_info = 32'd4;
  end

  // Vectors leaving the chip.
  always_comb begin
    int n;
    e_out = 1'b0;
    for (int l = 0; l < LINKS; l++) begin
      n = 0;
      tx_v[l] = 1'b0;
      tx_d[l] = '0;
      for (int r = 0; r < NSXMQ; r++) begin
        if (send_v[r] && 32'(send_link[r]) == 32'(l)) begin
          n = n + 1;
          tx_v[l] = 1'b1;
          tx_d[l] = send_d[r];
        end
      end
      if (n > 1) e_out = 1'b1;
    end
    for (int c = 0; c < DMA_CHANNELS; c++) begin
      n = 0;
      dmaout_v[c] = 1'b0;
      dmaout_d[c] = '0;
      for (int r = 0; r < NSXMQ; r++) begin
        if (dmo_v[r] && 32'(dmo_chan[r]) == 32'(c)) begin
          n = n + 1;
          dmaout_v[c] = 1'b1;
          dmaout_d[c] = dmo_d[r];
        end
      end
      if (n > 1) e_out = 1'b1;
    end
  end

  // A FIFO overflow (a vector arriving or pushed into a full FIFO) is found at the clock edge
  // and reported in the next cycle (inputs act only at edges).
  always_ff @(posedge clk) begin
    logic o;
    logic [31:0] info;
    o = 1'b0;
    info = '0;
    for (int l = 0; l < LINKS; l++)
      if (rx_v[l] && 32'(rx_cnt[l]) >= 32'(RX_DEPTH) && !rx_pop[l]) begin
        o = 1'b1;
        info = 32'(l);
      end
    if (dma_push && 32'(dma_push_chan) < 32'(DMA_CHANNELS) &&
        32'(dm_cnt[dma_push_chan[$clog2(DMA_CHANNELS)-1:0]]) >= 32'(DMA_DEPTH)) begin
      o = 1'b1;
      info = 32'h100 | 32'(dma_push_chan);
    end
    ovf_q <= rst_n && o;
    ovf_info <= info;
  end

  always_comb begin
    err_o = e_req || e_out || ovf_q;
    err_code_o = ovf_q ? E_FIFO_FULL : (e_req || e_out) ? E_STRUCTURAL : E_NONE;
    err_info_o = ovf_q ? ovf_info : e_req ? e_req_info : e_out ? 32'd5 : 32'd0;
  end

  for (genvar l = 0; l < LINKS; l++) begin : g_rx
    wire push = rx_v[l];
    always_ff @(posedge clk) begin
      if (push) rxf[l][RA'(32'(rx_head[l]) + 32'(rx_cnt[l]))] <= rx_d[l];
      if (!rst_n) begin
        rx_head[l] <= '0;
        rx_cnt[l] <= '0;
      end else begin
        if (rx_pop[l]) rx_head[l] <= rx_head[l] + 1'b1;
        rx_cnt[l] <= rx_cnt[l] + (RA+1)'(push) - (RA+1)'(rx_pop[l]);
      end
    end
  end

  // DMA input FIFOs: filled by the host after reset (before or during the run).
  for (genvar c = 0; c < DMA_CHANNELS; c++) begin : g_dma
    wire push = dma_push && 32'(dma_push_chan) == 32'(c);
    always_ff @(posedge clk) begin
      if (push) dmf[c][DA'(32'(dm_head[c]) + 32'(dm_cnt[c]))] <= dma_push_d;
      if (!rst_n) begin
        dm_head[c] <= '0;
        dm_cnt[c] <= '0;
      end else begin
        if (dm_pop[c]) dm_head[c] <= dm_head[c] + 1'b1;
        dm_cnt[c] <= dm_cnt[c] + (DA+1)'(push) - (DA+1)'(dm_pop[c]);
      end
    end
  end
endmodule
