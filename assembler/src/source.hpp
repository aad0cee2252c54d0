#pragma once
// The assembler's internal representation between parsing and emission.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "diagnostics.hpp"
#include "expr.hpp"
#include "lpu/arch/layout.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/isa/isa.hpp"

namespace lpu::assembler {

// One instruction as written (REPEAT/REPEATR included, NOP included).
struct SrcInstr {
  isa::Instr in;
  SourceLoc loc;
  std::string label;  // canonical, empty if none
  ExprP at;           // explicit issue time, or null
  bool at_relative = false;  // "@+e": e cycles after the queue is free
  // Filled by the scheduler.
  std::int64_t issue = -1;
  std::int64_t release = -1;  // SYNC / DESKEW: cycle the queue issues again
  std::int64_t repeat_n = 0;  // instances after the first (from a following REPEAT/REPEATR)
  std::int64_t repeat_d = 0;
  bool by_repeatr = false;
};

struct QueueSrc {
  std::vector<SrcInstr> instrs;
};

struct Parsed {
  std::vector<QueueSrc> queues;  // indexed like Layout::queues()
  obj::Program program;          // data, symbols, perms, regs, geometry
  std::map<std::string, SourceLoc> data_locs;  // symbol -> where declared
};

// Builds Parsed from source text (handles directives, .rept, .include).
class Parser {
 public:
  Parser(const ChipParams& p, const Layout& l, const Options& o, Parsed& out, Diagnostics& d)
      : p_(p), layout_(l), opt_(o), out_(out), diags_(d) {}
  // Parses text (its .include files too), recording every error in the Diagnostics.
  void parse_text(const std::string& text, const std::string& file, int depth);

 private:
  void run(const std::vector<Line>& lines, std::size_t b, std::size_t e, int depth);
  // One statement (not .rept): a directive, an .include or an instruction.
  void statement(const Line& line, int depth);
  // The index of the .endr closing the .rept at lines[i] (e when there is none).
  static std::size_t matching_endr(const std::vector<Line>& lines, std::size_t i, std::size_t e);
  // A .rept block starting at lines[i]; returns the index of its .endr (or i without one).
  std::size_t rept(const std::vector<Line>& lines, std::size_t i, std::size_t e, int depth);
  std::optional<StreamRef> stream_alias(const std::string& name) const;
  void directive(const Line& line, int depth);
  void instruction(const Line& line);
  void data_directive(const Line& line, std::size_t pos);
  void symbol_directive(const Line& line, std::size_t pos, bool with_init);
  void bytes_directive(const Line& line, std::size_t pos);
  void perm_directive(const Line& line, std::size_t pos);
  std::int64_t const_expr(const Line& line, std::size_t& pos);
  // A name written with substitutions, e.g. mem.w.{i} or mem.e.{2*i+1}: adjacent identifier
  // and {expr} pieces concatenated. Returns the token where it starts in `first`.
  std::string name(const Line& line, std::size_t& pos, const char* what);
  std::optional<std::int64_t> lookup(const std::string& name) const;
  std::string resolve_path(const std::string& name, const SourceLoc& loc) const;
  void add_data(const std::string& slice, std::uint32_t row, std::vector<std::uint8_t> bytes,
                const SourceLoc& loc, const std::string& what);

  const ChipParams& p_;
  const Layout& layout_;
  const Options& opt_;
  Parsed& out_;
  Diagnostics& diags_;
  std::map<std::string, std::int64_t> consts_;
  // Names whose definition failed: a use is a Cascade, not another error.
  std::set<std::string> bad_consts_, bad_streams_;
  static constexpr int kBadQueue = -2;  // cur_queue_ after a failed .queue
  int rept_nest_ = 0;
  std::map<std::string, StreamRef> streams_;
  std::vector<std::string> file_stack_;
  int cur_queue_ = -1;
  std::int64_t budget_ = 4'000'000;  // statements processed; bounds .rept bombs
  struct Rows {
    std::int64_t lo, hi;
    std::string what;
    SourceLoc loc;
  };
  std::map<std::string, std::vector<Rows>> used_rows_;  // per slice, for overlap errors
};

// Scheduler + checker + emitter. Records every independent error in `d` and throws them all.
Result schedule_and_emit(Parsed& parsed, const ChipParams& p, const Layout& l, const Options& o, Diagnostics& d);

std::string format_stream(std::int64_t packed);

}  // namespace lpu::assembler
