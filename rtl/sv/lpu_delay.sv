// A valid/data delay line of N register stages (N = 0: a wire). Data moves only with a valid
// bit, so an idle line costs nothing in simulation.
module lpu_delay #(
  parameter int N = 1,
  parameter int W = 8
) (
  input  logic         clk,
  input  logic         rst_n,
  input  logic         in_v,
  input  logic [W-1:0] in_d,
  output logic         out_v,
  output logic [W-1:0] out_d,
  output logic         busy    // any stage holds a value
);
  if (N == 0) begin : g_wire
    assign out_v = in_v;
    assign out_d = in_d;
    assign busy = 1'b0;
    wire _unused = &{1'b0, clk, rst_n};
  end else begin : g_regs
    logic [N-1:0] v;
    logic [N-1:0][W-1:0] d;
    always_ff @(posedge clk) begin
      if (!rst_n) v <= '0;
      else v <= (v << 1) | N'(in_v);
    end
    for (genvar i = 0; i < N; i++) begin : g_stage
      always_ff @(posedge clk) begin
        if (i == 0) begin
          if (in_v) d[i] <= in_d;
        end else begin
          if (v[i == 0 ? 0 : i-1]) d[i] <= d[i == 0 ? 0 : i-1];
        end
      end
    end
    assign out_v = v[N-1];
    assign out_d = d[N-1];
    assign busy = |v;
  end
endmodule
