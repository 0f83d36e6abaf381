// Throughput of the frame sync marker search (soft bits/s) and of the channel interleavers.
#include "qlink/modem/cpu.hpp"
#include "qlink/modem/frame_sync.hpp"
#include "qlink/modem/interleaver.hpp"

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

namespace {

using namespace qlink::modem;

std::vector<llr_t> random_soft(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<llr_t> v(n);
    for (auto& x : v) x = static_cast<llr_t>(static_cast<int>(rng() % 255) - 127);
    return v;
}

// SEARCH on random data (no marker): the cost of looking, the hot path while unlocked.
void bm_marker_search(benchmark::State& state, const char* isa_name, sync_marker m) {
    if (!isa_supported(*parse_isa(isa_name))) {
        state.SkipWithError("ISA not supported on this CPU");
        return;
    }
    const auto kernel = create_marker_search_kernel(isa_name);
    const auto soft = random_soft(1 << 20, 1);
    std::uint64_t window = 0;
    std::size_t hits = 0;
    for (auto _ : state) {
        std::size_t pos = 0;
        while (pos < soft.size()) {
            const std::size_t h = kernel->find(std::span<const llr_t>(soft).subspan(pos), window, m, 2, true);
            pos += h + 1;
            hits += h < soft.size();
        }
        benchmark::DoNotOptimize(hits);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * soft.size()));
    state.counters["soft_bits_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations() * soft.size()), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(bm_marker_search, generic_asm32, "generic", asm_tm_32);
BENCHMARK_CAPTURE(bm_marker_search, avx2_asm32, "avx2", asm_tm_32);
BENCHMARK_CAPTURE(bm_marker_search, generic_asm64, "generic", asm_ldpc_64);
BENCHMARK_CAPTURE(bm_marker_search, avx2_asm64, "avx2", asm_ldpc_64);

// The whole synchroniser locked on a stream of 8192-bit frames (body copy + marker check).
// Arg 1: push_packed (packed hard decisions out, bodies packed straight from the input).
void bm_sync_locked(benchmark::State& state) {
    const bool packed = state.range(0) != 0;
    const std::size_t fb = 8160;
    std::vector<llr_t> stream;
    std::mt19937_64 rng(2);
    for (int f = 0; f < 128; ++f) {
        for (unsigned k = 0; k < 32; ++k) stream.push_back(bit_to_llr((asm_tm_32.pattern >> (31 - k)) & 1, 90));
        for (std::size_t k = 0; k < fb; ++k) stream.push_back(static_cast<llr_t>(static_cast<int>(rng() % 255) - 127));
    }
    frame_synchronizer::config c;
    c.frame_bits = fb;
    frame_synchronizer fs(c);
    std::vector<llr_t> out(130 * fb);
    std::vector<std::uint8_t> out_packed(130 * fb / 8);
    std::vector<sync_frame_info> info(130);
    for (auto _ : state) {
        const auto r = packed ? fs.push_packed(stream, out_packed, info) : fs.push(stream, out, info);
        benchmark::DoNotOptimize(r);
    }
    state.counters["soft_bits_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations() * stream.size()), benchmark::Counter::kIsRate);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(bm_sync_locked)->Arg(0)->Arg(1);

// Hard-decision packing of one 8160-bit body, in cache (the receive chain's per-frame packing).
void bm_hard_pack(benchmark::State& state, const char* isa_name) {
    if (!isa_supported(*parse_isa(isa_name))) {
        state.SkipWithError("ISA not supported on this CPU");
        return;
    }
    const auto kernel = create_hard_decision_kernel(isa_name);
    const auto soft = random_soft(8160, 3);
    std::vector<std::uint8_t> out(1020);
    for (auto _ : state) {
        kernel->pack(soft, out, false);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.counters["soft_bits_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations() * soft.size()), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(bm_hard_pack, generic, "generic");
BENCHMARK_CAPTURE(bm_hard_pack, avx2, "avx2");

void bm_interleaver(benchmark::State& state, interleaver_config cfg, bool deinterleave) {
    auto il = deinterleave ? create_deinterleaver(cfg) : create_interleaver(cfg);
    auto in = random_soft(1 << 18, 3);
    std::vector<llr_t> out(in.size());
    for (auto _ : state) {
        il->process(std::span<const llr_t>(in), std::span<llr_t>(out));
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["symbols_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations() * in.size()), benchmark::Counter::kIsRate);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
}
interleaver_config block(std::size_t r, std::size_t c) {
    interleaver_config cfg;
    cfg.kind = interleaver_kind::block;
    cfg.rows = r;
    cfg.cols = c;
    return cfg;
}
BENCHMARK_CAPTURE(bm_interleaver, block_64x256, block(64, 256), false);
BENCHMARK_CAPTURE(bm_interleaver, block_64x256_deint, block(64, 256), true);
BENCHMARK_CAPTURE(bm_interleaver, conv_32x64, convolutional_for_span(32, 2048), false);
BENCHMARK_CAPTURE(bm_interleaver, conv_32x64_deint, convolutional_for_span(32, 2048), true);
// 10 ms at 10 Msym/s, 80 branches: 100000 symbols span, 4 MB of memory.
BENCHMARK_CAPTURE(bm_interleaver, conv_10ms_at_10Msps, convolutional_for_span_ms(80, 10.0, 10e6), false);

}  // namespace

BENCHMARK_MAIN();
