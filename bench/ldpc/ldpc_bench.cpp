// Throughput of the CCSDS LDPC decoders (information bits/s) on AWGN frames, per ISA.
#include "qlink/modem/cpu.hpp"
#include "qlink/modem/ldpc.hpp"

#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

namespace {

using namespace qlink::modem;

struct frame_pool {
    std::vector<std::vector<llr_t>> frames;
};

// 32 noisy codewords of one code at one Eb/N0 (BPSK, AWGN, amplitude x 16).
frame_pool make_pool(ldpc_code_id id, double ebn0_db) {
    ldpc_encoder enc(id);
    const auto& code = enc.code();
    std::mt19937_64 rng(1234);
    const double sigma = std::sqrt(1.0 / (2.0 * code.rate() * std::pow(10.0, ebn0_db / 10.0)));
    std::normal_distribution<double> noise(0.0, sigma);
    frame_pool pool;
    std::vector<std::uint8_t> info(code.k() / 8), cw(code.n() / 8);
    for (int f = 0; f < 32; ++f) {
        for (auto& b : info) b = static_cast<std::uint8_t>(rng());
        enc.encode(info, cw);
        std::vector<llr_t> llr(code.n());
        for (std::size_t i = 0; i < code.n(); ++i) {
            const double x = ((cw[i >> 3] >> (7 - (i & 7))) & 1) ? -1.0 : 1.0;
            llr[i] = quantize_llr(static_cast<float>((x + noise(rng)) * 16.0));
        }
        pool.frames.push_back(std::move(llr));
    }
    return pool;
}

void bm_decode(benchmark::State& state, ldpc_code_id id, double ebn0_db, bool early_termination, const char* isa_name) {
    const auto level = parse_isa(isa_name);
    if (!level || !isa_supported(*level)) {
        state.SkipWithError("ISA not supported on this CPU");
        return;
    }
    ldpc_decoder::config cfg;
    cfg.code = id;
    cfg.max_iterations = 10;
    cfg.early_termination = early_termination;
    cfg.isa = isa_name;
    auto dec = create_ldpc_decoder(cfg);
    const auto pool = make_pool(id, ebn0_db);
    std::vector<std::uint8_t> out(dec->code().k() / 8);
    std::size_t i = 0, iters = 0, fails = 0, frames = 0;
    for (auto _ : state) {
        const auto res = dec->decode(pool.frames[i++ % pool.frames.size()], out);
        iters += res.iterations;
        fails += res.success ? 0 : 1;
        ++frames;
        benchmark::DoNotOptimize(out.data());
    }
    const double k = static_cast<double>(dec->code().k());
    state.counters["info_bits/s"] = benchmark::Counter(k * static_cast<double>(frames), benchmark::Counter::kIsRate);
    state.counters["avg_iter"] = static_cast<double>(iters) / static_cast<double>(frames ? frames : 1);
    state.counters["fails"] = static_cast<double>(fails);
    state.SetBytesProcessed(static_cast<std::int64_t>(frames * dec->code().k() / 8));
}

// C2: 10 iterations always, and early termination at 4.0 dB (FER about 1e-3 for this decoder, see docs/performance.md, LDPC section).
BENCHMARK_CAPTURE(bm_decode, c2_10it_generic, ldpc_code_id::c2, 4.0, false, "generic");
BENCHMARK_CAPTURE(bm_decode, c2_10it_avx2, ldpc_code_id::c2, 4.0, false, "avx2");
BENCHMARK_CAPTURE(bm_decode, c2_10it_avx512, ldpc_code_id::c2, 4.0, false, "avx512");
BENCHMARK_CAPTURE(bm_decode, c2_et_4p0dB_avx2, ldpc_code_id::c2, 4.0, true, "avx2");
BENCHMARK_CAPTURE(bm_decode, c2_et_4p0dB_avx512, ldpc_code_id::c2, 4.0, true, "avx512");
BENCHMARK_CAPTURE(bm_decode, c2_et_4p0dB_generic, ldpc_code_id::c2, 4.0, true, "generic");
BENCHMARK_CAPTURE(bm_decode, ar4ja_r12_k4096_10it_generic, ldpc_code_id::ar4ja_r12_k4096, 1.5, false, "generic");
BENCHMARK_CAPTURE(bm_decode, ar4ja_r12_k4096_10it_avx2, ldpc_code_id::ar4ja_r12_k4096, 1.5, false, "avx2");
BENCHMARK_CAPTURE(bm_decode, ar4ja_r12_k4096_10it_avx512, ldpc_code_id::ar4ja_r12_k4096, 1.5, false, "avx512");
BENCHMARK_CAPTURE(bm_decode, ar4ja_r12_k4096_et_1p5dB_avx2, ldpc_code_id::ar4ja_r12_k4096, 1.5, true, "avx2");
BENCHMARK_CAPTURE(bm_decode, ar4ja_r12_k1024_10it_avx2, ldpc_code_id::ar4ja_r12_k1024, 2.0, false, "avx2");
BENCHMARK_CAPTURE(bm_decode, ar4ja_r12_k1024_10it_avx512, ldpc_code_id::ar4ja_r12_k1024, 2.0, false, "avx512");

// Inter-frame: 32 codewords per call across the AVX2 lanes.
void bm_decode_batch(benchmark::State& state, ldpc_code_id id, double ebn0_db, bool early_termination, const char* isa_name) {
    const auto level = parse_isa(isa_name);
    if (!level || !isa_supported(*level)) {
        state.SkipWithError("ISA not supported on this CPU");
        return;
    }
    ldpc_decoder::config cfg;
    cfg.code = id;
    cfg.max_iterations = 10;
    cfg.early_termination = early_termination;
    cfg.isa = isa_name;
    auto dec = create_ldpc_batch_decoder(cfg);
    const auto pool = make_pool(id, ebn0_db);
    const std::size_t frames = dec->batch();
    std::vector<llr_t> llr;
    for (std::size_t f = 0; f < frames; ++f) llr.insert(llr.end(), pool.frames[f % 32].begin(), pool.frames[f % 32].end());
    std::vector<std::uint8_t> out(frames * dec->code().k() / 8);
    std::vector<ldpc_decode_result> res(frames);
    std::size_t iters = 0, fails = 0, decoded = 0;
    for (auto _ : state) {
        dec->decode(llr, out, res);
        for (const auto& r : res) {
            iters += r.iterations;
            fails += r.success ? 0 : 1;
        }
        decoded += frames;
        benchmark::DoNotOptimize(out.data());
    }
    const double k = static_cast<double>(dec->code().k());
    state.counters["info_bits/s"] = benchmark::Counter(k * static_cast<double>(decoded), benchmark::Counter::kIsRate);
    state.counters["avg_iter"] = static_cast<double>(iters) / static_cast<double>(decoded ? decoded : 1);
    state.counters["fails"] = static_cast<double>(fails);
}

BENCHMARK_CAPTURE(bm_decode_batch, c2_10it_avx2_x32, ldpc_code_id::c2, 4.0, false, "avx2");
BENCHMARK_CAPTURE(bm_decode_batch, c2_et_4p0dB_avx2_x32, ldpc_code_id::c2, 4.0, true, "avx2");
BENCHMARK_CAPTURE(bm_decode_batch, ar4ja_r12_k4096_10it_avx2_x32, ldpc_code_id::ar4ja_r12_k4096, 1.5, false, "avx2");

void bm_encode(benchmark::State& state, ldpc_code_id id) {
    ldpc_encoder enc(id);
    std::vector<std::uint8_t> info(enc.code().k() / 8, 0x5a), cw(enc.code().n() / 8);
    std::size_t frames = 0;
    for (auto _ : state) {
        enc.encode(info, cw);
        benchmark::DoNotOptimize(cw.data());
        ++frames;
    }
    state.counters["info_bits/s"] =
        benchmark::Counter(static_cast<double>(enc.code().k() * frames), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(bm_encode, c2, ldpc_code_id::c2);
BENCHMARK_CAPTURE(bm_encode, ar4ja_r12_k4096, ldpc_code_id::ar4ja_r12_k4096);

}  // namespace

BENCHMARK_MAIN();
