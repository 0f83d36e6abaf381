// Throughput of the OOK/PPM soft demodulators (slots/s) from photon counts, per ISA.
#include "qlink/modem/optical_mod.hpp"

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

namespace {

using namespace qlink::modem;

void bm_demod(benchmark::State& state, optical_format format, unsigned m, unsigned guard, const char* isa_name) {
    const auto level = parse_isa(isa_name);
    if (!level || !isa_supported(*level)) {
        state.SkipWithError("ISA not supported on this CPU");
        return;
    }
    optical_config cfg;
    cfg.format = format;
    cfg.m = m;
    cfg.guard = guard;
    cfg.isa = isa_name;
    auto dem = create_optical_demodulator(cfg);
    const auto lay = validate_optical_config(cfg);
    const std::size_t nsym = (1 << 16) / lay.slots_per_symbol;
    const std::size_t nbits = nsym * lay.bits_per_symbol;
    std::mt19937_64 rng(1);
    std::vector<std::uint8_t> bits((nbits + 7) / 8), slots(nsym * lay.slots_per_symbol);
    for (auto& b : bits) b = static_cast<std::uint8_t>(rng());
    optical_modulate(cfg, bits, nbits, slots);
    std::poisson_distribution<int> dark(0.5), lit(5.5);
    std::vector<std::uint16_t> counts(slots.size());
    for (std::size_t i = 0; i < slots.size(); ++i) counts[i] = static_cast<std::uint16_t>(slots[i] ? lit(rng) : dark(rng));
    std::vector<llr_t> llr(nbits);
    const poisson_estimate est{5.0f, 0.5f};
    for (auto _ : state) {
        dem->demod_counts(counts, est, llr);
        benchmark::DoNotOptimize(llr.data());
    }
    state.counters["slots/s"] = benchmark::Counter(static_cast<double>(counts.size()) * static_cast<double>(state.iterations()),
                                                   benchmark::Counter::kIsRate);
    state.counters["bits/s"] = benchmark::Counter(static_cast<double>(nbits) * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(bm_demod, ook_generic, optical_format::ook, 2, 0, "generic");
BENCHMARK_CAPTURE(bm_demod, ook_avx2, optical_format::ook, 2, 0, "avx2");
BENCHMARK_CAPTURE(bm_demod, ppm16_g4_generic, optical_format::ppm, 16, 4, "generic");
BENCHMARK_CAPTURE(bm_demod, ppm16_g4_avx2, optical_format::ppm, 16, 4, "avx2");
BENCHMARK_CAPTURE(bm_demod, ppm64_g16_avx2, optical_format::ppm, 64, 16, "avx2");
BENCHMARK_CAPTURE(bm_demod, ppm256_g64_generic, optical_format::ppm, 256, 64, "generic");
BENCHMARK_CAPTURE(bm_demod, ppm256_g64_avx2, optical_format::ppm, 256, 64, "avx2");

}  // namespace

BENCHMARK_MAIN();
