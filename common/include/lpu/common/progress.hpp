#pragma once
// Progress of long host work (decode planning, assembly of many programs, ...). Libraries only
// report; a tool decides whether and how to show it (a line on a terminal, nothing otherwise).
// Reporting without a sink costs one atomic load.
#include <cstdint>
#include <functional>
#include <string_view>

namespace lpu::progress {

// phase: what is being done ("plan", "assemble"); done of total units (total 0: unknown).
using Sink = std::function<void(std::string_view phase, std::int64_t done, std::int64_t total)>;

// Installs the process's sink (an empty one removes it). Not for use while work reports.
void set_sink(Sink sink);

// Reports to the sink, if any; callable from any thread (calls are serialised).
void report(std::string_view phase, std::int64_t done, std::int64_t total);

// The end of the reported work: the sink gets phase "" (a terminal line is cleared).
void done();

// A sink for a terminal: one line on stderr, rewritten at most twice a second and only once
// the work has taken a second, "prefix: phase done/total"; cleared by done().
Sink terminal_line(std::string prefix);

}  // namespace lpu::progress
