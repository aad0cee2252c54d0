#include "lpu/sc/chip_module.hpp"

#include <algorithm>

namespace lpu::sc {

namespace {
std::string sc_name(const std::string& s) {
  std::string o = s;
  std::replace(o.begin(), o.end(), '.', '_');
  return o;
}
}  // namespace

SliceModule::SliceModule(sc_core::sc_module_name name, const Slice& slice, std::vector<int> queues)
    : sc_core::sc_module(name), slice_(slice), queues_(std::move(queues)) {
  for (std::size_t i = 0; i < queues_.size(); ++i) {
    issued_word.push_back(std::make_unique<sc_core::sc_signal<std::uint64_t>>(
        sc_core::sc_gen_unique_name("issued_word")));
    issued_cycle.push_back(std::make_unique<sc_core::sc_signal<std::int64_t>>(
        sc_core::sc_gen_unique_name("issued_cycle")));
  }
}

ChipModule::ChipModule(sc_core::sc_module_name name, const ChipParams& p, model::Mode mode, int chip_id)
    : sc_core::sc_module(name), chip_(p, mode, chip_id), period_(1e12 / p.clock_hz, sc_core::SC_PS) {
  const auto& layout = chip_.layout();
  queue_slot_.assign(layout.queues().size(), {-1, -1});
  for (const auto& s : layout.slices()) {
    std::vector<int> qs;
    for (std::size_t q = 0; q < layout.queues().size(); ++q)
      if (layout.queue(QueueId{int(q)}).slice.v == s.position) {
        queue_slot_[q] = {int(slices_.size()), int(qs.size())};
        qs.push_back(int(q));
      }
    slices_.push_back(std::make_unique<SliceModule>(sc_name(s.name).c_str(), s, std::move(qs)));
  }
  chip_.set_issue_hook([this](const model::Chip::IssueEvent& e) {
    if (!signals_) return;
    auto [si, k] = queue_slot_[std::size_t(e.queue)];
    slices_[std::size_t(si)]->issued_word[std::size_t(k)]->write(e.word);
    slices_[std::size_t(si)]->issued_cycle[std::size_t(k)]->write(e.cycle);
  });
  SC_HAS_PROCESS(ChipModule);
  SC_THREAD(run_thread);
}

void ChipModule::run_thread() {
  std::int64_t cycle = 0;
  while (!chip_.done()) {
    const std::int64_t next = chip_.next_event_cycle();
    if (next > cycle) {
      wait(period_ * double(next - cycle));  // skip the idle cycles in one step
      cycle = next;
    }
    chip_.run(next + 1);  // every event of this cycle
  }
  chip_.run();  // final bookkeeping (statistics, last writes)
  done.notify(sc_core::SC_ZERO_TIME);
}

}  // namespace lpu::sc

// libsystemc.so refers to sc_main for its own main(); every program here has its own main()
// and calls sc_start() itself, so this definition only satisfies the linker.
extern "C" __attribute__((weak)) int sc_main(int, char*[]) { return 1; }
