// lpu asm / lpu disasm
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "lpu/asm/assembler.hpp"

namespace lpu::tools {

void add_asm(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  struct Opts {
    ChipOpts chip;
    std::string input, output, report;
    std::vector<std::string> includes;
    bool print_schedule = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("asm", "assemble a .lpa program into a scheduled, checked .lpo object");
  sub->add_option("input", o->input, "assembly source (.lpa)")->required()->check(CLI::ExistingFile);
  sub->add_option("-o,--output", o->output, "object file to write (default: input with .lpo)");
  sub->add_option("-I,--include", o->includes, "extra folder for .include and .npy files");
  sub->add_option("--schedule", o->report, "write the schedule report (per queue, per cycle) to this file");
  sub->add_flag("--print-schedule", o->print_schedule, "print the schedule report");
  o->chip.add(sub);
  out.emplace_back(sub, [o, sub]() {
    // Without --preset, the source's own `.preset` line chooses (default lp30).
    std::string preset = sub->count("--preset") ? o->chip.preset : assembler::preset_of_file(o->input, "lp30");
    auto params = load_preset(preset, o->chip.set);
    assembler::Options opt;
    opt.include_dirs = o->includes;
    auto r = assembler::assemble_file(o->input, params, opt);
    std::string outp = o->output;
    if (outp.empty()) outp = std::filesystem::path(o->input).replace_extension(".lpo").string();
    obj::save_object(r.program, outp);
    std::size_t words = 0;
    for (const auto& q : r.program.queues) words += q.words.size();
    fmt::print("{}: {} queues, {} instruction words, {} data sections, last issue at cycle {}\n", outp,
               r.program.queues.size(), words, r.program.data.size(), r.last_issue_cycle);
    if (!o->report.empty()) {
      std::ofstream f(o->report);
      f << assembler::schedule_report(r);
    }
    if (o->print_schedule) std::cout << assembler::schedule_report(r);
    return 0;
  });
}

void add_disasm(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  struct Opts {
    std::string input, output;
    std::vector<std::string> set;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("disasm", "print an object as assembly that re-assembles to the same object");
  sub->add_option("input", o->input, "object file (.lpo)")->required()->check(CLI::ExistingFile);
  sub->add_option("-o,--output", o->output, "write to this file instead of stdout");
  sub->add_option("--set", o->set, "preset override the object was assembled with (repeatable)");
  out.emplace_back(sub, [o]() {
    auto prog = obj::load_object(o->input);
    auto params = load_preset(prog.geometry.preset, o->set);
    auto text = assembler::disassemble(prog, params);
    if (o->output.empty()) {
      std::cout << text;
    } else {
      std::ofstream f(o->output);
      f << text;
    }
    return 0;
  });
}

}  // namespace lpu::tools
