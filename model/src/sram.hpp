#pragma once
// One MEM slice's SRAM, allocated lazily in pages: host memory follows the rows written, not
// the rows configured. Rows never written read as zero. SECDED ECC is modelled by fault
// injection: one flipped bit in a row is corrected on read (and counted), two are fatal.
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace lpu::model {

class Sram {
 public:
  static constexpr int kPageRows = 64;
  Sram(int rows, int vector_bytes) : rows_(rows), vb_(vector_bytes), pages_(std::size_t((rows + kPageRows - 1) / kPageRows)) {}

  const std::uint8_t* read(int row) const {
    const auto& p = pages_[std::size_t(row / kPageRows)];
    if (!p) return zeros();
    return p.get() + std::size_t(row % kPageRows) * std::size_t(vb_);
  }
  std::uint8_t* write(int row) {
    auto& p = pages_[std::size_t(row / kPageRows)];
    if (!p) {
      p = std::make_unique<std::uint8_t[]>(std::size_t(kPageRows) * std::size_t(vb_));
      allocated_ += kPageRows;
    }
    faults_.erase(row);  // a write re-encodes the check bits
    return p.get() + std::size_t(row % kPageRows) * std::size_t(vb_);
  }
  // Flipped bits in a row, 0 if healthy.
  int fault_bits(int row) const {
    if (faults_.empty()) return 0;
    auto it = faults_.find(row);
    return it == faults_.end() ? 0 : it->second;
  }
  void inject(int row, int bits) { faults_[row] += bits; }
  void scrub(int row) { faults_.erase(row); }
  int rows() const { return rows_; }
  std::int64_t allocated_rows() const { return allocated_; }

 private:
  const std::uint8_t* zeros() const {
    if (zero_.empty()) zero_.assign(std::size_t(vb_), 0);
    return zero_.data();
  }
  int rows_;
  int vb_;
  std::vector<std::unique_ptr<std::uint8_t[]>> pages_;
  std::map<int, int> faults_;
  mutable std::vector<std::uint8_t> zero_;
  std::int64_t allocated_ = 0;
};

}  // namespace lpu::model
