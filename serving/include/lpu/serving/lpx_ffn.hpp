#pragma once
// The LPX side of attention-FFN disaggregation: the time of every layer's FFN (or experts) for one
// micro-batch on an emulated LPX rack, from the cycle-accurate emulator in timing-only mode, behind
// a cache (docs/serving.md, "The LPX time and its cache").
//
// Why a cache is exact: the emulator is deterministic and a timing-only run reads no data; the
// cycles of a decode step depend only on the programs, and the programs only on the key below
// (model shape, rack file, weight type, micro-batch; the FFN-only programs read no KV cache, so
// the context does not enter) and on the generator and
// emulator themselves. The model and rack files' contents are hashed into the key; a change of the
// generator or emulator (a new build) is not, so delete the cache file after one.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace lpu::serving {

struct LpxKey {
  std::string model;       // configs/models name or path
  std::string rack;        // rack file path
  std::string dtype = "fp8";
  std::string partition = "hybrid";
  int batch = 1;           // users per micro-batch (the programs' batch)
  std::uint64_t files_hash = 0;  // FNV-1a of the model and rack files' text (0: not hashed)
  std::string str() const;       // the cache's key
};

struct LpxFfnTiming {
  std::int64_t rack_cycles = 0;   // one micro-batch through every layer (first chip's start to the last result)
  int layers = 0;
  double seconds_per_run = 0;     // rack_cycles / clock
  double cycles_per_layer = 0;    // rack_cycles / layers
  double seconds_per_layer = 0;
  int chips_used = 0, rack_chips = 0;
  double static_w_per_chip = 0;   // the energy model's static power of one chip
  double dynamic_j_per_run = 0;   // dynamic energy of one run (SRAM, MXM, VXM, links)
};

// Where the timing comes from: the emulator, or a stub in tests.
class LpxTimingSource {
 public:
  virtual ~LpxTimingSource() = default;
  virtual LpxFfnTiming measure(const LpxKey& key) = 0;
};

// The emulator: plan_decoder with the key's model, rack, dtype, partition and batch (users =
// batch: one micro-batch) and the FFN-only programs, then one timing-only decode_timing run.
// `threads`: host threads of the rack engine. `log`: called with a line before each emulation
// (they take tens of seconds on a full rack).
std::unique_ptr<LpxTimingSource> emulator_lpx_source(int threads = 1, std::function<void(const std::string&)> log = {});

// FNV-1a 64 of the text of the files a key names (model shape, rack file), for LpxKey::files_hash.
std::uint64_t hash_files(const std::string& model_name_or_path, const std::string& rack_path);

// A JSON file of measured keys (path empty: in memory only). get() returns the stored value or
// measures it once and writes the file at once (a long run keeps what it has measured).
class LpxFfnCache {
 public:
  LpxFfnCache(std::string path, LpxTimingSource& source);
  const LpxFfnTiming& get(const LpxKey& key);
  int hits() const { return hits_; }
  int misses() const { return misses_; }
  std::size_t size() const { return entries_.size(); }
  const std::string& path() const { return path_; }
  void save() const;

 private:
  std::string path_;
  LpxTimingSource& source_;
  std::map<std::string, std::pair<LpxKey, LpxFfnTiming>> entries_;
  int hits_ = 0, misses_ = 0;
};

}  // namespace lpu::serving
