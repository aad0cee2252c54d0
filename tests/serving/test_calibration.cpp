// Calibration of the analytic GPU model against published measurements (docs/gpu-model.md,
// "Calibration"). The efficiency factors in configs/gpu/*.toml were fitted once to these points;
// each test states the published figure, how the prediction is made, the error it gave at the
// fit, and checks |error| <= the tolerance docs/gpu-model.md states. Run with -s to print
// the table: build-h/bin/test_serving -tc="serving calibration*" -s
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lpu/compiler/model_shape.hpp"
#include "lpu/serving/gpu_model.hpp"

using namespace lpu;
using namespace lpu::serving;

namespace {

GpuSystem sys(const std::string& name) {
  return load_gpu_system(std::string(LPU_SOURCE_DIR) + "/configs/gpu/" + name + ".toml");
}

double error(double predicted, double published) { return (predicted - published) / published; }

void report(const std::string& what, double published, double predicted, const std::string& how) {
  MESSAGE(fmt::format("{}: published {:.0f}, predicted {:.0f}, error {:+.1f}% ({})", what, published, predicted,
                      100 * error(predicted, published), how));
}

// InferenceMAX serving point (disaggregated prefill/decode, wide expert parallelism):
// the best output tokens/s per GPU, over decode instances of `eps` GPUs, at `tps_user` tokens/s
// per user. Requests of isl prompt and osl output tokens; InferenceMAX draws lengths from 80-100%
// of the nominal ISL/OSL, so the means are 0.9x. Decode users hold isl + osl/2 positions on
// average. Prefill runs on 8-GPU instances, 16 prompts at a time (assumption).
struct ServingPoint {
  double output_per_gpu = 0;
  int ep = 0, batch = 0;
};
ServingPoint serving_point(const GpuSystem& g, const compiler::ModelShape& m, const StepOptions& base, double isl_nominal,
                           double osl_nominal, double tps_user, const std::vector<int>& eps) {
  const double isl = 0.9 * isl_nominal, osl = 0.9 * osl_nominal;
  const int context = int(std::lround(isl + osl / 2));
  StepOptions pre_opts = base;
  pre_opts.gpus = 8;
  const auto pre = prefill(g, m, int(std::lround(isl)), 16, pre_opts);
  ServingPoint best;
  for (int ep : eps) {
    StepOptions o = base;
    o.gpus = ep;
    const int b = batch_for_interactivity(g, m, context, o, tps_user);
    if (b == 0) continue;
    const auto dec = decode_step(g, m, b, context, o);
    const double out = disaggregated_output_tokens_per_s_per_gpu(dec, pre, osl);
    if (out > best.output_per_gpu) best = {out, ep, b};
  }
  return best;
}

// DeepSeek-R1 deployments on GB200 NVL72 use multi-token prediction (MTP) with one draft token;
// DeepSeek report 85-90% acceptance of the second token (arXiv 2412.19437, section 5.4.3): 1.85
// tokens kept per step.
StepOptions deepseek(Dtype w) {
  StepOptions o;
  o.dtype = w;
  o.kv_dtype = Dtype::Fp8;
  o.draft_tokens = 1;
  o.accepted_tokens = 1.85;
  return o;
}

// MLPerf offline: in-flight batching of up to `batch` sequences per instance (fewer when their
// KV cache does not fit), prefill on the same GPUs. Output tokens/s per GPU = osl / (GPU-seconds
// of one request's prefill + decode).
double mlperf_offline(const GpuSystem& g, const compiler::ModelShape& m, const StepOptions& o, int batch, double isl,
                      double osl, int* used = nullptr) {
  const int context = int(std::lround(isl + osl / 2));
  while (batch > 1 && !decode_step(g, m, batch, context, o).fits) batch = batch * 9 / 10;
  if (used) *used = batch;
  const auto dec = decode_step(g, m, batch, context, o);
  const auto pre = prefill(g, m, int(std::lround(isl)), 16, o);
  return disaggregated_output_tokens_per_s_per_gpu(dec, pre, osl);
}

// An MLPerf offline point of Llama-2-70B with FP8 KV on `gpu`: up to `sequences` in flight per
// instance of `gpus` GPUs, 700-token prompts (reported against `published`, tok/s per GPU, with
// `setup` and the batch used) and again 370-token prompts (sensitivity). Returns the first.
double llama2_70b_offline(const std::string& what, const std::string& gpu, Dtype dtype, int gpus, int sequences, double osl,
                          double published, const std::string& setup) {
  const auto g = sys(gpu);
  const auto m = compiler::load_model("llama-2-70b");
  StepOptions o;
  o.dtype = dtype;
  o.kv_dtype = Dtype::Fp8;
  o.gpus = gpus;
  int batch = 0;
  const double predicted = mlperf_offline(g, m, o, sequences, 700, osl, &batch);
  report(what, published, predicted, fmt::format("{}, batch {}", setup, batch));
  report("  the same with 370-token prompts", published, mlperf_offline(g, m, o, sequences, 370, osl), "sensitivity");
  return predicted;
}

}  // namespace

// InferenceMAX reports tok/s/GPU as input + output tokens per second per GPU (the displayed
// "tput_per_gpu": https://github.com/InferenceMAX/InferenceMAX/issues/293), so a predicted
// output rate is multiplied by (isl + osl) / osl before comparing.

TEST_CASE("serving calibration: GB200 NVL72 DeepSeek-R1 FP4 1k/1k at 125 tok/s/user") {
  // Published: 4,130 tok/s/GPU at 125 tok/s/user, Dynamo TRT-LLM + MTP, disaggregated,
  // https://inferencex.semianalysis.com/blog/gb200-nvl72-vs-b200-disagg-deepseek-r1-fp4-dynamo-trt
  const auto g = sys("gb200-nvl72");
  const auto m = compiler::load_model("deepseek-v3");
  const auto p = serving_point(g, m, deepseek(Dtype::Fp4), 1024, 1024, 125, {8, 16, 32});
  const double predicted = p.output_per_gpu * 2;
  report("GB200 DeepSeek-R1 FP4 1k/1k @125 tok/s/user, tok/s/GPU", 4130, predicted,
         fmt::format("decode EP {} batch {}", p.ep, p.batch));
  CHECK(std::abs(error(predicted, 4130)) <= 0.15);  // -6.0% at the fit
}

TEST_CASE("serving calibration: GB200 NVL72 DeepSeek-R1 FP8 8k/1k at 75, 120 and 164 tok/s/user") {
  // Published: 5,790 / 3,988 / 818 tok/s/GPU at 75 / 120 / 164 tok/s/user,
  // https://inferencex.semianalysis.com/zh/compare/deepseek-r1-b200-vs-gb200
  const auto g = sys("gb200-nvl72");
  const auto m = compiler::load_model("deepseek-v3");
  struct Pt {
    double tps_user, published, tolerance;
  };
    // At the fit: +1.7%, +6.4%, +1.3%. 164 tok/s/user is at the cliff where only a few users per
  // 8-GPU instance still reach the target: there 1% more step time moves the figure by tens of
  // percent, so its tolerance is wide.
  for (const Pt& pt : {Pt{75, 5790, 0.15}, Pt{120, 3988, 0.15}, Pt{164, 818, 0.50}}) {
    const auto p = serving_point(g, m, deepseek(Dtype::Fp8), 8192, 1024, pt.tps_user, {8, 16, 32});
    const double predicted = p.output_per_gpu * 9;
    report(fmt::format("GB200 DeepSeek-R1 FP8 8k/1k @{:.0f} tok/s/user, tok/s/GPU", pt.tps_user), pt.published, predicted,
           fmt::format("decode EP {} batch {}", p.ep, p.batch));
    CHECK(std::abs(error(predicted, pt.published)) <= pt.tolerance);
  }
}

TEST_CASE("serving calibration: GB200 NVL72 Llama-2-70B MLPerf offline, one rack") {
  // Published: 865,000 tok/s on one GB200 NVL72 (Azure, unverified MLPerf v4.1 submission) =
  // 12,014 tok/s per GPU, https://techcommunity.microsoft.com/blog/azurehighperformancecomputingblog/azure%E2%80%99s-nd-gb200-v6-delivers-record-performance-for-inference-workloads/4399253
  // Assumed: FP4 weights, FP8 KV, one GPU per instance, 1,024 sequences in flight; 700 prompt
  // tokens on average (the dataset caps prompts at 1,024; its mean is not in the sources read);
  // 294.45 output tokens (MLPerf reference, https://github.com/mlcommons/inference/blob/master/language/llama2-70b/README.md).
  const double predicted = llama2_70b_offline("GB200 Llama-2-70B MLPerf offline, tok/s/GPU", "gb200-nvl72", Dtype::Fp4, 1, 1024,
                                              294.45, 865000.0 / 72, "fp4, 1 GPU");
  CHECK(std::abs(error(predicted, 865000.0 / 72)) <= 0.15);  // -5.5% at the fit
}

TEST_CASE("serving calibration: H100 Llama-2-70B MLPerf v4.1 offline, 8 GPUs") {
  // Published: 24,524.9 tok/s on 8 H100-SXM-80GB (NVIDIA, MLPerf Inference v4.1 closed,
  // llama2-70b-99.9 Offline), https://github.com/mlcommons/inference_results_v4.1/blob/main/closed/NVIDIA/results/DGX-H100_H100-SXM-80GBx8_TRT/llama2-70b-99.9/Offline/performance/run_1/mlperf_log_summary.txt
  // Its configuration (closed/NVIDIA/configs/llama2-70b/Offline/__init__.py): FP8, tensor
  // parallel 2, 896 sequences per instance; 84.4792 samples/s -> 290.3 output tokens each.
  const double predicted = llama2_70b_offline("H100 Llama-2-70B MLPerf v4.1 offline, tok/s/GPU", "hgx-h100", Dtype::Fp8, 2, 896,
                                              24524.9 / 84.4792, 24524.9 / 8, "fp8, TP 2");
  // Not fitted: hgx-h100.toml carries GB200's factors. -26.6% with 700-token prompts; the model
  // cannot hold 896 such sequences in 80 GB (it runs 586), so the real prompts are likely
  // shorter: with 370 tokens the error is +11.2%.
  CHECK(std::abs(error(predicted, 24524.9 / 8)) <= 0.35);
}
