#include "lpu/compiler/ir.hpp"

#include <fmt/format.h>

namespace lpu::compiler {

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::Input: return "input";
    case OpKind::Norm: return "norm";
    case OpKind::MatVec: return "matvec";
    case OpKind::Attention: return "attention";
    case OpKind::SwiGlu: return "swiglu";
    case OpKind::Gating: return "gating";
    case OpKind::Exchange: return "exchange";
    case OpKind::Output: return "output";
  }
  return "?";
}

namespace {
std::string chip_list(const std::vector<int>& cs) {
  if (cs.empty()) return "-";
  // Runs of consecutive chips as a-b.
  std::string s;
  for (std::size_t i = 0; i < cs.size();) {
    std::size_t j = i;
    while (j + 1 < cs.size() && cs[j + 1] == cs[j] + 1) ++j;
    s += (s.empty() ? "" : ",") + (j > i ? fmt::format("{}-{}", cs[i], cs[j]) : fmt::format("{}", cs[i]));
    i = j + 1;
  }
  return s;
}
}  // namespace

std::string Graph::print() const {
  std::string o = fmt::format("graph {} ({}, batch {}, context {}): {} ops\n", model, isa::dtype_info(wtype).name, batch,
                              context, ops.size());
  for (const auto& op : ops) {
    std::string shape;
    switch (op.kind) {
      case OpKind::MatVec:
        shape = fmt::format("{} x {}{}", op.rows, op.cols, op.copies > 1 ? fmt::format(" x {}", op.copies) : "");
        break;
      case OpKind::Norm: shape = fmt::format("{}", op.cols); break;
      case OpKind::SwiGlu:
        shape = fmt::format("{}{}", op.cols, op.copies > 1 ? fmt::format(" x {}", op.copies) : "");
        break;
      case OpKind::Attention:
        shape = fmt::format("{} heads / {} kv x {} over {}", op.heads, op.kv_heads, op.head_dim, op.context);
        break;
      case OpKind::Gating: shape = fmt::format("top {} of {}", op.top_k, op.rows); break;
      case OpKind::Exchange:
        shape = op.xkind == ExchangeKind::AllGather
                    ? fmt::format("all-gather {} B, {} link(s) per pair", op.bytes, op.links)
                    : fmt::format("send {} B {} -> {}, {} link(s)", op.bytes, op.from, op.to, op.links);
        break;
      case OpKind::Input:
      case OpKind::Output: shape = fmt::format("{} B", op.bytes); break;
    }
    o += fmt::format("  {:<14} {:<9} {:<40} chips {}\n", op.name, op_kind_name(op.kind), shape, chip_list(op.chips));
  }
  return o;
}

}  // namespace lpu::compiler
