#pragma once
// The floorplan: slices on the east-west axis and the instruction queues that drive them.
//
// Positions, west to east (one stream hop between neighbours):
//   MXM planes of the west hemisphere (outermost first) | SXM west | MEM w.(N-1) .. w.0 |
//   VXM | MEM e.0 .. e.(N-1) | SXM east | MXM planes of the east hemisphere (innermost first)
// MEM slices are numbered from the VXM outward. With an odd number of MXM planes the extra
// plane goes east. Queue names: mem.w.3 (and mem.w.3.1 ... when a MEM slice has several
// queues), vxm.0, sxm.e.2, mxm.w.0.1 (plane 0 of the west
// hemisphere, queue 1), mxm.e.1.0, ...
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lpu/arch/params.hpp"
#include "lpu/common/types.hpp"

namespace lpu {

enum class SliceKind : std::uint8_t { Mem, Vxm, Mxm, Sxm };
std::string_view slice_kind_name(SliceKind k);

struct Slice {
  SliceKind kind;
  Hemi hemi;
  int index;     // within its kind and hemisphere (MEM: from the VXM outward; MXM: plane)
  int position;  // 0 = westmost
  std::string name;  // "mem.w.3", "vxm", "sxm.e", "mxm.w.0"
};

struct Queue {
  std::string name;
  isa::QueueKind kind;
  SliceId slice;
  int index_in_slice;
  int position;
};

class Layout {
 public:
  explicit Layout(const ChipParams& p);

  const std::vector<Slice>& slices() const { return slices_; }
  const std::vector<Queue>& queues() const { return queues_; }
  const Slice& slice(SliceId s) const { return slices_[static_cast<std::size_t>(s.v)]; }
  const Queue& queue(QueueId q) const { return queues_[static_cast<std::size_t>(q.v)]; }
  int num_positions() const { return static_cast<int>(slices_.size()); }
  std::optional<QueueId> find_queue(std::string_view name) const;
  std::optional<SliceId> find_slice(std::string_view name) const;
  // MEM slice by hemisphere and index, for data placement.
  std::vector<SliceId> mem_slices() const;

 private:
  std::vector<Slice> slices_;
  std::vector<Queue> queues_;
  std::map<std::string, int, std::less<>> queue_index_, slice_index_;  // by name (find_*)
};

}  // namespace lpu
