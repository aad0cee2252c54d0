#pragma once
// The assembler: .lpa text -> scheduled, checked obj::Program. Language in docs/assembly.md.
#include <functional>
#include <string>
#include <vector>

#include "lpu/arch/params.hpp"
#include "lpu/asm/object.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"

namespace lpu::assembler {

struct Options {
  std::vector<std::string> include_dirs;  // searched for .include and .npy after the file's dir
  // Upper bound on instruction instances (after REPEAT expansion) the checker will expand.
  std::int64_t max_instances = 50'000'000;
};

// One scheduled instruction, for the schedule report and for tests.
struct ScheduledInstr {
  std::string queue;
  std::int64_t cycle = 0;  // issue cycle of the first instance
  std::int64_t repeat = 0;
  std::int64_t repeat_delay = 0;
  std::string text;  // disassembled
  SourceLoc loc;
};

struct Result {
  obj::Program program;
  std::vector<ScheduledInstr> schedule;  // every non-NOP instruction, by queue then cycle
  std::int64_t last_issue_cycle = 0;
};

// Contract: throws lpu::AsmError (file:line:col) for every error in the source, and
// lpu::ConfigError if the source's `.preset` cannot be loaded. `params` is the chip it is
// assembled for; a `.preset` directive in the source must agree with params.name.
Result assemble_file(const std::string& path, const ChipParams& params, const Options& opt = {});
Result assemble_string(const std::string& text, const std::string& name, const ChipParams& params,
                       const Options& opt = {});

// The preset a source file names in its `.preset` directive (first one), or `fallback`.
std::string preset_of_file(const std::string& path, const std::string& fallback);

// Render the schedule report: per queue, per cycle.
std::string schedule_report(const Result& r);

// One instruction in assembly syntax, e.g. "READ [r1+4], s0e, 1".
std::string format_instr(const isa::Instr& in, const ChipParams& p);

// Disassemble an object to assembly that re-assembles to an identical object.
std::string disassemble(const obj::Program& p, const ChipParams& params);

}  // namespace lpu::assembler
