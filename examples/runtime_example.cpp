// The runtime API in one page (docs/runtime.md): open a device, load a program and its weights
// from a .safetensors file, stream items through it from several caller threads, read the
// statistics. With an argument HOST:PORT it does the same on an `lpu serve` server - the
// results are identical.
//
//   build/bin/runtime_example                 # local emulator
//   build/bin/lpu serve --listen 127.0.0.1:7070 &
//   build/bin/runtime_example 127.0.0.1:7070  # remote
#include <cstdio>
#include <filesystem>
#include <thread>

#include "lpu/asm/assembler.hpp"
#include "lpu/common/tensor_file.hpp"
#include "lpu/runtime/device.hpp"
#include "lpu/runtime/net.hpp"

int main(int argc, char** argv) {
  using namespace lpu;
  // 1. A device: one `mini` chip (spec.chips = 4 would make it a
  //    host-mediated pipeline of four).
  rt::DeviceSpec spec;
  spec.preset = "mini";
  auto dev = argc > 1 ? net::open_remote(argv[1], spec) : rt::open_local(spec);

  // 2. The program: y = x * w + b per item, following the streaming contract.
  auto params = load_preset("mini");
  auto prog = assembler::assemble_file(std::string(LPU_SOURCE_DIR) + "/examples/stream_axpb_i8.lpa", params).program;
  dev->load_program(prog);

  // 3. Weights from a real file: every tensor goes to the symbol of its name, with dtype and
  //    shape checked against the program's declarations.
  const auto file = (std::filesystem::temp_directory_path() / "runtime_example_weights.safetensors").string();
  io::Tensor w{io::ElemType::I8, {32}, {}}, b{io::ElemType::I8, {32}, {}};
  for (int i = 0; i < 32; ++i) {
    w.data.push_back(std::uint8_t(i % 5 - 2));
    b.data.push_back(std::uint8_t(i));
  }
  io::save_safetensors({{"w", w}, {"b", b}}, file);
  rt::load_weights(*dev, file);

  // 4. Stream: four threads submit 25 items each; every future gets its own result, in order.
  rt::Streamer streamer(*dev);
  std::vector<std::thread> callers;
  int wrong = 0;
  std::mutex mu;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int k = 0; k < 25; ++k) {
        rt::Bytes x(32);
        for (int i = 0; i < 32; ++i) x[std::size_t(i)] = std::uint8_t(t * 31 + k * 7 + i);
        auto y = streamer.submit(x).get();
        for (int i = 0; i < 32; ++i) {
          const auto want = std::uint8_t(x[std::size_t(i)] * w.data[std::size_t(i)] + b.data[std::size_t(i)]);
          if (y.output[std::size_t(i)] != want) {
            std::lock_guard lk(mu);
            ++wrong;
          }
        }
      }
    });
  for (auto& c : callers) c.join();
  streamer.drain();

  // 5. Statistics: per-item latency (host to host, emulated), throughput, host DMA, chips.
  auto s = streamer.stats();
  std::printf("%lld items in %lld batches, %d wrong; emulated %.3g items/s, latency p50 %.3g s p99 %.3g s\n",
              (long long)s.items, (long long)s.batches, wrong, s.items_per_s(), s.percentile_s(50), s.percentile_s(99));
  auto j = dev->stats();
  std::printf("host DMA: %lld bytes to the device, %lld back; weights %lld bytes in %.3g s\n",
              j["host_dma"]["bytes_to_device"].get<long long>(), j["host_dma"]["bytes_from_device"].get<long long>(),
              j["weights"]["bytes"].get<long long>(), j["weights"]["seconds"].get<double>());
  std::filesystem::remove(file);
  return wrong == 0 ? 0 : 1;
}
