// Shared definitions of the mini chip's RTL: floorplan, queue numbering, error codes, vector
// helpers. Opcodes and field positions come from the generated lpu_isa_pkg (isa/isa.toml);
// sizes and latencies from the generated lpu_cfg_pkg (configs/mini.toml).
//
// Floorplan (positions west to east, one stream hop apart; arch/src/layout.cpp):
//   0 sxm.w | 1 mem.w.3 | 2 mem.w.2 | 3 mem.w.1 | 4 mem.w.0 | 5 vxm |
//   6 mem.e.0 | 7 mem.e.1 | 8 mem.e.2 | 9 mem.e.3 | 10 sxm.e | 11 mxm.e.0
// Queues (lpu::Layout order): MEM west slices 0..3 then east 0..3, two queues each
// (mem.w.0, mem.w.0.1, mem.w.1, ...), vxm.0..3, sxm.w.0/1, sxm.e.0/1, mxm.e.0.0/1/2.
package lpu_rtl_pkg;
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;

  localparam int VBITS = VBYTES * 8;
  localparam int SLBYTES = 16;                       // bytes per superlane
  localparam int NMEM = 2 * MEM_SLICES_PER_HEMI;     // MEM slices, index = hemi*N + i
  localparam int NPOS = NMEM + 3 + MXM_PLANES;       // positions on the chip
  localparam int POS_SXMW = 0;
  localparam int POS_VXM = MEM_SLICES_PER_HEMI + 1;
  localparam int POS_SXME = NMEM + 2;
  localparam int POS_MXM = NMEM + 3;
  localparam int NQ_MEM = NMEM * MEM_QUEUES;
  localparam int Q_VXM0 = NQ_MEM;
  localparam int Q_SXM0 = Q_VXM0 + VXM_QUEUES;       // sxm.w.* then sxm.e.*
  localparam int Q_MXM0 = Q_SXM0 + 2 * SXM_QUEUES;
  localparam int NQ = Q_MXM0 + MXM_QUEUES;
  localparam int NSXMQ = 2 * SXM_QUEUES;
  // The weight bus (docs/timing.md rule 15a): one write port on the plane's staging buffer per
  // MEM slice of the east hemisphere (the only one with a plane), staging rows of WROW_B bits.
  localparam int NWB = MEM_SLICES_PER_HEMI;
  localparam int WROW_B = $clog2(VBYTES);
  // Error sources (err_src): queues, MEM slices, VXM queues, SXM queues, MXM queues, streams,
  // host interface, chip.
  localparam int ES_MEM = NQ;
  localparam int ES_VXM = ES_MEM + NMEM;
  localparam int ES_SXM = ES_VXM + VXM_QUEUES;
  localparam int ES_MXM = ES_SXM + NSXMQ;
  localparam int ES_STREAMS = ES_MXM + MXM_QUEUES;
  localparam int ES_HOST = ES_STREAMS + 1;
  localparam int ES_CHIP = ES_HOST + 1;

  // Position of MEM slice m (m = hemi * MEM_SLICES_PER_HEMI + i, hemi 0 = west).
  function automatic int mem_pos(int m);
    return m < MEM_SLICES_PER_HEMI ? MEM_SLICES_PER_HEMI - m : MEM_SLICES_PER_HEMI + 2 + (m - MEM_SLICES_PER_HEMI);
  endfunction

  // Stream landing ports (unit results entering the stream network), grouped by position.
  localparam int VXM_CLASSES = 5;  // alu, mul, cvt, trans, reduce
  localparam int SXM_CLASSES = 5;  // shift, perm, trans, recv, dmain
  function automatic int nports_at(int p);
    if (p == POS_VXM) return VXM_QUEUES * VXM_CLASSES;
    if (p == POS_SXMW || p == POS_SXME) return SXM_QUEUES * SXM_CLASSES;
    if (p == POS_MXM) return MXM_QUEUES;
    return 1;  // a MEM slice: its read port
  endfunction
  function automatic int imin(int a, int b);
    return a < b ? a : b;
  endfunction
  function automatic int imax(int a, int b);
    return a > b ? a : b;
  endfunction
  // sum of nports_at(q) for q < p (closed form: no loop in a constant function)
  function automatic int port_base(int p);
    int b;
    b = 0;
    if (p > POS_SXMW) b = b + SXM_QUEUES * SXM_CLASSES;
    b = b + imin(imax(p - 1, 0), MEM_SLICES_PER_HEMI);                          // mem.w.*
    if (p > POS_VXM) b = b + VXM_QUEUES * VXM_CLASSES;
    b = b + imin(imax(p - (MEM_SLICES_PER_HEMI + 2), 0), MEM_SLICES_PER_HEMI);  // mem.e.*
    if (p > POS_SXME) b = b + SXM_QUEUES * SXM_CLASSES;
    if (p > POS_MXM) b = b + MXM_QUEUES;
    return b;
  endfunction
  localparam int NLAND = port_base(NPOS);

  // Error codes (the harness turns them into messages; docs/rtl.md lists them).
  typedef enum logic [7:0] {
    E_NONE = 8'd0,
    E_EMPTY_READ = 8'd1,      // info: {pos, sid}
    E_STREAM_CONFLICT = 8'd2, // info: {pos, sid}
    E_ADDR_RANGE = 8'd3,      // info: row
    E_PORT_CONFLICT = 8'd4,   // info: 0 read, 1 write
    E_REPEAT_ALONE = 8'd5,
    E_REPEAT_DELAY = 8'd6,
    E_NOP_ZERO = 8'd7,
    E_BAD_OP = 8'd8,          // info: opcode
    E_RECV_EMPTY = 8'd9,      // info: link
    E_DMA_EMPTY = 8'd10,      // info: channel
    E_MXM_NO_WEIGHTS = 8'd11,
    E_MXM_TYPE = 8'd12,
    E_MXM_ACC_TYPE = 8'd13,
    E_ACC_NOT_READY = 8'd14,  // info: acc
    E_ACC_UNWRITTEN = 8'd15,  // info: acc
    E_PERM_UNDEFINED = 8'd16, // info: table
    E_STRUCTURAL = 8'd17,     // info: what (1 two MM in a cycle, 2 two IW, 3 IW overflow,
                              //            4 two RECV/DMAIN on one link/channel, 5 two SEND/DMAOUT)
    E_FIFO_FULL = 8'd18,      // info: link / channel
    E_BAD_STREAM = 8'd19,     // info: sid (id beyond the chip's streams)
    E_DEADLOCK = 8'd20,       // every unfinished queue is parked on a SYNC
    E_NO_PLANE = 8'd21        // LWM to a plane its hemisphere does not have; info: plane
  } err_e;

  function automatic logic is_icu(logic [7:0] op);
    return op inside {OP_NOP, OP_REPEAT, OP_REPEATR, OP_SYNC, OP_NOTIFY, OP_CONFIG, OP_HALT, OP_DESKEW};
  endfunction

  function automatic int dtype_bytes(logic [3:0] t);
    case (t)
      4'd0, 4'd6, 4'd7: return 1;
      4'd1, 4'd4, 4'd5: return 2;
      default: return 4;
    endcase
  endfunction
  function automatic logic dtype_float(logic [3:0] t);
    return t >= 4'd3;
  endfunction

  // REPEAT operand stepping (step_word) is generated from isa.toml `step` into lpu_isa_pkg.

  // Latency class of an instruction in cycles (for the program-length rule of docs/timing.md).
  function automatic int act_latency(logic [7:0] op);
    case (op)
      OP_READ, OP_GATHER: return LAT_MEM_READ;
      OP_WRITE, OP_SCATTER: return LAT_MEM_WRITE;
      OP_LWM: return LAT_MEM_LWM;
      OP_MUL: return LAT_VXM_MUL;
      OP_CVT: return LAT_VXM_CVT;
      OP_EXP, OP_TANH, OP_SIGMOID, OP_GELU, OP_SILU, OP_RSQRT, OP_RECIP: return LAT_VXM_TRANS;
      OP_SUM, OP_RMAX: return LAT_VXM_REDUCE;
      OP_ADD, OP_SUB, OP_MIN, OP_MAX, OP_AND, OP_OR, OP_XOR, OP_CMPEQ, OP_CMPLT, OP_CMPLE, OP_SEL,
      OP_SHL, OP_SHRA, OP_SHRL, OP_NOT, OP_NEG, OP_ABS, OP_RELU, OP_CONST, OP_MOV: return LAT_VXM_ALU;
      OP_LW: return LAT_MXM_LW;
      OP_IW: return LAT_MXM_IW;
      OP_MM, OP_MMA: return LAT_MXM_MM;
      OP_ACCRD: return LAT_MXM_RD;
      OP_SHIFT, OP_ROT, OP_DIST: return LAT_SXM_SHIFT;
      OP_PERM: return LAT_SXM_PERM;
      OP_TRANS: return LAT_SXM_TRANS + 15;  // its last output
      OP_SEND: return LAT_C2C_SEND;
      OP_RECV: return LAT_C2C_RECV;
      OP_DMAIN, OP_DMAOUT: return LAT_DMA;
      default: return 0;
    endcase
  endfunction
endpackage
