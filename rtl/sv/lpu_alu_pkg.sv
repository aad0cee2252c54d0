// Native vector arithmetic of the VXM, SXM and MXM readout (isa/numerics.md): every integer
// operation and conversion, and the float operations that are bit manipulations or
// comparisons (NEG ABS MIN MAX CMPxx RELU RMAX SEL CONST MOV, CVT of a type to itself).
// Elements are little-endian: element i of a type of b bytes is bits [8b(i+1)-1 : 8bi].
package lpu_alu_pkg;
  import lpu_isa_pkg::*;
  import lpu_cfg_pkg::*;
  localparam int AV = VBYTES * 8;

  // Element i of width tb bytes, sign-extended to 32 bits.
  function automatic logic [31:0] get_s(logic [AV-1:0] v, int i, int tb);
    case (tb)
      1: return {{24{v[i*8 + 7]}}, v[i*8 +: 8]};
      2: return {{16{v[i*16 + 15]}}, v[i*16 +: 16]};
      default: return v[i*32 +: 32];
    endcase
  endfunction
  function automatic logic [AV-1:0] put(logic [AV-1:0] v, int i, int tb, logic [31:0] x);
    logic [AV-1:0] r;
    r = v;
    case (tb)
      1: r[i*8 +: 8] = x[7:0];
      2: r[i*16 +: 16] = x[15:0];
      default: r[i*32 +: 32] = x;
    endcase
    return r;
  endfunction
  function automatic logic [AV-1:0] splat(int tb, logic [31:0] x);
    logic [AV-1:0] r;
    for (int i = 0; i < VBYTES / tb; i++) r = put(r, i, tb, x);
    return r;
  endfunction

  // ---- integers --------------------------------------------------------------------------
  // One element of an integer operation; a and b sign-extended from wb bits; the caller keeps
  // the low wb bits.
  function automatic logic [31:0] ielem(logic [7:0] op, int wb, logic [31:0] a, logic [31:0] b, logic [5:0] sh);
    logic [31:0] ua, m;
    m = wb == 32 ? 32'hFFFF_FFFF : (32'd1 << wb) - 1;
    ua = a & m;
    case (op)
      OP_ADD: return a + b;
      OP_SUB: return a - b;
      OP_MUL: return a * b;
      OP_MIN: return $signed(b) < $signed(a) ? b : a;
      OP_MAX: return $signed(a) < $signed(b) ? b : a;
      OP_AND: return a & b;
      OP_OR: return a | b;
      OP_XOR: return a ^ b;
      OP_CMPEQ: return a == b ? 32'hFFFF_FFFF : 32'd0;
      OP_CMPLT: return $signed(a) < $signed(b) ? 32'hFFFF_FFFF : 32'd0;
      OP_CMPLE: return $signed(a) <= $signed(b) ? 32'hFFFF_FFFF : 32'd0;
      OP_SHL: return 32'(sh) >= 32'(wb) ? 32'd0 : a << sh;
      OP_SHRL: return 32'(sh) >= 32'(wb) ? 32'd0 : ua >> sh;
      OP_SHRA: return $signed(a) >>> (32'(sh) >= 32'(wb) ? 6'(wb - 1) : sh);
      OP_NOT: return ~a;
      OP_NEG: return 32'd0 - a;
      OP_ABS: return a[31] ? 32'd0 - a : a;
      OP_RELU: return a[31] ? 32'd0 : a;
      default: return 32'd0;
    endcase
  endfunction

  function automatic logic [AV-1:0] int_vec(logic [7:0] op, int tb, logic [AV-1:0] a, logic [AV-1:0] b, logic [5:0] sh);
    logic [AV-1:0] r;
    r = '0;
    for (int i = 0; i < VBYTES / tb; i++)
      r = put(r, i, tb, ielem(op, 8 * tb, get_s(a, i, tb), get_s(b, i, tb), sh));
    return r;
  endfunction

  // SUM (wraps) and RMAX (signed) of the integer elements, in every element.
  function automatic logic [AV-1:0] int_reduce(logic [7:0] op, int tb, logic [AV-1:0] a);
    logic [31:0] acc, x;
    acc = get_s(a, 0, tb);
    for (int i = 1; i < VBYTES / tb; i++) begin
      x = get_s(a, i, tb);
      if (op == OP_SUM) acc = acc + x;
      else if ($signed(acc) < $signed(x)) acc = x;
    end
    return splat(tb, acc);
  endfunction

  // Saturate a sign-extended 32-bit value to wb bits.
  /* verilator lint_off UNUSEDSIGNAL */
  function automatic logic [31:0] sat(logic [31:0] x, int wb);
    logic signed [31:0] lo, hi;
    if (wb >= 32) return x;
    hi = (32'sd1 <<< (wb - 1)) - 1;
    lo = -(32'sd1 <<< (wb - 1));
    if ($signed(x) > hi) return hi;
    if ($signed(x) < lo) return lo;
    return x;
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */

  // CVT between integer types (or a type to itself, any type: a bit copy), with `part`.
  function automatic logic [AV-1:0] int_cvt(int sf, int st, int part, logic [AV-1:0] a);
    logic [AV-1:0] r;
    int n_in, n_out, src;
    n_in = VBYTES / sf;
    n_out = VBYTES / st;
    r = '0;
    for (int j = 0; j < n_out; j++) begin
      if (st > sf) begin
        src = part * n_out + j;
        if (src < n_in) r = put(r, j, st, get_s(a, src, sf));
      end else begin
        src = j - part * n_in;
        if (src >= 0 && src < n_in) r = put(r, j, st, sat(get_s(a, src, sf), 8 * st));
      end
    end
    return r;
  endfunction

  // ---- float bit-level operations ------------------------------------------------------------
  function automatic logic f_nan(logic [3:0] t, logic [31:0] x);
    logic _unused_sign;
    _unused_sign = x[31];
    case (t)
      4'd3: return x[30:23] == 8'hFF && x[22:0] != 0;
      4'd4: return x[14:10] == 5'h1F && x[9:0] != 0;
      4'd5: return x[14:7] == 8'hFF && x[6:0] != 0;
      4'd6: return x[6:0] == 7'h7F;
      default: return x[6:2] == 5'h1F && x[1:0] != 0;
    endcase
  endfunction
  function automatic logic [31:0] f_qnan(logic [3:0] t);
    case (t)
      4'd3: return 32'h7FC0_0000;
      4'd4: return 32'h7E00;
      4'd5: return 32'h7FC0;
      default: return 32'h7F;
    endcase
  endfunction
  // A total-order key for non-NaN patterns of wb bits (-0 < +0).
  function automatic logic [31:0] f_key(logic [31:0] x, int wb);
    logic [31:0] m, sb;
    m = wb == 32 ? 32'hFFFF_FFFF : (32'd1 << wb) - 1;
    sb = 32'd1 << (wb - 1);
    return (x & sb) != 0 ? ~x & m : (x & m) | sb;
  endfunction
  function automatic logic f_zero(logic [31:0] x, int wb);
    logic [31:0] mag;
    mag = wb == 32 ? 32'h7FFF_FFFF : (32'd1 << (wb - 1)) - 1;
    return (x & mag) == 0;
  endfunction

  // A float result re-encoded to t: the pattern itself, except that e5m2 infinities saturate
  // to the largest finite value (isa/numerics.md: rounding f32 to fp8 never gives inf).
  function automatic logic [31:0] f_enc(logic [3:0] t, logic [31:0] x);
    if (t == 4'd7 && x[6:0] == 7'h7C) return {x[31:7], 7'h7B};
    return x;
  endfunction

  function automatic logic [31:0] felem(logic [7:0] op, logic [3:0] t, int wb, logic [31:0] a, logic [31:0] b);
    logic na, nb, z2;
    logic [31:0] ka, kb, sb, m;
    m = wb == 32 ? 32'hFFFF_FFFF : (32'd1 << wb) - 1;
    a = a & m;
    b = b & m;
    sb = 32'd1 << (wb - 1);
    na = f_nan(t, a);
    nb = f_nan(t, b);
    ka = f_key(a, wb);
    kb = f_key(b, wb);
    z2 = f_zero(a, wb) && f_zero(b, wb);
    case (op)
      OP_NEG: return a ^ sb;
      OP_ABS: return a & ~sb;
      OP_MIN: return na || nb ? f_qnan(t) : f_enc(t, ka <= kb ? a : b);
      OP_MAX: return na || nb ? f_qnan(t) : f_enc(t, ka >= kb ? a : b);
      OP_RELU: return na ? f_qnan(t) : ((a & sb) != 0 ? 32'd0 : f_enc(t, a));
      OP_CMPEQ: return !na && !nb && (a == b || z2) ? 32'hFFFF_FFFF : 32'd0;
      OP_CMPLT: return !na && !nb && !z2 && ka < kb ? 32'hFFFF_FFFF : 32'd0;
      OP_CMPLE: return !na && !nb && (z2 || ka <= kb) ? 32'hFFFF_FFFF : 32'd0;
      default: return 32'd0;
    endcase
  endfunction

  function automatic logic [AV-1:0] float_vec(logic [7:0] op, logic [3:0] t, int tb, logic [AV-1:0] a, logic [AV-1:0] b);
    logic [AV-1:0] r;
    r = '0;
    for (int i = 0; i < VBYTES / tb; i++)
      r = put(r, i, tb, felem(op, t, 8 * tb, get_s(a, i, tb), get_s(b, i, tb)));
    return r;
  endfunction

  // RMAX of float elements: any NaN gives the canonical NaN; -0 < +0.
  function automatic logic [AV-1:0] float_rmax(logic [3:0] t, int tb, logic [AV-1:0] a);
    logic [31:0] m, x, msk;
    logic nan;
    msk = tb == 4 ? 32'hFFFF_FFFF : (32'd1 << (8 * tb)) - 1;
    m = get_s(a, 0, tb) & msk;
    nan = f_nan(t, m);
    for (int i = 1; i < VBYTES / tb; i++) begin
      x = get_s(a, i, tb) & msk;
      nan = nan | f_nan(t, x);
      if (f_key(x, 8 * tb) > f_key(m, 8 * tb)) m = x;
    end
    return splat(tb, nan ? f_qnan(t) : f_enc(t, m));
  endfunction

  // SEL: mask element nonzero (as an integer of the element width) selects a.
  function automatic logic [AV-1:0] select(int tb, logic [AV-1:0] mk, logic [AV-1:0] a, logic [AV-1:0] b);
    logic [AV-1:0] r;
    r = '0;
    for (int i = 0; i < VBYTES / tb; i++)
      r = put(r, i, tb, get_s(mk, i, tb) != 0 ? get_s(a, i, tb) : get_s(b, i, tb));
    return r;
  endfunction
endpackage
