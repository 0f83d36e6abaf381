// Reed-Solomon (255,223) I=1 decode throughput, ours (generic, avx2) against libfec in the same binary.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

extern "C" {
#include <fec.h>
}

#include "qlink/modem/cpu.hpp"
#include "qlink/modem/reed_solomon.hpp"
#include "ratio_reporter.hpp"

using namespace qlink::modem;

namespace {

constexpr int n_words = 64;

// n_words dual-basis (255,223) codewords, each with `errors` random symbol errors.
std::vector<std::uint8_t> make_words(unsigned errors) {
    std::mt19937_64 rng(42);
    rs_config c;
    c.isa = "generic";
    const auto codec = create_rs_codec(c);
    std::vector<std::uint8_t> words(n_words * 255);
    std::vector<std::uint8_t> msg(223);
    for (int w = 0; w < n_words; ++w) {
        for (auto& b : msg) b = static_cast<std::uint8_t>(rng());
        std::span<std::uint8_t> cw(words.data() + w * 255, 255);
        codec->encode(msg, cw);
        std::vector<int> pos(255);
        for (int i = 0; i < 255; ++i) pos[i] = i;
        std::shuffle(pos.begin(), pos.end(), rng);
        for (unsigned i = 0; i < errors; ++i) cw[pos[i]] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    }
    return words;
}

void set_rate(benchmark::State& state) {
    // Throughput counted in information bits (223 bytes per codeword).
    state.SetBytesProcessed(state.iterations() * 223);
    state.counters["bits/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * 223 * 8,
                                                  benchmark::Counter::kIsRate);
}

void bm_ours(benchmark::State& state, const char* isa_name, unsigned errors) {
    if (!isa_supported(*parse_isa(isa_name))) {
        state.SkipWithError("ISA not supported by this CPU");
        return;
    }
    rs_config c;
    c.isa = isa_name;
    const auto codec = create_rs_codec(c);
    const auto words = make_words(errors);
    std::uint8_t buf[255];
    int w = 0;
    for (auto _ : state) {
        std::memcpy(buf, words.data() + w * 255, 255);
        const auto r = codec->decode(buf);
        benchmark::DoNotOptimize(r);
        if (r.corrected != errors) state.SkipWithError("wrong correction count");
        w = (w + 1) % n_words;
    }
    set_rate(state);
}

void bm_libfec(benchmark::State& state, unsigned errors) {
    const auto words = make_words(errors);
    std::uint8_t buf[255];
    int w = 0;
    for (auto _ : state) {
        std::memcpy(buf, words.data() + w * 255, 255);
        const int r = decode_rs_ccsds(buf, nullptr, 0, 0);
        benchmark::DoNotOptimize(r);
        if (r != static_cast<int>(errors)) state.SkipWithError("wrong correction count");
        w = (w + 1) % n_words;
    }
    set_rate(state);
}

void bm_encode_ours(benchmark::State& state) {
    const auto codec = create_rs_codec(rs_config{});
    std::vector<std::uint8_t> msg(223, 0x3c), cw(255);
    for (auto _ : state) {
        codec->encode(msg, cw);
        benchmark::DoNotOptimize(cw.data());
        msg[0]++;
    }
    set_rate(state);
}

void bm_encode_libfec(benchmark::State& state) {
    std::vector<std::uint8_t> msg(223, 0x3c), parity(32);
    for (auto _ : state) {
        encode_rs_ccsds(msg.data(), parity.data(), 0);
        benchmark::DoNotOptimize(parity.data());
        msg[0]++;
    }
    set_rate(state);
}

}  // namespace

BENCHMARK_CAPTURE(bm_libfec, rs_decode_clean_libfec, 0u)->Name("rs_decode_clean/libfec");
BENCHMARK_CAPTURE(bm_ours, rs_decode_clean_generic, "generic", 0u)->Name("rs_decode_clean/generic");
BENCHMARK_CAPTURE(bm_ours, rs_decode_clean_sse41, "sse41", 0u)->Name("rs_decode_clean/sse41");
BENCHMARK_CAPTURE(bm_ours, rs_decode_clean_avx2, "avx2", 0u)->Name("rs_decode_clean/avx2");
BENCHMARK_CAPTURE(bm_libfec, rs_decode_16err_libfec, 16u)->Name("rs_decode_16err/libfec");
BENCHMARK_CAPTURE(bm_ours, rs_decode_16err_generic, "generic", 16u)->Name("rs_decode_16err/generic");
BENCHMARK_CAPTURE(bm_ours, rs_decode_16err_sse41, "sse41", 16u)->Name("rs_decode_16err/sse41");
BENCHMARK_CAPTURE(bm_ours, rs_decode_16err_avx2, "avx2", 16u)->Name("rs_decode_16err/avx2");
BENCHMARK_CAPTURE(bm_libfec, rs_decode_8err_libfec, 8u)->Name("rs_decode_8err/libfec");
BENCHMARK_CAPTURE(bm_ours, rs_decode_8err_avx2, "avx2", 8u)->Name("rs_decode_8err/avx2");
BENCHMARK(bm_encode_libfec)->Name("rs_encode/libfec");
BENCHMARK(bm_encode_ours)->Name("rs_encode/ours");

int main(int argc, char** argv) { return qlink::bench::run_with_ratios(argc, argv); }
