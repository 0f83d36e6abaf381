// SGP4/SDP4 propagation rate, station observation and pass search (no C/C++ SGP4 peer exists in Debian).
#include <benchmark/benchmark.h>

#include "qlink/sim/pass.hpp"

namespace {

using namespace qlink::sim;

tle must_parse(const char* a, const char* b) {
    auto r = parse_tle(a, b);
    if (!r.ok()) std::abort();
    return *r.value;
}

const tle leo = must_parse("1 99901U 26001A   26332.50000000  .00001200  00000-0  58000-4 0  9998",
                           "2 99901  97.4000 215.3000 0011000  90.0000 270.1500 15.21000000 50012");
// Vallado verification set: Molniya (12 h resonance) and a geosynchronous (24 h resonance) object.
const tle molniya = must_parse("1 08195U 75081A   06176.33215444  .00000099  00000-0  11873-3 0   813",
                               "2 08195  64.1586 279.0717 6877146 264.7651  20.2257  2.00491383225656");
const tle geo = must_parse("1 14128U 83058A   06176.02844893 -.00000158  00000-0  10000-3 0  9627",
                           "2 14128  11.4384  35.2134 0011562  26.4582 333.5652  0.98870114 46093");

void propagate(benchmark::State& state, const tle& el, double span_min) {
    const auto sat = create_sgp4_propagator(el);
    double t = 0.0;
    for (auto _ : state) {
        auto r = sat->propagate_minutes(t);
        benchmark::DoNotOptimize(r);
        t += 1.0;
        if (t > span_min) t = 0.0;
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void bm_sgp4_near_earth(benchmark::State& s) { propagate(s, leo, 1440.0); }
void bm_sdp4_molniya(benchmark::State& s) { propagate(s, molniya, 1440.0); }
void bm_sdp4_geo(benchmark::State& s) { propagate(s, geo, 1440.0); }

void bm_observe(benchmark::State& state) {
    const auto sat = create_sgp4_propagator(leo);
    const ground_station st({"munich", 48.0785, 11.2795, 600.0});
    auto t = leo.epoch();
    for (auto _ : state) {
        auto s = st.observe(*sat, t);
        benchmark::DoNotOptimize(s);
        t += std::chrono::seconds{1};
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void bm_find_next_pass(benchmark::State& state) {
    const auto sat = create_sgp4_propagator(leo);
    const ground_station st({"munich", 48.0785, 11.2795, 600.0});
    for (auto _ : state) {
        auto p = find_next_pass(*sat, st, leo.epoch());
        benchmark::DoNotOptimize(p);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

}  // namespace

BENCHMARK(bm_sgp4_near_earth);
BENCHMARK(bm_sdp4_molniya);
BENCHMARK(bm_sdp4_geo);
BENCHMARK(bm_observe);
BENCHMARK(bm_find_next_pass)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
