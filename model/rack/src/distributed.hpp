#pragma once
// Internal to lpu_rack: statistics and findings as bytes between MPI ranks (distributed.cpp).
#include "lpu/model/stats.hpp"
#include "lpu/rack/engine.hpp"
#include "lpu/rack/stats.hpp"
#include "wire.hpp"

namespace lpu::rack::wire {

void put_chip_stats(Writer& w, const model::ChipStats& s);
model::ChipStats get_chip_stats(Reader& r);
void put_mam(Writer& w, const MinAvgMax& m);
MinAvgMax get_mam(Reader& r);
void put_diag(Writer& w, const Diagnostic& d);
Diagnostic get_diag(Reader& r);

}  // namespace lpu::rack::wire
