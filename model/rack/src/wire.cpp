// Errors across MPI ranks (wire.hpp).
#include "wire.hpp"

namespace lpu::rack::wire {

namespace {
enum class Kind : std::uint8_t { Asm, Config, Sim, Format, Lpu, Other };
}

void put_error(Writer& w, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const AsmError& a) {
    w.put(Kind::Asm);
    w.put<std::uint8_t>(a.truncated());
    w.put<std::uint64_t>(a.diagnostics().size());
    for (const auto& d : a.diagnostics()) {
      w.str(d.loc.file);
      w.put<std::int32_t>(d.loc.line);
      w.put<std::int32_t>(d.loc.col);
      w.str(d.message);
    }
  } catch (const ConfigError& c) {
    w.put(Kind::Config);
    w.str(c.key());
    w.str(c.what());
  } catch (const SimError& s) {
    w.put(Kind::Sim);
    w.put<std::int32_t>(s.chip());
    w.put<std::int64_t>(s.cycle());
    w.str(s.what());
  } catch (const FormatError& f) {
    w.put(Kind::Format);
    w.str(f.what());
  } catch (const Error& x) {
    w.put(Kind::Lpu);
    w.str(x.what());
  } catch (const std::exception& x) {
    w.put(Kind::Other);
    w.str(x.what());
  } catch (...) {
    w.put(Kind::Other);
    w.str("unknown exception");
  }
}

void throw_error(Reader& r, const std::string& suffix) {
  const auto k = r.get<Kind>();
  switch (k) {
    case Kind::Asm: {
      const bool truncated = r.get<std::uint8_t>() != 0;
      std::vector<Diagnostic> ds(r.count(2 * sizeof(std::uint64_t) + 2 * sizeof(std::int32_t)));
      for (auto& d : ds) {
        d.loc.file = r.str();
        d.loc.line = r.get<std::int32_t>();
        d.loc.col = r.get<std::int32_t>();
        d.message = r.str();
      }
      if (ds.empty()) ds.push_back({});
      ds.front().message += suffix;
      throw AsmError(std::move(ds), truncated);
    }
    case Kind::Config: {
      const std::string key = r.str();
      const std::string what = r.str();
      const std::string head = "config: " + key + ": ";
      throw ConfigError(key, (what.rfind(head, 0) == 0 ? what.substr(head.size()) : what) + suffix);
    }
    case Kind::Sim: {
      const int chip = r.get<std::int32_t>();
      const std::int64_t cycle = r.get<std::int64_t>();
      const std::string what = r.str();
      // what() is "chip N, PLACE, cycle C: MSG": rebuild it with PLACE as the unit.
      const std::string head = "chip " + std::to_string(chip) + ", ";
      const std::string mid = ", cycle " + std::to_string(cycle) + ": ";
      const auto m = what.find(mid);
      if (what.rfind(head, 0) == 0 && m != std::string::npos)
        throw SimError(chip, what.substr(head.size(), m - head.size()), "", cycle, what.substr(m + mid.size()) + suffix);
      throw Error(what + suffix);
    }
    case Kind::Format: throw FormatError(r.str() + suffix);
    case Kind::Lpu: throw Error(r.str() + suffix);
    case Kind::Other: break;
  }
  throw std::runtime_error(r.str() + suffix);
}

}  // namespace lpu::rack::wire
