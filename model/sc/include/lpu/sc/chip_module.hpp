#pragma once
// SystemC view of a chip: a module per chip with a child module per slice, on SystemC time.
//
// Contract: the module drives the same engine as lpu::model::Chip (identical cycles, values and
// statistics); SystemC time advances from event to event (idle cycles are skipped with one
// wait), so a 1 GHz chip idle for a million cycles costs one wait. Slice modules expose, as
// sc_signals, what each queue issued last (opcode word and cycle), for sc_trace/VCD and for
// co-simulation with other SystemC models (e.g. the Verilated RTL).
// Translation units including this header need -DSC_CPLUSPLUS=201703L (Debian's SystemC is
// built for C++17); link lpu_model_sc, which sets it.
#include <memory>
#include <systemc>
#include <vector>

#include "lpu/arch/params.hpp"
#include "lpu/model/chip.hpp"

namespace lpu::sc {

// One slice: its queues' last issued instruction word and issue cycle.
class SliceModule : public sc_core::sc_module {
 public:
  SliceModule(sc_core::sc_module_name name, const Slice& slice, std::vector<int> queues);
  const Slice& slice() const { return slice_; }
  const std::vector<int>& queues() const { return queues_; }
  // One signal pair per queue of the slice, in the order of queues().
  std::vector<std::unique_ptr<sc_core::sc_signal<std::uint64_t>>> issued_word;
  std::vector<std::unique_ptr<sc_core::sc_signal<std::int64_t>>> issued_cycle;

 private:
  Slice slice_;
  std::vector<int> queues_;
};

class ChipModule : public sc_core::sc_module {
 public:
  ChipModule(sc_core::sc_module_name name, const ChipParams& p, model::Mode mode, int chip_id = 0);
  model::Chip& chip() { return chip_; }
  const std::vector<std::unique_ptr<SliceModule>>& slices() const { return slices_; }
  sc_core::sc_event done;  // notified when every queue has finished
  sc_core::sc_time period() const { return period_; }
  // Records every issue into the slice signals (costs a little; off by default).
  void enable_signals(bool on) { signals_ = on; }

 private:
  void run_thread();
  model::Chip chip_;
  sc_core::sc_time period_;
  std::vector<std::unique_ptr<SliceModule>> slices_;
  std::vector<std::pair<int, int>> queue_slot_;  // queue -> (slice index, index in slice)
  bool signals_ = false;
};

}  // namespace lpu::sc
