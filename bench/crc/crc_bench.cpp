// CRC-16/CRC-32 (generic, pclmul; Boost.CRC as peer) and randomizer (generic, avx2) throughput.
#include <benchmark/benchmark.h>

#include <boost/crc.hpp>
#include <random>
#include <vector>

#include "../rs/ratio_reporter.hpp"
#include "qlink/modem/cpu.hpp"
#include "qlink/modem/crc.hpp"
#include "qlink/modem/randomizer.hpp"

using namespace qlink::modem;

namespace {

std::vector<std::uint8_t> data(std::size_t n) {
    std::mt19937_64 rng(1);
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

void set_rate(benchmark::State& state, std::size_t bytes) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
    state.counters["bits/s"] = benchmark::Counter(static_cast<double>(state.iterations() * bytes) * 8,
                                                  benchmark::Counter::kIsRate);
}

void bm_crc16(benchmark::State& state, crc_kernel k) {
    if (!crc_kernel_supported(k)) return state.SkipWithError("kernel not supported by this CPU");
    const auto d = data(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(crc16_ccsds_update(crc16_ccsds_init, d, k));
    set_rate(state, d.size());
}
void bm_crc32(benchmark::State& state, crc_kernel k) {
    if (!crc_kernel_supported(k)) return state.SkipWithError("kernel not supported by this CPU");
    const auto d = data(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(crc32_ccsds_update(crc32_ccsds_init, d, k));
    set_rate(state, d.size());
}
void bm_crc16_boost(benchmark::State& state) {
    const auto d = data(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        boost::crc_optimal<16, 0x1021, 0xFFFF, 0, false, false> c;
        c.process_bytes(d.data(), d.size());
        benchmark::DoNotOptimize(c.checksum());
    }
    set_rate(state, d.size());
}
void bm_crc32_boost(benchmark::State& state) {
    const auto d = data(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        boost::crc_optimal<32, 0x20044009, 0xFFFFFFFF, 0, false, false> c;
        c.process_bytes(d.data(), d.size());
        benchmark::DoNotOptimize(c.checksum());
    }
    set_rate(state, d.size());
}

void bm_randomize(benchmark::State& state, isa level) {
    if (!isa_supported(level)) return state.SkipWithError("ISA not supported by this CPU");
    auto d = data(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        ccsds_randomize(d, level);
        benchmark::DoNotOptimize(d.data());
    }
    set_rate(state, d.size());
}
void bm_randomize_llr(benchmark::State& state, isa level) {
    if (!isa_supported(level)) return state.SkipWithError("ISA not supported by this CPU");
    auto d = data(static_cast<std::size_t>(state.range(0)));
    std::vector<llr_t> soft(d.begin(), d.end());
    for (auto _ : state) {
        ccsds_randomize_llr(soft, level);
        benchmark::DoNotOptimize(soft.data());
    }
    // One LLR carries one bit.
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * soft.size()));
    state.counters["bits/s"] = benchmark::Counter(static_cast<double>(state.iterations() * soft.size()),
                                                  benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(bm_crc16_boost)->Name("crc16/boost")->Arg(1115)->Arg(65536);
BENCHMARK_CAPTURE(bm_crc16, crc16_generic, crc_kernel::generic)->Name("crc16/generic")->Arg(1115)->Arg(65536);
BENCHMARK_CAPTURE(bm_crc16, crc16_pclmul, crc_kernel::pclmul)->Name("crc16/pclmul")->Arg(1115)->Arg(65536);
BENCHMARK(bm_crc32_boost)->Name("crc32/boost")->Arg(1115)->Arg(65536);
BENCHMARK_CAPTURE(bm_crc32, crc32_generic, crc_kernel::generic)->Name("crc32/generic")->Arg(1115)->Arg(65536);
BENCHMARK_CAPTURE(bm_crc32, crc32_pclmul, crc_kernel::pclmul)->Name("crc32/pclmul")->Arg(1115)->Arg(65536);
BENCHMARK_CAPTURE(bm_randomize, randomize_generic, isa::generic)->Name("randomize/generic")->Arg(1279)->Arg(65536);
BENCHMARK_CAPTURE(bm_randomize, randomize_avx2, isa::avx2)->Name("randomize/avx2")->Arg(1279)->Arg(65536);
BENCHMARK_CAPTURE(bm_randomize_llr, randomize_llr_generic, isa::generic)->Name("randomize_llr/generic")->Arg(10232)->Arg(65536);
BENCHMARK_CAPTURE(bm_randomize_llr, randomize_llr_avx2, isa::avx2)->Name("randomize_llr/avx2")->Arg(10232)->Arg(65536);

int main(int argc, char** argv) { return qlink::bench::run_with_ratios(argc, argv); }
