#pragma once
// Model shapes moved to the compiler layer (lpu/compiler/model_shape.hpp): the decode front end
// builds its IR from them. These names keep the workload's code and tools unchanged.
#include "lpu/compiler/model_shape.hpp"

namespace lpu::workload {
using compiler::Capacity;
using compiler::capacity;
using compiler::cost;
using compiler::load_model;
using compiler::ModelCost;
using compiler::ModelShape;
}  // namespace lpu::workload
