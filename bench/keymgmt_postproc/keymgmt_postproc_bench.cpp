// Throughput of QKD post-processing: Cascade reconciliation and Toeplitz privacy amplification.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "qlink/keymgmt/auth.hpp"
#include "qlink/keymgmt/cascade.hpp"
#include "qlink/keymgmt/toeplitz.hpp"

namespace {

using namespace qlink::keymgmt;

std::vector<std::uint8_t> random_bits(std::size_t n, std::mt19937_64& rng) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng() & 1u);
    return v;
}

// Both halves in one thread (messages through memory): bits/s of reconciled key, and f.
void bm_cascade(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const double q = static_cast<double>(state.range(1)) / 1000.0;
    std::mt19937_64 rng(1);
    std::bernoulli_distribution flip(q);
    const auto alice = random_bits(n, rng);
    std::vector<std::uint8_t> noisy(n), bob(n);
    std::size_t errors = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const bool e = flip(rng);
        errors += e;
        noisy[i] = alice[i] ^ static_cast<std::uint8_t>(e);
    }
    cascade_config cfg;
    cfg.qber = q;
    cascade_stats st;
    for (auto _ : state) {
        state.PauseTiming();
        bob = noisy;
        state.ResumeTiming();
        st = cascade_reconcile_local(alice, bob, cfg);
        benchmark::DoNotOptimize(bob.data());
    }
    if (bob != alice) state.SkipWithError("Cascade left errors");
    state.counters["bits/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["f"] = reconciliation_efficiency(st.leaked_bits, n, static_cast<double>(errors) / static_cast<double>(n));
    state.counters["rounds"] = st.rounds;
}
BENCHMARK(bm_cascade)->Args({100000, 10})->Args({100000, 20})->Args({100000, 30})->Args({1000000, 20})
    ->Unit(benchmark::kMillisecond);

// NTT Toeplitz hash of n input bits to n/2 output bits.
void bm_toeplitz_ntt(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const std::size_t m = n / 2;
    std::mt19937_64 rng(2);
    const auto seed = random_bits(n + m - 1, rng);
    const auto x = random_bits(n, rng);
    std::vector<std::uint8_t> y(m);
    auto h = create_toeplitz_hasher({.max_input_bits = n});
    for (auto _ : state) {
        if (!h->hash(seed, x, y).ok) state.SkipWithError("hash failed");
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["bits/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(bm_toeplitz_ntt)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);

// The O(n m) matrix product it replaces, at a size where it still finishes.
void bm_toeplitz_naive(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const std::size_t m = n / 2;
    std::mt19937_64 rng(3);
    const auto seed = random_bits(n + m - 1, rng);
    const auto x = random_bits(n, rng);
    std::vector<std::uint8_t> y(m);
    for (auto _ : state) {
        toeplitz_hash_naive(seed, x, y);
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["bits/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(bm_toeplitz_naive)->Arg(10000)->Arg(30000)->Unit(benchmark::kMillisecond);

// Message authentication (GF(2^128) polynomial hash + pad) per byte.
void bm_poly_mac(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<std::uint8_t> msg(n, 0x5A);
    const gf128 key{0x0123456789ABCDEFull, 0xFEDCBA9876543210ull};
    for (auto _ : state) benchmark::DoNotOptimize(poly_hash(key, msg));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n));
}
BENCHMARK(bm_poly_mac)->Arg(1 << 16);

}  // namespace
BENCHMARK_MAIN();
