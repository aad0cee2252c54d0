#include "lpu/arch/layout.hpp"

#include <fmt/format.h>

namespace lpu {

std::string_view slice_kind_name(SliceKind k) {
  switch (k) {
    case SliceKind::Mem: return "mem";
    case SliceKind::Vxm: return "vxm";
    case SliceKind::Mxm: return "mxm";
    case SliceKind::Sxm: return "sxm";
  }
  return "?";
}

Layout::Layout(const ChipParams& p) {
  const int west_planes = p.mxm.planes / 2;
  const int east_planes = p.mxm.planes - west_planes;
  auto add = [&](SliceKind k, Hemi h, int idx, std::string name) {
    int pos = static_cast<int>(slices_.size());
    slices_.push_back(Slice{k, h, idx, pos, std::move(name)});
  };
  for (int i = west_planes - 1; i >= 0; --i) add(SliceKind::Mxm, Hemi::West, i, fmt::format("mxm.w.{}", i));
  add(SliceKind::Sxm, Hemi::West, 0, "sxm.w");
  for (int i = p.mem.slices_per_hemisphere - 1; i >= 0; --i)
    add(SliceKind::Mem, Hemi::West, i, fmt::format("mem.w.{}", i));
  add(SliceKind::Vxm, Hemi::Center, 0, "vxm");
  for (int i = 0; i < p.mem.slices_per_hemisphere; ++i)
    add(SliceKind::Mem, Hemi::East, i, fmt::format("mem.e.{}", i));
  add(SliceKind::Sxm, Hemi::East, 0, "sxm.e");
  for (int i = 0; i < east_planes; ++i) add(SliceKind::Mxm, Hemi::East, i, fmt::format("mxm.e.{}", i));

  // Queues in a fixed order: MEM (west then east, from the VXM outward), VXM, SXM, MXM.
  auto addq = [&](const Slice& s, isa::QueueKind k, int i, std::string name) {
    queues_.push_back(Queue{std::move(name), k, SliceId{s.position}, i, s.position});
  };
  for (Hemi h : {Hemi::West, Hemi::East})
    for (int i = 0; i < p.mem.slices_per_hemisphere; ++i)
      for (const auto& s : slices_)
        if (s.kind == SliceKind::Mem && s.hemi == h && s.index == i)
          for (int q = 0; q < p.mem.queues_per_slice; ++q)
            addq(s, isa::QueueKind::Mem, q, q == 0 ? s.name : fmt::format("{}.{}", s.name, q));
  for (const auto& s : slices_)
    if (s.kind == SliceKind::Vxm)
      for (int q = 0; q < p.vxm.queues; ++q) addq(s, isa::QueueKind::Vxm, q, fmt::format("vxm.{}", q));
  for (const auto& s : slices_)
    if (s.kind == SliceKind::Sxm)
      for (int q = 0; q < p.sxm.queues_per_hemisphere; ++q)
        addq(s, isa::QueueKind::Sxm, q, fmt::format("{}.{}", s.name, q));
  for (const auto& s : slices_)
    if (s.kind == SliceKind::Mxm)
      for (int q = 0; q < p.mxm.queues_per_plane; ++q)
        addq(s, isa::QueueKind::Mxm, q, fmt::format("{}.{}", s.name, q));
  for (std::size_t i = 0; i < queues_.size(); ++i) queue_index_.emplace(queues_[i].name, int(i));
  for (const auto& s : slices_) slice_index_.emplace(s.name, s.position);
}

std::optional<QueueId> Layout::find_queue(std::string_view name) const {
  auto it = queue_index_.find(name);
  if (it == queue_index_.end()) return std::nullopt;
  return QueueId{it->second};
}

std::optional<SliceId> Layout::find_slice(std::string_view name) const {
  auto it = slice_index_.find(name);
  if (it == slice_index_.end()) return std::nullopt;
  return SliceId{it->second};
}

std::vector<SliceId> Layout::mem_slices() const {
  std::vector<SliceId> out;
  for (const auto& s : slices_)
    if (s.kind == SliceKind::Mem) out.push_back(SliceId{s.position});
  return out;
}

}  // namespace lpu
